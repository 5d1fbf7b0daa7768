// Command amd64 generates kernels/gemm_amd64.s: the fp32 GEMM microkernels
// for AVX2+FMA3 and AVX-512, the max-pooling window kernels, and the
// FMA-throughput loops used to measure the core's peak; with -int8,
// kernels/gemm8_amd64.s: the int8 GEMM microkernels (gemm8.go). Run it
// through `go generate ./kernels` in the main module.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/pass"
	"github.com/mmcloughlin/avo/printer"
	"github.com/mmcloughlin/avo/reg"
)

// argv is the command recorded in the generated header. It is fixed rather
// than taken from os.Args so that the regeneration test, which runs from
// another directory, produces the same bytes.
var argv = []string{"go", "-C", "../asm", "run", "./amd64", "-out", "../kernels/gemm_amd64.s"}

func main() {
	// avo's build package registers its own flags on flag.CommandLine.
	fs := flag.NewFlagSet("amd64", flag.ExitOnError)
	out := fs.String("out", "", "assembly output file (stdout if empty)")
	int8 := fs.Bool("int8", false, "generate the int8 GEMM kernels (gemm8_amd64.s)")
	fs.Parse(os.Args[1:])
	gen := generate
	if *int8 {
		gen = generate8
	}
	src, err := gen()
	if err != nil {
		log.Fatal(err)
	}
	if *out == "" {
		os.Stdout.Write(src)
		return
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}

// generate returns the whole assembly file.
func generate() ([]byte, error) {
	c := build.NewContext()
	c.ConstraintExpr("gc,!purego")
	for _, k := range kernels {
		k.generate(c)
	}
	maskTable(c)
	maxWindow(c, "maxWindowAVX2", false)
	maxWindow(c, "maxWindowAVX512", true)
	epilogue(c, "epilogueAVX2", false)
	epilogue(c, "epilogueAVX512", true)
	fmaPeak(c, "fmaPeakAVX2", false)
	fmaPeak(c, "fmaPeakAVX512", true)
	f, err := c.Result()
	if err != nil {
		return nil, err
	}
	if err := pass.Compile.Execute(f); err != nil {
		return nil, err
	}
	p := printer.NewGoAsm(printer.Config{Argv: argv, Pkg: "kernels"})
	src, err := p.Print(f)
	if err != nil {
		return nil, err
	}
	// Generated files end with exactly one newline, like gofmt'd Go.
	return append(bytes.TrimRight(src, "\n"), '\n'), nil
}

// kernel describes one GEMM microkernel: an mr x (nv*lanes) register tile.
type kernel struct {
	name   string
	avx512 bool
	mr     int // rows per tile
	nv     int // vectors per row: NR = nv*lanes
	unroll int // k steps per iteration of the main loop (a power of 2)
	bcst   bool
	pf     int // prefetch B this many bytes ahead in the main loop (0: none)
}

func (k *kernel) lanes() int {
	if k.avx512 {
		return 16
	}
	return 8
}

func (k *kernel) vbytes() int { return 4 * k.lanes() }

func (k *kernel) nr() int { return k.nv * k.lanes() }

func (k *kernel) vec(i int) reg.VecPhysical {
	if k.avx512 {
		return zregs[i]
	}
	return yregs[i]
}

// acc is the accumulator of row i, vector v.
func (k *kernel) acc(i, v int) reg.VecPhysical { return k.vec(i*k.nv + v) }

// bvec holds vector v of the current B row; after the K loop it is free.
func (k *kernel) bvec(v int) reg.VecPhysical { return k.vec(k.mr*k.nv + v) }

// tmp is a broadcast/scratch register (two of them alternate).
func (k *kernel) tmp(i int) reg.VecPhysical { return k.vec(k.mr*k.nv + k.nv + i%2) }

var (
	zregs = []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7, reg.Z8, reg.Z9, reg.Z10,
		reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15, reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22,
		reg.Z23, reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}
	yregs = []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7, reg.Y8, reg.Y9, reg.Y10,
		reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}
	masks = []reg.Register{reg.K1, reg.K2, reg.K3}
)

