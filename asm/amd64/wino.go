package main

// kernels/winograd_amd64.s: the 1-D transforms of the fp32 Winograd
// (winograd_generic.go) on 8 channels per step with AVX2 and FMA3 (names
// ending in AVX2) and on 16 with AVX-512 (AVX512). Each function has the
// Go signature
//
//	func(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)
//
// with strides in float32s and n a positive multiple of 8 (16); vector j is at
// src + j*ss, result i at dst + i*ds. It does reps >= 1 such transforms,
// the r-th on src + r*sstep into dst + r*dstep: all the columns (or rows)
// of a tile in one call, since a call per column cost as much as the
// arithmetic on 16 channels. The arithmetic is that of the Go
// twins with multiply-adds fused (FMA rounds once where Go rounds the
// product and the sum), so results may differ from them in the last bits;
// kernels' Winograd tests bound the difference.

import (
	"fmt"
	"math"
	"slices"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// winoFile emits kernels/winograd_amd64.s.
func winoFile(c *build.Context) {
	c.StaticGlobal("winoK")
	c.DataAttributes(attr.RODATA | attr.NOPTR)
	for i, v := range winoConsts {
		c.AddDatum(4*i, operand.U32(math.Float32bits(v)))
	}
	for _, avx512 := range []bool{false, true} {
		for _, x := range winoXforms {
			x.generate(c, avx512)
		}
	}
}

// winoConsts are the constants of the transforms, float32 at 4*i in winoK<>.
var winoConsts = []float32{5.25, 4.25, 0.25, 1.25, 0.5, 2.5, 4, 5, 2, 8, 16, 32, 0.125, 0.0625, 0.03125}

// winoK is the address of the constant v in winoK<>.
func winoK(v float32) operand.Mem {
	i := slices.Index(winoConsts, v)
	if i < 0 {
		panic(fmt.Sprintf("winoK: no constant %g", v))
	}
	return operand.NewDataAddr(operand.NewStaticSymbol("winoK"), 4*i)
}

// winoXform is one 1-D transform: rows results from cols input vectors.
type winoXform struct {
	name       string
	rows, cols int
	what       string
	// consts are broadcast into registers Y[reg] before the loop.
	consts []winoConst
	// body emits one step on the vector registers Y (ymm or zmm): the
	// inputs are at x(j), the results go to d(i).
	body func(c *build.Context, Y []reg.VecPhysical, x, d func(int) operand.Mem)
}

type winoConst struct {
	v   float32
	reg int
}

// Registers: DI dst, R12 ds, R13 3ds, R14 5ds, BX 7ds, SI src, R8 ss,
// R9 3ss, R10 5ss, R11 7ss (strides in bytes), CX steps left (n/8).
var (
	winoDstOdd = map[int]reg.GPPhysical{1: reg.R12, 3: reg.R13, 5: reg.R14, 7: reg.RBX}
	winoSrcOdd = map[int]reg.GPPhysical{1: reg.R8, 3: reg.R9, 5: reg.R10, 7: reg.R11}
)

// generate emits the transform for AVX2+FMA3 (8 channels a step, name
// suffix AVX2) or AVX512F (16 channels, suffix AVX512; n then a positive
// multiple of 16): the same instructions on ymm or zmm registers.
func (w *winoXform) generate(c *build.Context, avx512 bool) {
	Y, lanes, shift, name := yregs, 8, 3, w.name+"AVX2"
	if avx512 {
		Y, lanes, shift, name = zregs, 16, 4, w.name+"AVX512"
	}
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)")
	c.Commentf("%s: %d results from %d vectors, %d channels", w.what, w.rows, w.cols, lanes)
	c.Comment("per iteration.")
	// s, 3s, 5s, 7s in bytes from a stride in float32s.
	odd := func(s, three, five, seven reg.GPPhysical) {
		c.SHLQ(operand.U8(2), s)
		c.LEAQ(operand.Mem{Base: s, Index: s, Scale: 2}, three)
		c.LEAQ(operand.Mem{Base: s, Index: s, Scale: 4}, five)
		c.LEAQ(operand.Mem{Base: three, Index: s, Scale: 4}, seven)
	}
	c.Load(c.Param("dst"), reg.RDI)
	c.Load(c.Param("ds"), reg.R12)
	odd(reg.R12, reg.R13, reg.R14, reg.RBX)
	c.Load(c.Param("src"), reg.RSI)
	c.Load(c.Param("ss"), reg.R8)
	odd(reg.R8, reg.R9, reg.R10, reg.R11)
	for _, k := range w.consts {
		c.VBROADCASTSS(winoK(k.v), Y[k.reg])
	}
	// AX reps left, DX and R15 this rep's dst and src.
	c.Load(c.Param("reps"), reg.RAX)
	c.MOVQ(reg.RDI, reg.RDX)
	c.MOVQ(reg.RSI, reg.R15)
	rep, loop, done := name+"_rep", name+"_loop", name+"_done"
	c.Label(rep)
	c.Load(c.Param("n"), reg.RCX)
	c.SHRQ(operand.U8(shift), reg.RCX)
	c.Label(loop)
	x := func(j int) operand.Mem { return scaled(reg.RSI, j, winoSrcOdd) }
	d := func(i int) operand.Mem { return scaled(reg.RDI, i, winoDstOdd) }
	w.body(c, Y, x, d)
	c.ADDQ(operand.U32(4*lanes), reg.RSI)
	c.ADDQ(operand.U32(4*lanes), reg.RDI)
	c.DECQ(reg.RCX)
	c.JNZ(operand.LabelRef(loop))
	c.DECQ(reg.RAX)
	c.JZ(operand.LabelRef(done))
	next := func(step string, base, ptr reg.GPPhysical) { // base += step floats; ptr = base
		c.Load(c.Param(step), reg.RCX)
		c.SHLQ(operand.U8(2), reg.RCX)
		c.ADDQ(reg.RCX, base)
		c.MOVQ(base, ptr)
	}
	next("dstep", reg.RDX, reg.RDI)
	next("sstep", reg.R15, reg.RSI)
	c.JMP(operand.LabelRef(rep))
	c.Label(done)
	c.VZEROUPPER()
	c.RET()
}

