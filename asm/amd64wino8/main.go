// Command amd64wino8 generates kernels/winograd8_amd64.s: the stages of the
// integer int8 Winograd F(2x2, 3x3) (kernels/winograd8.go) for AVX2,
// AVX-512BW and AVX512-VNNI: the int16 transform-domain GEMM, the input
// transform (uint8 -> int16) and the output transform fused with the
// requantization. Run it through `go generate ./kernels` in the main module.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/pass"
	"github.com/mmcloughlin/avo/printer"
	"github.com/mmcloughlin/avo/reg"
)

// argv is the command recorded in the generated header, fixed so that the
// regeneration test, run from another directory, gives the same bytes.
var argv = []string{"go", "-C", "../asm", "run", "./amd64wino8", "-out", "../kernels/winograd8_amd64.s"}

func main() {
	fs := flag.NewFlagSet("amd64wino8", flag.ExitOnError)
	out := fs.String("out", "", "assembly output file (stdout if empty)")
	fs.Parse(os.Args[1:])
	src, err := generate()
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

func generate() ([]byte, error) {
	c := build.NewContext()
	c.ConstraintExpr("gc,!purego")
	for _, k := range gemms {
		k.generate(c)
	}
	inTransform(c, "wino8InAVX2", false)
	inTransform(c, "wino8InAVX512", true)
	outTransform(c, "wino8OutAVX2", false)
	outTransform(c, "wino8OutAVX512", true)
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
	return append(bytes.TrimRight(src, "\n"), '\n'), nil
}

var (
	zregs = []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7, reg.Z8, reg.Z9, reg.Z10,
		reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15, reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22,
		reg.Z23, reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}
	yregs = []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7, reg.Y8, reg.Y9, reg.Y10,
		reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}
	xregs = []reg.VecPhysical{reg.X0, reg.X1, reg.X2, reg.X3, reg.X4, reg.X5, reg.X6, reg.X7, reg.X8, reg.X9, reg.X10,
		reg.X11, reg.X12, reg.X13, reg.X14, reg.X15}
)

func vec(avx512 bool, i int) reg.VecPhysical {
	if avx512 {
		return zregs[i]
	}
	return yregs[i]
}

// vpdpwssd emits VPDPWSSD (AVX512-VNNI: acc += pairwise int16 products,
// wrapping), which the Go assembler knows and avo v0.5.0 does not.
func vpdpwssd(c *build.Context, b, a, acc operand.Op) {
	c.Instruction(&ir.Instruction{
		Opcode:   "VPDPWSSD",
		Operands: []operand.Op{b, a, acc},
		Inputs:   []operand.Op{b, a, acc},
		Outputs:  []operand.Op{acc},
		ISA:      []string{"AVX512VNNI"},
	})
}

// gemm is one int16 GEMM kernel: an mr x (nv*lanes) tile of int32
// accumulators over k2 channel pairs.
type gemm struct {
	name   string
	avx512 bool
	vnni   bool // VPDPWSSD instead of VPMADDWD + VPADDD
	mr, nv int
	unroll int
}

var gemms = []*gemm{
	{name: "wino8Gemm_6x16_AVX2", mr: 6, nv: 2, unroll: 2},
	{name: "wino8Gemm_14x32_AVX512BW", avx512: true, mr: 14, nv: 2, unroll: 2},
	{name: "wino8Gemm_14x32_AVX512VNNI", avx512: true, vnni: true, mr: 14, nv: 2, unroll: 2},
}

func (k *gemm) lanes() int {
	if k.avx512 {
		return 16
	}
	return 8
}
func (k *gemm) vbytes() int                   { return 4 * k.lanes() }
func (k *gemm) nr() int                       { return k.nv * k.lanes() }
func (k *gemm) acc(i, v int) reg.VecPhysical  { return vec(k.avx512, i*k.nv+v) }
func (k *gemm) bvec(v int) reg.VecPhysical    { return vec(k.avx512, k.mr*k.nv+v) }
func (k *gemm) scratch(i int) reg.VecPhysical { return vec(k.avx512, k.mr*k.nv+k.nv+i) }