// The kernels that are emitted. The AVX-512 tile was chosen by measuring
// 8x48, 12x32 and 14x32, each with A broadcast by VBROADCASTSS or as an
// embedded .BCST operand, and K unrolled 1, 4 or 8 (bench/README.md): on
// this Zen 5 core the .BCST form tops out near 90% of FMA peak in cache
// while VBROADCASTSS reaches 97%; 12x32 and 14x32 tie, and 14 divides the
// 7x7/14x14/28x28/56x56 ResNet maps.
//
// B is prefetched 4 KiB ahead in full tiles: weights come cold from DRAM in
// a real network, and with few rows (M=49) the hardware prefetcher alone
// leaves the kernel waiting (BenchmarkGemmColdB, bench/README.md); 512 B
// ahead was worse than none, 1 to 8 KiB all helped.
var kernels = []*kernel{
	{name: "gemmF32_6x16_AVX2FMA", mr: 6, nv: 2, unroll: 4, pf: 4096},
	{name: "gemmF32_14x32_AVX512", avx512: true, mr: 14, nv: 2, unroll: 4, pf: 4096},
}

// General-purpose registers. A rows are addressed as grp[g] + j*lda
// (j = 0, 1, 2), one base register per group of three rows, so a 14-row tile
// needs five bases and one index instead of fourteen pointers.
var (
	rA    = reg.RSI // row 0 of the current tile
	rLda  = reg.RDX // lda in bytes
	rC    = reg.R11 // row 0 of the current output tile
	rRes  = reg.R12 // row 0 of the current residual tile
	rM    = reg.R13 // rows left, including the current tile
	rK    = reg.R14 // k
	grp   = []reg.GPPhysical{reg.RAX, reg.RBX, reg.RCX, reg.R8, reg.R9}
	rB    = reg.RDI // B panel cursor in the K loop
	rKK   = reg.R10 // K loop counter; rows of the tile in the epilogue
	rMask = reg.R9  // AVX2 mask pointer (only live outside the K loop, reloaded)
)

const signature = "func(m, n, k int, a *float32, lda int, b *float32, c *float32, ldc int, bias *float32, res *float32, ldres int, flags int)"

// Flags bits, mirrored by gemmFlag* in kernels/gemm_amd64.go.
const (
	flagBias = 1
	flagRes  = 2
	flagRelu = 4
)

