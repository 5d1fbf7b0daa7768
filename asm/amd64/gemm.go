// Command amd64 generates edge-resnet's amd64 assembly, one file of
// kernels/ per run (asmFiles in files.go): by default gemm_amd64.s, the fp32
// GEMM microkernels for AVX2+FMA3 and AVX-512, the max-pooling window
// kernels and the stand-alone epilogue; -int8 gemm8_amd64.s (gemm8.go);
// -wino winograd_amd64.s (wino.go); -wino8 winograd8_amd64.s (wino8.go);
// -kernelbench kernelbench_amd64.s, the benchmark-only kernels;
// -depthwise depthwise_amd64.s (depthwise.go). Run it through
// `go generate ./kernels` in the main module.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func main() {
	// avo's build package registers its own flags on flag.CommandLine.
	fs := flag.NewFlagSet("amd64", flag.ExitOnError)
	out := fs.String("out", "", "assembly output file (stdout if empty)")
	selected := map[*asmFile]*bool{}
	for _, f := range asmFiles {
		if f.flag != "" {
			selected[f] = fs.Bool(f.flag, false, "generate kernels/"+f.name)
		}
	}
	fs.Parse(os.Args[1:])
	file := asmFiles[0]
	for _, f := range asmFiles {
		if on := selected[f]; on != nil && *on {
			if file != asmFiles[0] {
				log.Fatalf("-%s and -%s: one file per run", file.flag, f.flag)
			}
			file = f
		}
	}
	src, err := file.generate()
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

// gemmFile emits kernels/gemm_amd64.s.
func gemmFile(c *build.Context) {
	for _, k := range kernels {
		k.generate(c)
	}
	maskTable(c)
	maxWindow(c, "maxWindowAVX2", false)
	maxWindow(c, "maxWindowAVX512", true)
	epilogue(c, "epilogueAVX2", false)
	epilogue(c, "epilogueAVX512", true)
	clampRows(c, "clampRowsAVX2", false)
	clampRows(c, "clampRowsAVX512", true)
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
	per    int // rows of A per base register: 3 (0), or 6-7 for tall tiles (aRows)
}

// aRows is the A layout of the kernel's K loop: three rows per base, or
// for tall tiles up to seven, with 3*lda in R9 and 5*lda in R14 (rK's
// register: k is then read from the argument), set by setOdd per tile
// since the epilogue uses R9.
func (k *kernel) aRows(c *build.Context) aRows {
	if k.per <= 3 {
		return rows3
	}
	kArg, err := c.Param("k").Resolve()
	if err != nil {
		panic(err)
	}
	return aRows{per: k.per, odd: map[int]reg.GPPhysical{1: rLda, 3: reg.R9, 5: reg.R14}, kSrc: kArg.Addr}
}

// setOdd loads the multiples of lda that aRows addresses rows with.
func (k *kernel) setOdd(c *build.Context) {
	if k.per > 3 {
		c.LEAQ(operand.Mem{Base: rLda, Index: rLda, Scale: 2}, reg.R9)
		c.LEAQ(operand.Mem{Base: rLda, Index: rLda, Scale: 4}, reg.R14)
	}
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
		reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15, reg.Y16, reg.Y17, reg.Y18, reg.Y19, reg.Y20, reg.Y21, reg.Y22,
		reg.Y23, reg.Y24, reg.Y25, reg.Y26, reg.Y27, reg.Y28, reg.Y29, reg.Y30, reg.Y31}
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
//
// gemmF32_28x16_AVX512 is the narrow variant for N <= 16 (kernels.PackB
// picks it), where half of a 32-wide panel would be zeros: one zmm of B
// per k step against 28 rows of A as embedded broadcasts. On the Xeon of
// bench/README.md (family 6 model 167) 28x16 .BCST and 24x16 .BCST tied
// (153 GFLOP/s at M=1024 K=144), ahead of 14x16 with VBROADCASTSS (147)
// and 28x16 with VBROADCASTSS (150); 28 rows halve the B reloads of 14.
var kernels = []*kernel{
	{name: "gemmF32_6x16_AVX2FMA", mr: 6, nv: 2, unroll: 4, pf: 4096},
	{name: "gemmF32_14x32_AVX512", avx512: true, mr: 14, nv: 2, unroll: 4, pf: 4096},
	{name: "gemmF32_28x16_AVX512", avx512: true, mr: 28, nv: 1, unroll: 4, bcst: true, pf: 4096, per: 7},
}

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
	if k.per <= 3 {
		c.Load(c.Param("k"), rK)
	}
	if k.avx512 {
		columnMasks(c, k.nv)
	}
	tile := func(h int) {
		k.kloop(c, h, l(fmt.Sprintf("m%d_", h)))
		c.MOVQ(operand.U32(h), rKK)
	}
	next := func() {
		stepParam(c, "ldc", 4*k.mr, rC)
		stepParam(c, "ldres", 4*k.mr, rRes)
	}
	rowTiles(c, l, k.mr, tile, "epilogue", func() { k.epilogue(c, l) }, next)
}