var (
	rA   = reg.RSI
	rLda = reg.RDX
	rC   = reg.R11
	rLdc = reg.R12
	rM   = reg.R13
	rK   = reg.R14
	grp  = []reg.GPPhysical{reg.RAX, reg.RBX, reg.RCX, reg.R8, reg.R9}
	rB   = reg.RDI
	rKK  = reg.R10
)

func (k *gemm) generate(c *build.Context) {
	c.Function(k.name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(m, k2 int, a *int16, lda int, b *int16, c *int32, ldc int)")
	isa := "AVX2"
	switch {
	case k.vnni:
		isa = "AVX512F, AVX512-VNNI"
	case k.avx512:
		isa = "AVX512F, AVX512BW"
	}
	c.Commentf("Rows [0, m) of one %d-column int16 panel in %d-row tiles, each over", k.nr(), k.mr)
	c.Commentf("the whole k2 loop, stored as int32. Requires %s.", isa)
	l := func(s string) string { return k.name + "_" + s }

	c.Load(c.Param("a"), rA)
	c.Load(c.Param("lda"), rLda)
	c.SHLQ(operand.U8(1), rLda)
	c.Load(c.Param("c"), rC)
	c.Load(c.Param("ldc"), rLdc)
	c.SHLQ(operand.U8(2), rLdc)
	c.Load(c.Param("m"), rM)
	c.Load(c.Param("k2"), rK)

	c.Label(l("tile"))
	c.CMPQ(rM, operand.U32(k.mr))
	c.JAE(operand.LabelRef(l(fmt.Sprint("m", k.mr))))
	for m := 1; m < k.mr; m++ {
		c.CMPQ(rM, operand.U32(m))
		c.JE(operand.LabelRef(l(fmt.Sprint("m", m))))
	}
	for m := k.mr; m >= 1; m-- {
		c.Label(l(fmt.Sprint("m", m)))
		k.kloop(c, m, l(fmt.Sprintf("m%d_", m)))
		k.store(c, m)
		c.JMP(operand.LabelRef(l("next")))
	}
	c.Label(l("next"))
	c.SUBQ(operand.U32(k.mr), rM)
	c.JLE(operand.LabelRef(l("done")))
	c.IMUL3Q(operand.U32(k.mr), rLda, reg.RAX)
	c.ADDQ(reg.RAX, rA)
	c.IMUL3Q(operand.U32(k.mr), rLdc, reg.RAX)
	c.ADDQ(reg.RAX, rC)
	c.JMP(operand.LabelRef(l("tile")))
	c.Label(l("done"))
	c.VZEROUPPER()
	c.RET()
}

func (k *gemm) mov(c *build.Context, src, dst operand.Op) {
	if k.avx512 {
		c.VMOVDQU32(src, dst)
	} else {
		c.VMOVDQU(src, dst)
	}
}

func (k *gemm) kloop(c *build.Context, m int, l string) {
	for i := 0; i < m; i++ {
		for v := 0; v < k.nv; v++ {
			if k.avx512 {
				c.VPXORD(k.acc(i, v), k.acc(i, v), k.acc(i, v))
			} else {
				c.VPXOR(k.acc(i, v), k.acc(i, v), k.acc(i, v))
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
		unroll = 1
	}
	step := func(u int) {
		for v := 0; v < k.nv; v++ {
			k.mov(c, operand.Mem{Base: rB, Disp: (u*k.nv + v) * k.vbytes()}, k.bvec(v))
		}
		for i := 0; i < m; i++ {
			a := operand.Mem{Base: grp[i/3], Disp: 4 * u}
			if i%3 > 0 {
				a.Index, a.Scale = rLda, uint8(i%3)
			}
			if k.vnni {
				t := k.scratch(i % 2)
				c.VPBROADCASTD(a, t)
				for v := 0; v < k.nv; v++ {
					vpdpwssd(c, k.bvec(v), t, k.acc(i, v))
				}
				continue
			}
			t, p := k.scratch(0), k.scratch(1)
			c.VPBROADCASTD(a, t)
			for v := 0; v < k.nv; v++ {
				c.VPMADDWD(k.bvec(v), t, p)
				c.VPADDD(p, k.acc(i, v), k.acc(i, v))
			}
		}
	}
	advance := func(u int) {
		for g := 0; g < groups; g++ {
			c.ADDQ(operand.U32(4*u), grp[g])
		}
		c.ADDQ(operand.U32(u*k.nr()*4), rB)
	}
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

// store writes the m rows of accumulators to c (whole panels: the caller's
// M matrix is padded to a multiple of NR columns).
func (k *gemm) store(c *build.Context, m int) {
	c.MOVQ(rC, reg.RAX)
	for i := 0; i < m; i++ {
		if i > 0 {
			c.ADDQ(rLdc, reg.RAX)
		}
		for v := 0; v < k.nv; v++ {
			k.mov(c, k.acc(i, v), operand.Mem{Base: reg.RAX, Disp: v * k.vbytes()})
		}
	}
}

// inTransform emits the input transform on n channels (a multiple of 16
// for AVX2, 32 for AVX-512): d = src[y*rs+x*ps+c] - zero as int16,
// dst[ξ*ds+c] = (Bᵀ d B)[ξ], Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
// AVX-512 keeps the 16 vectors in registers; AVX2, with 16 registers,
// writes the column pass to dst and reads it back for the row pass.
func inTransform(c *build.Context, name string, avx512 bool) {
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(dst *int16, ds int, src *uint8, rs, ps, n int, zero int)")
	isa, lanes := "AVX2", 16
	if avx512 {
		isa, lanes = "AVX512F, AVX512BW", 32
	}
	c.Commentf("Input transform of the int8 Winograd F(2x2, 3x3), %d channels per", lanes)
	c.Commentf("iteration. Requires %s.", isa)
	l := func(s string) string { return name + "_" + s }
	src := []reg.GPPhysical{reg.RAX, reg.RBX, reg.RCX, reg.RDX} // row y of the patch
	dst := []reg.GPPhysical{reg.RSI, reg.RDI, reg.R8, reg.R9}   // V[4i]
	rPs, rPs3, rDs, rDs3, rN := reg.R10, reg.R11, reg.R12, reg.R13, reg.R14
	c.Load(c.Param("src"), src[0])
	c.Load(c.Param("rs"), reg.R15)
	for y := 1; y < 4; y++ {
		c.LEAQ(operand.Mem{Base: src[y-1], Index: reg.R15, Scale: 1}, src[y])
	}
	c.Load(c.Param("ps"), rPs)
	c.LEAQ(operand.Mem{Base: rPs, Index: rPs, Scale: 2}, rPs3)
	c.Load(c.Param("ds"), rDs)
	c.SHLQ(operand.U8(1), rDs)
	c.LEAQ(operand.Mem{Base: rDs, Index: rDs, Scale: 2}, rDs3)
	c.Load(c.Param("dst"), dst[0])
	for i := 1; i < 4; i++ {
		c.LEAQ(operand.Mem{Base: dst[i-1], Index: rDs, Scale: 4}, dst[i])
	}
	c.Load(c.Param("n"), rN)
	zero := reg.Y15
	if avx512 {
		zero = reg.Z31
	}
	c.Load(c.Param("zero"), reg.R15)
	c.MOVQ(reg.R15, xregs[0])
	c.VPBROADCASTW(xregs[0], zero)

	srcAt := func(y, x int) operand.Mem {
		m := operand.Mem{Base: src[y]}
		switch x {
		case 1:
			m.Index, m.Scale = rPs, 1
		case 2:
			m.Index, m.Scale = rPs, 2
		case 3:
			m.Index, m.Scale = rPs3, 1
		}
		return m
	}
	dstAt := func(xi int) operand.Mem {
		m := operand.Mem{Base: dst[xi/4]}
		switch xi % 4 {
		case 1:
			m.Index, m.Scale = rDs, 1
		case 2:
			m.Index, m.Scale = rDs, 2
		case 3:
			m.Index, m.Scale = rDs3, 1
		}
		return m
	}
	// xf applies Bᵀ in place to (a, b, c, d) -> (a-c, b+c, c-b, b-d).
	xf := func(r [4]reg.VecPhysical, tmp reg.VecPhysical) {
		c.VPSUBW(r[2], r[0], r[0])
		c.VPSUBW(r[3], r[1], r[3])
		c.VPADDW(r[2], r[1], tmp)
		c.VPSUBW(r[1], r[2], r[2])
		if avx512 {
			c.VMOVDQU64(tmp, r[1])
		} else {
			c.VMOVDQU(tmp, r[1])
		}
	}
	load := func(m operand.Mem, v reg.VecPhysical) {
		c.VPMOVZXBW(m, v)
		c.VPSUBW(zero, v, v)
	}

	c.Label(l("loop"))
	if avx512 {
		var d [4][4]reg.VecPhysical
		for y := 0; y < 4; y++ {
			for x := 0; x < 4; x++ {
				d[y][x] = zregs[y*4+x]
				load(srcAt(y, x), d[y][x])
			}
		}
		tmp := zregs[16]
		for x := 0; x < 4; x++ {
			xf([4]reg.VecPhysical{d[0][x], d[1][x], d[2][x], d[3][x]}, tmp)
		}
		for i := 0; i < 4; i++ {
			xf(d[i], tmp)
			for j := 0; j < 4; j++ {
				c.VMOVDQU64(d[i][j], dstAt(i*4+j))
			}
		}
	} else {
		r := [4]reg.VecPhysical{yregs[0], yregs[1], yregs[2], yregs[3]}
		tmp := yregs[4]
		for x := 0; x < 4; x++ {
			for y := 0; y < 4; y++ {
				load(srcAt(y, x), r[y])
			}
			xf(r, tmp)
			for i := 0; i < 4; i++ {
				c.VMOVDQU(r[i], dstAt(i*4+x))
			}
		}
		for i := 0; i < 4; i++ {
			for j := 0; j < 4; j++ {
				c.VMOVDQU(dstAt(i*4+j), r[j])
			}
			xf(r, tmp)
			for j := 0; j < 4; j++ {
				c.VMOVDQU(r[j], dstAt(i*4+j))
			}
		}
	}
	for y := 0; y < 4; y++ {
		c.ADDQ(operand.U32(lanes), src[y])
	}
	for i := 0; i < 4; i++ {
		c.ADDQ(operand.U32(2*lanes), dst[i])
	}
	c.SUBQ(operand.U32(lanes), rN)
	c.JNZ(operand.LabelRef(l("loop")))
	c.VZEROUPPER()
	c.RET()
}

// Flags of the output transform, mirrored in kernels/winograd8_amd64.go.
const (
	flagBias = 1
	flagRes  = 2
)

// outTransform emits the output transform fused with the requantization
// on n channels (a multiple of 8 for AVX2, 16 for AVX-512), the steps of
// kernels.Requantize in its order: with M[ξ] = src[ξ*ss+c] (int32),
// y = Aᵀ M A (Aᵀ = [1 1 1 0; 0 1 -1 -1]) in wrapping int32 adds, then for
// each of the 2x2 outputs acc = y>>2 (+ bias), t = float32(acc)*scale
// (+ float32(res-resZero)*resScale, product rounded then sum), clamped to
// ±65536, rounded half to even (VCVTPS2DQ, default MXCSR), + zeroOut,
// clamped to [lo, 255], stored as a byte at dst[i*rs+k*ps+c]; res has
// dst's strides. No FMA anywhere.
func outTransform(c *build.Context, name string, avx512 bool) {
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(dst *uint8, rs, ps int, src *int32, ss, n int, bias *int32, scale *float32, res *uint8, zeroOut, lo, resZero int, resScale float32, flags int)")
	isa, lanes := "AVX2", 8
	if avx512 {
		isa, lanes = "AVX512F, AVX512BW", 16
	}
	c.Commentf("Output transform and requantization of the int8 Winograd F(2x2, 3x3),")
	c.Commentf("%d channels per iteration. Requires %s.", lanes, isa)
	l := func(s string) string { return name + "_" + s }
	v := func(i int) reg.VecPhysical { return vec(avx512, i) }
	vb := 4 * lanes

	rDst, rRs, rPs, rSrc, rSs, rSs3, rN := reg.RDI, reg.RSI, reg.RDX, reg.RAX, reg.RBX, reg.RCX, reg.R8
	rBias, rScale, rRes, rFlags, rSrc2 := reg.R9, reg.R10, reg.R11, reg.R12, reg.R13
	c.Load(c.Param("dst"), rDst)
	c.Load(c.Param("rs"), rRs)
	c.Load(c.Param("ps"), rPs)
	c.Load(c.Param("src"), rSrc)
	c.Load(c.Param("ss"), rSs)
	c.SHLQ(operand.U8(2), rSs)
	c.LEAQ(operand.Mem{Base: rSs, Index: rSs, Scale: 2}, rSs3)
	c.Load(c.Param("n"), rN)
	c.Load(c.Param("bias"), rBias)
	c.Load(c.Param("scale"), rScale)
	c.Load(c.Param("res"), rRes)
	c.Load(c.Param("flags"), rFlags)

	// Registers 0-7 hold the column pass, then y in 0, 3, 4, 7.
	// Constants: 8 -65536, 9 65536, 10 zeroOut, 11 lo, 12 255, 13 resZero,
	// 14 resScale; 15 scratch; 1, 2, 5, 6 free after the column pass.
	bcastD := func(p string, dstV reg.VecPhysical) {
		c.Load(c.Param(p), reg.R14)
		c.MOVQ(reg.R14, xregs[15])
		c.VPBROADCASTD(xregs[15], dstV)
	}
	c.MOVL(operand.U32(0xc7800000), reg.R14L) // -65536.0f
	c.MOVQ(reg.R14, xregs[15])
	c.VPBROADCASTD(xregs[15], v(8))
	c.MOVL(operand.U32(0x47800000), reg.R14L) // 65536.0f
	c.MOVQ(reg.R14, xregs[15])
	c.VPBROADCASTD(xregs[15], v(9))
	bcastD("zeroOut", v(10))
	bcastD("lo", v(11))
	c.MOVL(operand.U32(255), reg.R14L)
	c.MOVQ(reg.R14, xregs[15])
	c.VPBROADCASTD(xregs[15], v(12))
	bcastD("resZero", v(13))
	c.Load(c.Param("resScale"), xregs[15])
	c.VBROADCASTSS(xregs[15], v(14))

	// M[4i+x] is at rSrc2 + x*ss, rSrc2 stepping by 4*ss from row to row.
	mAt := func(x int) operand.Mem {
		m := operand.Mem{Base: rSrc2}
		switch x {
		case 1:
			m.Index, m.Scale = rSs, 1
		case 2:
			m.Index, m.Scale = rSs, 2
		case 3:
			m.Index, m.Scale = rSs3, 1
		}
		return m
	}
	mov := func(src operand.Op, dstV operand.Op) {
		if avx512 {
			c.VMOVDQU32(src, dstV)
		} else {
			c.VMOVDQU(src, dstV)
		}
	}
	tmp := v(15)

	c.Label(l("loop"))
	// Column pass: t0x = m0x + m1x + m2x, t1x = m1x - m2x - m3x, with rows
	// of M reached by advancing rSrc2 by 4*ss.
	t0 := [4]reg.VecPhysical{v(0), v(1), v(2), v(3)}
	t1 := [4]reg.VecPhysical{v(4), v(5), v(6), v(7)}
	c.MOVQ(rSrc, rSrc2)
	for x := 0; x < 4; x++ {
		mov(mAt(x), t0[x])
	}
	c.LEAQ(operand.Mem{Base: rSrc2, Index: rSs, Scale: 4}, rSrc2)
	for x := 0; x < 4; x++ {
		mov(mAt(x), t1[x])
		c.VPADDD(t1[x], t0[x], t0[x])
	}
	c.LEAQ(operand.Mem{Base: rSrc2, Index: rSs, Scale: 4}, rSrc2)
	for x := 0; x < 4; x++ {
		mov(mAt(x), tmp)
		c.VPADDD(tmp, t0[x], t0[x])
		c.VPSUBD(tmp, t1[x], t1[x])
	}
	c.LEAQ(operand.Mem{Base: rSrc2, Index: rSs, Scale: 4}, rSrc2)
	for x := 0; x < 4; x++ {
		c.VPSUBD(mAt(x), t1[x], t1[x])
	}
	// Row pass: y_i0 = t_i0 + t_i1 + t_i2 (into t_i0), y_i1 = t_i1 - t_i2 - t_i3
	// (into t_i3); then y >>= 2 (exact).
	ys := [4]reg.VecPhysical{}
	yi := [4]int{0, 3, 4, 7} // register numbers of ys
	for i, t := range [2][4]reg.VecPhysical{t0, t1} {
		c.VPSUBD(t[2], t[1], tmp)
		c.VPSUBD(t[3], tmp, t[3])
		c.VPADDD(t[1], t[0], t[0])
		c.VPADDD(t[2], t[0], t[0])
		c.VPSRAD(operand.U8(2), t[0], t[0])
		c.VPSRAD(operand.U8(2), t[3], t[3])
		ys[2*i], ys[2*i+1] = t[0], t[3]
	}
	// Requantize the four outputs: (i, k) at dst + i*rs + k*ps.
	outAt := func(base reg.GPPhysical, q int) operand.Mem {
		m := operand.Mem{Base: base}
		switch q {
		case 1:
			m.Index, m.Scale = rPs, 1
		case 2:
			m.Index, m.Scale = rRs, 1
		case 3:
			m.Index, m.Scale = reg.R15, 1 // rs + ps
		}
		return m
	}
	c.LEAQ(operand.Mem{Base: rRs, Index: rPs, Scale: 1}, reg.R15)
	c.TESTQ(operand.U32(flagBias), rFlags)
	c.JZ(operand.LabelRef(l("nobias")))
	mov(operand.Mem{Base: rBias}, tmp)
	for _, y := range ys {
		c.VPADDD(tmp, y, y)
	}
	c.Label(l("nobias"))
	mov(operand.Mem{Base: rScale}, tmp)
	for _, y := range ys {
		c.VCVTDQ2PS(y, y)
		c.VMULPS(tmp, y, y)
	}
	c.TESTQ(operand.U32(flagRes), rFlags)
	c.JZ(operand.LabelRef(l("nores")))
	rv := [4]reg.VecPhysical{v(1), v(2), v(5), v(6)}
	for q, r := range rv {
		c.VPMOVZXBD(outAt(rRes, q), r)
		c.VPSUBD(v(13), r, r)
		c.VCVTDQ2PS(r, r)
		c.VMULPS(v(14), r, r)
		c.VADDPS(r, ys[q], ys[q])
	}
	c.Label(l("nores"))
	for q, y := range ys {
		c.VMAXPS(v(8), y, y)
		c.VMINPS(v(9), y, y)
		c.VCVTPS2DQ(y, y)
		c.VPADDD(v(10), y, y)
		c.VPMAXSD(v(11), y, y)
		c.VPMINSD(v(12), y, y)
		if avx512 {
			c.VPMOVDB(y, outAt(rDst, q))
			continue
		}
		// Eight dwords in [0, 255] to eight bytes: pack within lanes,
		// then join the low dwords of the two lanes.
		c.VPACKUSDW(y, y, y)
		c.VPACKUSWB(y, y, y)
		c.VEXTRACTI128(operand.U8(1), y, xregs[15])
		c.VPUNPCKLDQ(xregs[15], xregs[yi[q]], xregs[yi[q]])
		c.MOVQ(xregs[yi[q]], outAt(rDst, q))
	}
	c.ADDQ(operand.U32(vb), rSrc)
	c.ADDQ(operand.U32(vb), rBias)
	c.ADDQ(operand.U32(vb), rScale)
	c.ADDQ(operand.U32(lanes), rRes)
	c.ADDQ(operand.U32(lanes), rDst)
	c.SUBQ(operand.U32(lanes), rN)
	c.JNZ(operand.LabelRef(l("loop")))
	c.VZEROUPPER()
	c.RET()
}