func (k *kernel) generate(c *build.Context) {
	c.Function(k.name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr(signature)
	isa := "AVX2, FMA3"
	if k.avx512 {
		isa = "AVX512F"
	}
	c.Commentf("Rows [0, m), columns [0, n) (n <= %d) of one %d-wide B panel in %d-row tiles,", k.nr(), k.nr(), k.mr)
	c.Commentf("each over the whole k loop, then the epilogue. Requires %s.", isa)
	l := func(s string) string { return k.name + "_" + s }

	c.Load(c.Param("a"), rA)
	c.Load(c.Param("lda"), rLda)
	c.SHLQ(operand.U8(2), rLda)
	c.Load(c.Param("c"), rC)
	c.Load(c.Param("res"), rRes)
	c.Load(c.Param("m"), rM)
	c.Load(c.Param("k"), rK)
	if k.avx512 {
		// Column masks: bit j of the n-bit mask enables column j.
		c.Load(c.Param("n"), reg.RCX)
		c.MOVQ(operand.U32(1), reg.RAX)
		c.SHLQ(reg.CL, reg.RAX)
		c.DECQ(reg.RAX)
		for v := 0; v < k.nv; v++ {
			if v > 0 {
				c.SHRQ(operand.U8(16), reg.RAX)
			}
			c.KMOVW(reg.EAX, masks[v])
		}
	}

	c.Label(l("tile"))
	// Rows beyond m are never read: a partial tile runs a K loop that
	// touches only its m rows.
	c.CMPQ(rM, operand.U32(k.mr))
	c.JAE(operand.LabelRef(l("m" + fmt.Sprint(k.mr))))
	for m := 1; m < k.mr; m++ {
		c.CMPQ(rM, operand.U32(m))
		c.JE(operand.LabelRef(l("m" + fmt.Sprint(m))))
	}
	for m := k.mr; m >= 1; m-- {
		c.Label(l("m" + fmt.Sprint(m)))
		k.kloop(c, m, l(fmt.Sprintf("m%d_", m)))
		c.MOVQ(operand.U32(m), rKK)
		c.JMP(operand.LabelRef(l("epilogue")))
	}

	c.Label(l("epilogue"))
	k.epilogue(c, l)

	// Next tile.
	c.SUBQ(operand.U32(k.mr), rM)
	c.JLE(operand.LabelRef(l("done")))
	c.IMUL3Q(operand.U32(k.mr), rLda, reg.RAX)
	c.ADDQ(reg.RAX, rA)
	c.Load(c.Param("ldc"), reg.RAX)
	c.IMUL3Q(operand.U32(4*k.mr), reg.RAX, reg.RAX)
	c.ADDQ(reg.RAX, rC)
	c.Load(c.Param("ldres"), reg.RAX)
	c.IMUL3Q(operand.U32(4*k.mr), reg.RAX, reg.RAX)
	c.ADDQ(reg.RAX, rRes)
	c.JMP(operand.LabelRef(l("tile")))

	c.Label(l("done"))
	c.VZEROUPPER()
	c.RET()
}

// kloop zeroes the accumulators of m rows and runs the K loop over them.
func (k *kernel) kloop(c *build.Context, m int, l string) {
	for i := 0; i < m; i++ {
		for v := 0; v < k.nv; v++ {
			if k.avx512 {
				c.VPXORD(k.acc(i, v), k.acc(i, v), k.acc(i, v))
			} else {
				c.VXORPS(k.acc(i, v), k.acc(i, v), k.acc(i, v))
			}
		}
	}
	groups := (m + 2) / 3
	c.MOVQ(rA, grp[0])
	for g := 1; g < groups; g++ {
		c.LEAQ(operand.Mem{Base: grp[g-1], Index: rLda, Scale: 2}, grp[g])
		c.ADDQ(rLda, grp[g])
	}
	c.Load(c.Param("b"), rB)
	unroll := k.unroll
	if m < k.mr {
		unroll = 1 // partial tiles are rare; keep their code short
	}
	step := func(u int) {
		for v := 0; v < k.nv; v++ {
			c.VMOVUPS(operand.Mem{Base: rB, Disp: (u*k.nv + v) * k.vbytes()}, k.bvec(v))
		}
		if k.pf > 0 && unroll > 1 {
			// Prefetches never fault, so running past the panel is fine.
			for off := 0; off < k.nr()*4; off += 64 {
				c.PREFETCHT0(operand.Mem{Base: rB, Disp: k.pf + u*k.nr()*4 + off})
			}
		}
		for i := 0; i < m; i++ {
			a := operand.Mem{Base: grp[i/3], Disp: 4 * u}
			if i%3 > 0 {
				a.Index, a.Scale = rLda, uint8(i%3)
			}
			if k.bcst {
				for v := 0; v < k.nv; v++ {
					c.VFMADD231PS_BCST(a, k.bvec(v), k.acc(i, v))
				}
				continue
			}
			t := k.tmp(i)
			c.VBROADCASTSS(a, t)
			for v := 0; v < k.nv; v++ {
				c.VFMADD231PS(k.bvec(v), t, k.acc(i, v))
			}
		}
	}
	advance := func(u int) {
		for g := 0; g < groups; g++ {
			c.ADDQ(operand.U32(4*u), grp[g])
		}
		c.ADDQ(operand.U32(u*k.nr()*4), rB)
	}
	kLoop(c, l, unroll, step, advance)
}

// epilogue applies bias, residual and ReLU to the tile (rKK rows) and
// stores its n columns; it is shared by all row counts: bias and ReLU touch
// every accumulator (rows past the tile hold garbage that is never stored),
// residual loads and stores stop at the last row.
func (k *kernel) epilogue(c *build.Context, l func(string) string) {
	if k.avx512 {
		k.epilogue512(c, l)
		return
	}
	// AVX2 has no opmasks: the full-width case uses plain loads and stores,
	// narrower panels VMASKMOVPS with lane masks from the table
	// gemmMaskAVX2 (n ones then zeros, indexed so that lane j is on iff j < n).
	c.Load(c.Param("n"), reg.RAX)
	c.CMPQ(reg.RAX, operand.U32(k.nr()))
	c.JNE(operand.LabelRef(l("masked")))
	k.epilogueAVX2(c, l, false)
	c.JMP(operand.LabelRef(l("stored")))
	c.Label(l("masked"))
	k.epilogueAVX2(c, l, true)
	c.Label(l("stored"))
}

func (k *kernel) rowLoop(c *build.Context, exit string, ptr, stride reg.GPPhysical, body func(i int)) {
	for i := 0; i < k.mr; i++ {
		if i > 0 {
			c.CMPQ(rKK, operand.U32(i))
			c.JBE(operand.LabelRef(exit))
			c.ADDQ(stride, ptr)
		}
		body(i)
	}
}

func (k *kernel) epilogue512(c *build.Context, l func(string) string) {
	flags := reg.R9
	c.Load(c.Param("flags"), flags)

	c.TESTQ(operand.U32(flagBias), flags)
	c.JZ(operand.LabelRef(l("nobias")))
	c.Load(c.Param("bias"), reg.RDI)
	for v := 0; v < k.nv; v++ {
		c.VMOVUPS_Z(operand.Mem{Base: reg.RDI, Disp: v * 64}, masks[v], k.bvec(v))
	}
	for i := 0; i < k.mr; i++ {
		for v := 0; v < k.nv; v++ {
			c.VADDPS(k.bvec(v), k.acc(i, v), k.acc(i, v))
		}
	}
	c.Label(l("nobias"))

	c.TESTQ(operand.U32(flagRes), flags)
	c.JZ(operand.LabelRef(l("nores")))
	c.MOVQ(rRes, reg.RBX)
	c.Load(c.Param("ldres"), reg.R8)
	c.SHLQ(operand.U8(2), reg.R8)
	k.rowLoop(c, l("nores"), reg.RBX, reg.R8, func(i int) {
		for v := 0; v < k.nv; v++ {
			// Masked-off lanes are not loaded, so no read past column n.
			c.VADDPS(operand.Mem{Base: reg.RBX, Disp: v * 64}, k.acc(i, v), masks[v], k.acc(i, v))
		}
	})
	c.Label(l("nores"))

	c.TESTQ(operand.U32(flagRelu), flags)
	c.JZ(operand.LabelRef(l("norelu")))
	zero := k.tmp(0)
	c.VPXORD(zero, zero, zero)
	for i := 0; i < k.mr; i++ {
		for v := 0; v < k.nv; v++ {
			// max(0, x) with x second: NaN passes through, like the Go code.
			c.VMAXPS(k.acc(i, v), zero, k.acc(i, v))
		}
	}
	c.Label(l("norelu"))

	c.MOVQ(rC, reg.RAX)
	c.Load(c.Param("ldc"), reg.RCX)
	c.SHLQ(operand.U8(2), reg.RCX)
	k.rowLoop(c, l("stored"), reg.RAX, reg.RCX, func(i int) {
		for v := 0; v < k.nv; v++ {
			c.VMOVUPS(k.acc(i, v), masks[v], operand.Mem{Base: reg.RAX, Disp: v * 64})
		}
	})
	c.Label(l("stored"))
}

// epilogueAVX2 is the AVX2 epilogue, full width or masked. Registers past
// the accumulators: bvec(0..1) hold masks (masked) or bias (full), tmp(0..1)
// are scratch.
func (k *kernel) epilogueAVX2(c *build.Context, l func(string) string, masked bool) {
	sfx := "full"
	if masked {
		sfx = "mask"
		// &gemmMaskAVX2[nr-n]: lanes [0, n) read -1, the rest 0.
		c.Load(c.Param("n"), reg.RAX)
		c.NEGQ(reg.RAX)
		c.LEAQ(operand.NewDataAddr(operand.NewStaticSymbol("gemmMaskAVX2"), 4*k.nr()), rMask)
		c.LEAQ(operand.Mem{Base: rMask, Index: reg.RAX, Scale: 4}, rMask)
		for v := 0; v < k.nv; v++ {
			c.VMOVUPS(operand.Mem{Base: rMask, Disp: v * 32}, k.bvec(v))
		}
	}
	flags := reg.R8
	c.Load(c.Param("flags"), flags)
	load := func(m operand.Mem, v int, dst reg.VecPhysical) {
		if masked {
			c.VMASKMOVPS(m, k.bvec(v), dst)
		} else {
			c.VMOVUPS(m, dst)
		}
	}

	c.TESTQ(operand.U32(flagBias), flags)
	c.JZ(operand.LabelRef(l("nobias_" + sfx)))
	c.Load(c.Param("bias"), reg.RDI)
	for v := 0; v < k.nv; v++ {
		if masked {
			load(operand.Mem{Base: reg.RDI, Disp: v * 32}, v, k.tmp(0))
			for i := 0; i < k.mr; i++ {
				c.VADDPS(k.tmp(0), k.acc(i, v), k.acc(i, v))
			}
			continue
		}
		for i := 0; i < k.mr; i++ {
			c.VADDPS(operand.Mem{Base: reg.RDI, Disp: v * 32}, k.acc(i, v), k.acc(i, v))
		}
	}
	c.Label(l("nobias_" + sfx))

	c.TESTQ(operand.U32(flagRes), flags)
	c.JZ(operand.LabelRef(l("nores_" + sfx)))
	c.MOVQ(rRes, reg.RBX)
	c.Load(c.Param("ldres"), reg.RCX)
	c.SHLQ(operand.U8(2), reg.RCX)
	k.rowLoop(c, l("nores_"+sfx), reg.RBX, reg.RCX, func(i int) {
		for v := 0; v < k.nv; v++ {
			m := operand.Mem{Base: reg.RBX, Disp: v * 32}
			if masked {
				load(m, v, k.tmp(v))
				c.VADDPS(k.tmp(v), k.acc(i, v), k.acc(i, v))
			} else {
				c.VADDPS(m, k.acc(i, v), k.acc(i, v))
			}
		}
	})
	c.Label(l("nores_" + sfx))

	c.TESTQ(operand.U32(flagRelu), flags)
	c.JZ(operand.LabelRef(l("norelu_" + sfx)))
	zero := k.tmp(0)
	c.VXORPS(zero, zero, zero)
	for i := 0; i < k.mr; i++ {
		for v := 0; v < k.nv; v++ {
			c.VMAXPS(k.acc(i, v), zero, k.acc(i, v))
		}
	}
	c.Label(l("norelu_" + sfx))

	c.MOVQ(rC, reg.RAX)
	c.Load(c.Param("ldc"), reg.RCX)
	c.SHLQ(operand.U8(2), reg.RCX)
	k.rowLoop(c, l("stored_"+sfx), reg.RAX, reg.RCX, func(i int) {
		for v := 0; v < k.nv; v++ {
			m := operand.Mem{Base: reg.RAX, Disp: v * 32}
			if masked {
				c.VMASKMOVPS(k.acc(i, v), k.bvec(v), m)
			} else {
				c.VMOVUPS(k.acc(i, v), m)
			}
		}
	})
	c.Label(l("stored_" + sfx))
}

// fmaPeak emits a loop of independent FMAs on registers only (no memory),
// 12 accumulators so that two pipes of latency <= 6 stay busy. One
// iteration is 12 FMAs; the caller counts the FLOPs.
func fmaPeak(c *build.Context, name string, avx512 bool) {
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(n int)")
	k := &kernel{avx512: avx512}
	isa := "AVX2, FMA3"
	if avx512 {
		isa = "AVX512F"
	}
	c.Commentf("n iterations of 12 independent %d-lane FMAs. Requires %s.", k.lanes(), isa)
	c.Load(c.Param("n"), reg.RCX)
	for i := 0; i < 14; i++ {
		if avx512 {
			c.VPXORD(k.vec(i), k.vec(i), k.vec(i))
		} else {
			c.VXORPS(k.vec(i), k.vec(i), k.vec(i))
		}
	}
	c.TESTQ(reg.RCX, reg.RCX)
	c.JZ(operand.LabelRef(name + "_done"))
	c.Label(name + "_loop")
	for i := 0; i < 12; i++ {
		c.VFMADD231PS(k.vec(12), k.vec(13), k.vec(i))
	}
	c.DECQ(reg.RCX)
	c.JNZ(operand.LabelRef(name + "_loop"))
	c.Label(name + "_done")
	c.VZEROUPPER()
	c.RET()
}

// maskTable emits gemmMaskAVX2: 16 lanes of -1 then 16 of 0, so that the 16
// values at index 16-n enable exactly lanes [0, n).
func maskTable(c *build.Context) {
	c.StaticGlobal("gemmMaskAVX2")
	c.DataAttributes(attr.RODATA | attr.NOPTR)
	for i := 0; i < 32; i++ {
		v := uint32(0)
		if i < 16 {
			v = 0xffffffff
		}
		c.AddDatum(4*i, operand.U32(v))
	}
}

// kLoop emits the K loop of a microkernel: rK iterations of step, unroll
// at a time (unroll a power of two) then one at a time, with advance(u)
// moving the operand pointers past u iterations. rKK is the counter.
func kLoop(c *build.Context, l string, unroll int, step, advance func(int)) {
	if unroll > 1 {
		shift := 0
		for 1<<shift < unroll {
			shift++
		}
		c.MOVQ(rK, rKK)
		c.SHRQ(operand.U8(shift), rKK)
		c.JZ(operand.LabelRef(l + "rem"))
		c.Label(l + "loop")
		for u := 0; u < unroll; u++ {
			step(u)
		}
		advance(unroll)
		c.DECQ(rKK)
		c.JNZ(operand.LabelRef(l + "loop"))
		c.Label(l + "rem")
		c.MOVQ(rK, rKK)
		c.ANDQ(operand.U32(unroll-1), rKK)
	} else {
		c.MOVQ(rK, rKK)
		c.TESTQ(rKK, rKK)
	}
	c.JZ(operand.LabelRef(l + "end"))
	c.Label(l + "one")
	step(0)
	advance(1)
	c.DECQ(rKK)
	c.JNZ(operand.LabelRef(l + "one"))
	c.Label(l + "end")
}