// winoLoad loads x(j) into Y[j] for j in [from, to).
func winoLoad(c *build.Context, Y []reg.VecPhysical, x func(int) operand.Mem, from, to int) {
	for j := from; j < to; j++ {
		c.VMOVUPS(x(j), Y[j])
	}
}

// The transforms. Their bodies' instructions, registers and constant
// offsets are those of the hand-written winograd_amd64.s that this
// generator replaced (the loop over reps came later). Operands are in
// Go assembler order: VSUBPS a, b, d is d = b - a; VFMADD231PS a, b, d is
// d += a*b; VFNMADD231PS a, b, d is d -= a*b.
var winoXforms = []*winoXform{
	{name: "winoIn4", rows: 4, cols: 4, what: "Input transform Bᵀ of F(2x2, 3x3)",
		body: func(c *build.Context, Y []reg.VecPhysical, x, d func(int) operand.Mem) {
			winoLoad(c, Y, x, 0, 4)
			c.VSUBPS(Y[2], Y[0], Y[4])
			c.VADDPS(Y[2], Y[1], Y[5])
			c.VSUBPS(Y[1], Y[2], Y[6])
			c.VSUBPS(Y[3], Y[1], Y[7])
			for i := 0; i < 4; i++ {
				c.VMOVUPS(Y[4+i], d(i))
			}
		}},
	{name: "winoOut2", rows: 2, cols: 4, what: "Output transform Aᵀ of F(2x2, 3x3)",
		body: func(c *build.Context, Y []reg.VecPhysical, x, d func(int) operand.Mem) {
			winoLoad(c, Y, x, 0, 4)
			c.VADDPS(Y[1], Y[0], Y[4])
			c.VADDPS(Y[2], Y[4], Y[4])
			c.VSUBPS(Y[2], Y[1], Y[5])
			c.VSUBPS(Y[3], Y[5], Y[5])
			c.VMOVUPS(Y[4], d(0))
			c.VMOVUPS(Y[5], d(1))
		}},
	{name: "winoIn6", rows: 6, cols: 6, what: "Input transform Bᵀ of F(4x4, 3x3)",
		consts: []winoConst{{4, 14}, {5, 15}, {2, 13}},
		body: func(c *build.Context, Y []reg.VecPhysical, x, d func(int) operand.Mem) {
			four, five, two := Y[14], Y[15], Y[13]
			winoLoad(c, Y, x, 0, 6)
			for j := 0; j < 2; j++ {
				c.Commentf("d%d = 4x%d - 5x%d + x%d", 5*j, j, 2+j, 4+j)
				c.VMOVAPS(Y[4+j], Y[6])
				c.VFMADD231PS(four, Y[j], Y[6])
				c.VFNMADD231PS(five, Y[2+j], Y[6])
				c.VMOVUPS(Y[6], d(5*j))
			}
			c.Comment("d1 = (x3+x4) - 4(x1+x2), d2 = (x4-x3) + 4(x1-x2)")
			c.VADDPS(Y[2], Y[1], Y[7])
			c.VADDPS(Y[4], Y[3], Y[6])
			c.VFNMADD231PS(four, Y[7], Y[6])
			c.VMOVUPS(Y[6], d(1))
			c.VSUBPS(Y[2], Y[1], Y[7])
			c.VSUBPS(Y[3], Y[4], Y[6])
			c.VFMADD231PS(four, Y[7], Y[6])
			c.VMOVUPS(Y[6], d(2))
			c.Comment("d3 = (x4-x2) + 2(x3-x1), d4 = (x4-x2) - 2(x3-x1)")
			c.VSUBPS(Y[2], Y[4], Y[6])
			c.VSUBPS(Y[1], Y[3], Y[7])
			c.VMULPS(two, Y[7], Y[7])
			c.VADDPS(Y[7], Y[6], Y[8])
			c.VSUBPS(Y[7], Y[6], Y[9])
			c.VMOVUPS(Y[8], d(3))
			c.VMOVUPS(Y[9], d(4))
		}},
	{name: "winoOut4", rows: 4, cols: 6, what: "Output transform Aᵀ of F(4x4, 3x3)",
		consts: []winoConst{{4, 14}, {2, 13}, {8, 15}},
		body: func(c *build.Context, Y []reg.VecPhysical, x, d func(int) operand.Mem) {
			four, two, eight := Y[14], Y[13], Y[15]
			a, b, p, q := Y[6], Y[7], Y[8], Y[9]
			winoLoad(c, Y, x, 0, 6)
			c.Comment("a = x1+x2, b = x1-x2, p = x3+x4, q = x3-x4")
			c.VADDPS(Y[2], Y[1], a)
			c.VSUBPS(Y[2], Y[1], b)
			c.VADDPS(Y[4], Y[3], p)
			c.VSUBPS(Y[4], Y[3], q)
			c.Comment("d0 = x0 + a + p")
			c.VADDPS(a, Y[0], Y[10])
			c.VADDPS(p, Y[10], Y[10])
			c.VMOVUPS(Y[10], d(0))
			c.Comment("d1 = b + 2q")
			c.VMOVAPS(b, Y[10])
			c.VFMADD231PS(two, q, Y[10])
			c.VMOVUPS(Y[10], d(1))
			c.Comment("d2 = a + 4p")
			c.VFMADD231PS(four, p, a)
			c.VMOVUPS(a, d(2))
			c.Comment("d3 = b + 8q + x5")
			c.VFMADD231PS(eight, q, b)
			c.VADDPS(Y[5], b, b)
			c.VMOVUPS(b, d(3))
		}},
	{name: "winoIn8", rows: 8, cols: 8, what: "Input transform Bᵀ of F(6x6, 3x3)",
		consts: []winoConst{{5.25, 15}, {4.25, 14}, {2.5, 13}, {0.5, 12}},
		body: func(c *build.Context, Y []reg.VecPhysical, x, d func(int) operand.Mem) {
			k525, k425, k25, half := Y[15], Y[14], Y[13], Y[12]
			e, o, t := Y[8], Y[9], Y[10]
			winoLoad(c, Y, x, 0, 8)
			// d0 and, mirrored (j -> 7-j), d7.
			for _, m := range []func(int) int{func(j int) int { return j }, func(j int) int { return 7 - j }} {
				c.Commentf("d%d = x%d - x%d + 5.25(x%d - x%d)", m(0), m(0), m(6), m(4), m(2))
				c.VSUBPS(Y[m(2)], Y[m(4)], e)
				c.VSUBPS(Y[m(6)], Y[m(0)], o)
				c.VFMADD231PS(k525, e, o)
				c.VMOVUPS(o, d(m(0)))
			}
			// e±o into d(i) and d(i+1).
			sumDiff := func(i, j int) {
				c.VADDPS(o, e, Y[10])
				c.VSUBPS(o, e, Y[11])
				c.VMOVUPS(Y[10], d(i))
				c.VMOVUPS(Y[11], d(j))
			}
			c.Comment("e = x2 + x6 - 4.25x4, o = x1 + x5 - 4.25x3; d1 = e+o, d2 = e-o")
			c.VADDPS(Y[6], Y[2], e)
			c.VFNMADD231PS(k425, Y[4], e)
			c.VADDPS(Y[5], Y[1], o)
			c.VFNMADD231PS(k425, Y[3], o)
			sumDiff(1, 2)
			c.Comment("e = x6 + 0.25x2 - 1.25x4, o = 0.5x1 - 2.5x3 + 2x5; d3, d4")
			c.VBROADCASTSS(winoK(0.25), t)
			c.VMOVAPS(Y[6], e)
			c.VFMADD231PS(t, Y[2], e)
			c.VBROADCASTSS(winoK(1.25), t)
			c.VFNMADD231PS(t, Y[4], e)
			c.VMULPS(half, Y[1], o)
			c.VFNMADD231PS(k25, Y[3], o)
			c.VADDPS(Y[5], o, o)
			c.VADDPS(Y[5], o, o)
			sumDiff(3, 4)
			c.Comment("e = x6 + 4x2 - 5x4, o = 2x1 - 2.5x3 + 0.5x5; d5, d6")
			c.VBROADCASTSS(winoK(4), t)
			c.VMOVAPS(Y[6], e)
			c.VFMADD231PS(t, Y[2], e)
			c.VBROADCASTSS(winoK(5), t)
			c.VFNMADD231PS(t, Y[4], e)
			c.VADDPS(Y[1], Y[1], o)
			c.VFNMADD231PS(k25, Y[3], o)
			c.VFMADD231PS(half, Y[5], o)
			sumDiff(5, 6)
		}},
	{name: "winoOut6", rows: 6, cols: 8, what: "Output transform Aᵀ of F(6x6, 3x3)",
		consts: []winoConst{{2, 12}, {4, 13}, {8, 14}, {0.5, 15}},
		body: func(c *build.Context, Y []reg.VecPhysical, x, d func(int) operand.Mem) {
			two, four, eight, half := Y[12], Y[13], Y[14], Y[15]
			a, b, p, q, r, s := Y[7], Y[8], Y[9], Y[10], Y[11], Y[0]
			t, k1, k2 := Y[1], Y[2], Y[3] // free once a..s are formed
			// d(i) = base + f*u + g*v, through t.
			fma2 := func(i int, base, f, u, g, v reg.VecPhysical) {
				c.VMOVAPS(base, t)
				c.VFMADD231PS(f, u, t)
				c.VFMADD231PS(g, v, t)
				c.VMOVUPS(t, d(i))
			}
			winoLoad(c, Y, x, 1, 7)
			c.Comment("a = x1+x2, b = x1-x2, p = x3+x4, q = x3-x4, r = x5+x6, s = x5-x6")
			c.VADDPS(Y[2], Y[1], a)
			c.VSUBPS(Y[2], Y[1], b)
			c.VADDPS(Y[4], Y[3], p)
			c.VSUBPS(Y[4], Y[3], q)
			c.VADDPS(Y[6], Y[5], r)
			c.VSUBPS(Y[6], Y[5], s)
			c.Comment("d0 = x0 + a + p + r")
			c.VADDPS(x(0), a, t)
			c.VADDPS(p, t, t)
			c.VADDPS(r, t, t)
			c.VMOVUPS(t, d(0))
			c.Comment("d1 = b + 2q + 0.5s")
			fma2(1, b, two, q, half, s)
			c.Comment("d2 = a + 4p + 0.25r")
			c.VBROADCASTSS(winoK(0.25), k1)
			fma2(2, a, four, p, k1, r)
			c.Comment("d3 = b + 8q + 0.125s")
			c.VBROADCASTSS(winoK(0.125), k1)
			fma2(3, b, eight, q, k1, s)
			c.Comment("d4 = a + 16p + 0.0625r")
			c.VBROADCASTSS(winoK(16), k1)
			c.VBROADCASTSS(winoK(0.0625), k2)
			c.VFMADD231PS(k1, p, a)
			c.VFMADD231PS(k2, r, a)
			c.VMOVUPS(a, d(4))
			c.Comment("d5 = b + 32q + 0.03125s + x7")
			c.VBROADCASTSS(winoK(32), k1)
			c.VBROADCASTSS(winoK(0.03125), k2)
			c.VFMADD231PS(k1, q, b)
			c.VFMADD231PS(k2, s, b)
			c.VADDPS(x(7), b, b)
			c.VMOVUPS(b, d(5))
		}},
}