// zeroAcc zeroes the accumulators of h rows: VPXORD on zmm; on ymm
// VXORPS for float32 accumulators, VPXOR for integer ones.
func (k *kernel) zeroAcc(c *build.Context, h int, float bool) {
	for i := 0; i < h; i++ {
		for v := 0; v < k.nv; v++ {
			a := k.acc(i, v)
			switch {
			case k.avx512:
				c.VPXORD(a, a, a)
			case float:
				c.VXORPS(a, a, a)
			default:
				c.VPXOR(a, a, a)
			}
		}
	}
}

// kloop zeroes the accumulators of h rows and runs the K loop over them.
func (k *kernel) kloop(c *build.Context, h int, l string) {
	k.zeroAcc(c, h, true)
	loadB := func(u int) {
		for v := 0; v < k.nv; v++ {
			c.VMOVUPS(operand.Mem{Base: rB, Disp: (u*k.nv + v) * k.vbytes()}, k.bvec(v))
		}
	}
	row := func(i int, a operand.Mem) {
		if k.bcst {
			for v := 0; v < k.nv; v++ {
				c.VFMADD231PS_BCST(a, k.bvec(v), k.acc(i, v))
			}
			return
		}
		t := k.tmp(i)
		c.VBROADCASTSS(a, t)
		for v := 0; v < k.nv; v++ {
			c.VFMADD231PS(k.bvec(v), t, k.acc(i, v))
		}
	}
	k.setOdd(c)
	tileKLoopA(c, k.aRows(c), l, h, k.mr, k.unroll, k.nr()*4, k.pf, loadB, row)
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
		k.loadMasksAVX2(c)
	}
	flags := reg.R8
	c.Load(c.Param("flags"), flags)

	c.TESTQ(operand.U32(flagBias), flags)
	c.JZ(operand.LabelRef(l("nobias_" + sfx)))
	k.addBiasAVX2(c, masked)
	c.Label(l("nobias_" + sfx))

	c.TESTQ(operand.U32(flagRes), flags)
	c.JZ(operand.LabelRef(l("nores_" + sfx)))
	k.addResAVX2(c, l("nores_"+sfx), masked)
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

// loadMasksAVX2 loads the column masks of a partial panel into bvec(v):
// &gemmMaskAVX2[nr-n], whose lanes [0, n) read -1 and the rest 0.
func (k *kernel) loadMasksAVX2(c *build.Context) {
	c.Load(c.Param("n"), reg.RAX)
	c.NEGQ(reg.RAX)
	c.LEAQ(operand.NewDataAddr(operand.NewStaticSymbol("gemmMaskAVX2"), 4*k.nr()), rMask)
	c.LEAQ(operand.Mem{Base: rMask, Index: reg.RAX, Scale: 4}, rMask)
	for v := 0; v < k.nv; v++ {
		c.VMOVUPS(operand.Mem{Base: rMask, Disp: v * 32}, k.bvec(v))
	}
}

// addBiasAVX2 adds the bias row to every row of accumulators: as memory
// operands when the panel is full, through a masked load (no read past
// column n) otherwise.
func (k *kernel) addBiasAVX2(c *build.Context, masked bool) {
	c.Load(c.Param("bias"), reg.RDI)
	for v := 0; v < k.nv; v++ {
		if masked {
			c.VMASKMOVPS(operand.Mem{Base: reg.RDI, Disp: v * 32}, k.bvec(v), k.tmp(0))
			for i := 0; i < k.mr; i++ {
				c.VADDPS(k.tmp(0), k.acc(i, v), k.acc(i, v))
			}
			continue
		}
		for i := 0; i < k.mr; i++ {
			c.VADDPS(operand.Mem{Base: reg.RDI, Disp: v * 32}, k.acc(i, v), k.acc(i, v))
		}
	}
}

// addResAVX2 adds the residual rows (ldres apart) to the accumulator
// rows; the row loop ends at the label exit. Masked loads keep a partial
// panel from reading past column n.
func (k *kernel) addResAVX2(c *build.Context, exit string, masked bool) {
	c.MOVQ(rRes, reg.RBX)
	c.Load(c.Param("ldres"), reg.RCX)
	c.SHLQ(operand.U8(2), reg.RCX)
	k.rowLoop(c, exit, reg.RBX, reg.RCX, func(i int) {
		for v := 0; v < k.nv; v++ {
			m := operand.Mem{Base: reg.RBX, Disp: v * 32}
			if masked {
				c.VMASKMOVPS(m, k.bvec(v), k.tmp(v))
				c.VADDPS(k.tmp(v), k.acc(i, v), k.acc(i, v))
			} else {
				c.VADDPS(m, k.acc(i, v), k.acc(i, v))
			}
		}
	})
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
