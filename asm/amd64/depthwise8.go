package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The int8 depthwise 3x3 row kernels of kernels/depthwise8.go
// (kernels.dw8RowKernel), channels as int32 lanes (AVX-512 16 per vector,
// AVX2 8):
//
//	acc = bias - ZeroA·Σw + Σ x·w     over the filter rows inside the input
//	out = min(Requantize(acc, scale, res...), hi)
//
// Activations are widened by VPMOVZXBD and weights by VPMOVSXBD, so each
// int32 lane holds one value (the activation's high 16 bits zero); one
// VPMADDWD per tap then gives x·w exactly (x·w + 0·(0 or -1)), added by
// VPADDD, or both at once by VPDPWSSD on AVX512-VNNI. The zero point comes
// out through the weight sum once per channel vector and chunk; the sum is
// the Go code's integer sum, and the float32 requantization is
// kernels.Requantize's step by step (requant in requant.go), so the
// outputs are bit-identical with the Go code's. AVX2 has room for four
// accumulators beside the nine weights; its requantization constants are
// broadcast once into the stack frame and used as memory operands.

type dw8Params struct {
	name   string
	stride int
	vnni   bool
	avx2   bool
	consts *dw8Consts // while generating
}

// dw8Consts are the broadcast scalars of a kernel: registers (AVX-512) or
// 32-byte slots of the stack frame (AVX2).
type dw8Consts struct {
	zeroA, zeroOut, lo, top, resZero, resScale, hi, negHi operand.Op
}

// broadcastConsts broadcasts the scalar arguments and ±65536.
func (k *dw8Params) broadcastConsts(c *build.Context) *dw8Consts {
	q := &dw8Consts{}
	var frame operand.Mem
	if k.avx2 {
		frame = c.AllocLocal(8 * 32)
	}
	slot := 0
	put := func(dst *operand.Op, z reg.VecPhysical) {
		if !k.avx2 {
			c.VPBROADCASTD(reg.EAX, z)
			*dst = z
			return
		}
		c.VMOVD(reg.EAX, reg.X15)
		c.VPBROADCASTD(reg.X15, reg.Y15)
		m := frame.Offset(32 * slot)
		slot++
		c.VMOVDQU(reg.Y15, m)
		*dst = m
	}
	for _, a := range []struct {
		name string
		dst  *operand.Op
		z    reg.VecPhysical
	}{{"zeroA", &q.zeroA, dw8ZeroA}, {"zeroOut", &q.zeroOut, dw8ZOut}, {"lo", &q.lo, dw8Lo}, {"hi", &q.top, dw8Top},
		{"resZero", &q.resZero, dw8RZero}, {"resScale", &q.resScale, dw8RScl}} {
		b, err := c.Param(a.name).Resolve()
		if err != nil {
			panic(err)
		}
		c.MOVL(b.Addr, reg.EAX)
		put(a.dst, a.z)
	}
	c.MOVL(operand.U32(0x47800000), reg.EAX) // 65536.0
	put(&q.hi, dw8Hi)
	c.MOVL(operand.U32(0xc7800000), reg.EAX) // -65536.0
	put(&q.negHi, dw8NegHi)
	return q
}

var dw8Kernels = []dw8Params{
	{name: "dw8s1AVX512", stride: 1},
	{name: "dw8s2AVX512", stride: 2},
	{name: "dw8s1AVX512VNNI", stride: 1, vnni: true},
	{name: "dw8s2AVX512VNNI", stride: 2, vnni: true},
	{name: "dw8s1AVX2", stride: 1, avx2: true},
	{name: "dw8s2AVX2", stride: 2, avx2: true},
}

// p is the number of outputs per chunk (accumulators).
func (k *dw8Params) p() int {
	if k.avx2 {
		return 4
	}
	return 8
}

func (k *dw8Params) lanes() int {
	if k.avx2 {
		return 8
	}
	return 16
}

func (k *dw8Params) acc(j int) reg.VecPhysical { return dwVec(!k.avx2, j) }

func (k *dw8Params) w(i int) reg.VecPhysical {
	if k.avx2 {
		return yregs[4+i] // Y4..Y12
	}
	return dw8W(i)
}

func (k *dw8Params) x(q int) reg.VecPhysical {
	if k.avx2 {
		return reg.Y13
	}
	return dw8X[q%len(dw8X)]
}

func (k *dw8Params) t() reg.VecPhysical {
	if k.avx2 {
		return reg.Y14
	}
	return dw8T
}

func (k *dw8Params) corr() reg.VecPhysical {
	if k.avx2 {
		return reg.Y15
	}
	return dw8Corr
}

// Registers of the int8 row kernels. GP: as the fp32 row kernels (dwN is
// the channel count, dwOff in channels) plus dw8WTap, the weights' pixel
// stride.
var (
	dw8WTap  = reg.RDI
	dw8W     = func(i int) reg.VecPhysical { return zregs[8+i] } // Z8..Z16
	dw8X     = []reg.VecPhysical{reg.Z17, reg.Z30, reg.Z31}
	dw8T     = reg.Z18 // product (no VNNI); residual
	dw8Corr  = reg.Z19 // weight sum, then the correction
	dw8Scale = reg.Z20
	dw8ZeroA = reg.Z21
	dw8Hi    = reg.Z22 // 65536
	dw8NegHi = reg.Z23
	dw8ZOut  = reg.Z24
	dw8Lo    = reg.Z25
	dw8Top   = reg.Z26 // the upper clamp hi
	dw8RZero = reg.Z27
	dw8RScl  = reg.Z28
)

// dwVPDPWSSD emits VPDPWSSD (AVX512-VNNI), which the Go assembler knows
// and avo v0.5.0 does not.
func dwVPDPWSSD(c *build.Context, b, a, acc operand.Op) {
	c.Instruction(&ir.Instruction{
		Opcode:   "VPDPWSSD",
		Operands: []operand.Op{b, a, acc},
		Inputs:   []operand.Op{b, a, acc},
		Outputs:  []operand.Op{acc},
		ISA:      []string{"AVX512VNNI"},
	})
}

func (k *dw8Params) generate(c *build.Context) {
	isa := "AVX512F, AVX512BW"
	if k.vnni {
		isa += ", AVX512VNNI"
	}
	if k.avx2 {
		isa = "AVX2"
	}
	c.Function(k.name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8, n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32)")
	c.Commentf("Int8 depthwise 3x3, stride %d along W, over npix interior pixels of a row, %d-channel", k.stride, k.lanes())
	c.Commentf("int32 vectors, %d outputs per chunk, requantized. Requires %s.", k.p(), isa)
	l := func(s string) string { return k.name + "_" + s }

	c.Load(c.Param("n"), dwN)
	c.Load(c.Param("c"), dwC4)
	c.Load(c.Param("srcRow"), dwSRow)
	c.Load(c.Param("wTap"), dw8WTap)
	c.Load(c.Param("rows"), dwRows)
	c.Load(c.Param("flags"), dwFlags)
	k.consts = k.broadcastConsts(c)
	c.Load(c.Param("src"), dwXp)
	c.Load(c.Param("dst"), dwDp)
	c.Load(c.Param("res"), dwRp)
	c.Load(c.Param("npix"), dwCnt)

	c.Label(l("full"))
	c.CMPQ(dwCnt, operand.U32(k.p()))
	c.JL(operand.LabelRef(l("tail")))
	k.chunk(c, k.p(), l)
	c.SUBQ(operand.U32(k.p()), dwCnt)
	c.JMP(operand.LabelRef(l("full")))
	c.Label(l("tail"))
	for size := k.p() / 2; size >= 1; size /= 2 {
		c.CMPQ(dwCnt, operand.U32(size))
		c.JL(operand.LabelRef(l(fmt.Sprintf("skip%d", size))))
		k.chunk(c, size, l)
		c.SUBQ(operand.U32(size), dwCnt)
		c.Label(l(fmt.Sprintf("skip%d", size)))
	}
	c.VZEROUPPER()
	c.RET()
}

// pixAddr is dwPixAddr for uint8 pixels (the stride dwC4 is in bytes too).
func (k *dw8Params) pixAddr(c *build.Context, q int) operand.Mem { return dwPixAddr(c, q) }

// chunk emits p consecutive outputs, every channel vector in turn, and
// moves the chunk pointers past them.
func (k *dw8Params) chunk(c *build.Context, p int, l func(string) string) {
	tag := fmt.Sprintf("c%d", p)
	lt := func(s string) string { return l(tag + "_" + s) }
	dwChunkLoop(c, p, k.stride, k.lanes(), lt, func() {
		c.Comment("The filter rows inside the input as int32 lanes, and their sum.")
		dwFilterRows(c, lt, dw8WTap, func(r int, taps [3]operand.Mem) { k.filterRow(c, r, taps) })
		k.initAcc(c, p, lt)
		dwRowSums(c, p, k.stride, lt, c.VPMOVZXBD, k.x, func(r, kw, j int, x reg.VecPhysical) {
			if k.vnni {
				dwVPDPWSSD(c, k.w(3*r+kw), x, k.acc(j))
			} else {
				c.VPMADDWD(k.w(3*r+kw), x, k.t())
				c.VPADDD(k.t(), k.acc(j), k.acc(j))
			}
		})
		k.requantize(c, p, lt)
	})
}

// filterRow widens filter row r to int32 lanes and adds it to the weight
// sum in corr (which row 0 starts).
func (k *dw8Params) filterRow(c *build.Context, r int, taps [3]operand.Mem) {
	corr := k.corr()
	for kw, m := range taps {
		c.VPMOVSXBD(m, k.w(3*r+kw))
	}
	if r == 0 {
		c.VPADDD(k.w(0), k.w(1), corr)
	} else {
		c.VPADDD(k.w(3*r), corr, corr)
		c.VPADDD(k.w(3*r+1), corr, corr)
	}
	c.VPADDD(k.w(3*r+2), corr, corr)
}

// initAcc starts the p accumulators from bias - zeroA*Σw (+0 for the bias
// without flagBias): the zero point's share of every sum, computed once
// per channel vector.
func (k *dw8Params) initAcc(c *build.Context, p int, lt func(string) string) {
	corr, t := k.corr(), k.t()
	c.Comment("corr = bias - zeroA*Σw, the start of every sum")
	c.VPMULLD(k.consts.zeroA, corr, corr)
	c.TESTQ(operand.U32(dwFlagBias), dwFlags)
	c.JZ(operand.LabelRef(lt("nobias")))
	c.Load(c.Param("bias"), dwA)
	if k.avx2 {
		c.VMOVDQU(operand.Mem{Base: dwA, Index: dwOff, Scale: 4}, t)
	} else {
		c.VMOVDQU32(operand.Mem{Base: dwA, Index: dwOff, Scale: 4}, t)
	}
	c.JMP(operand.LabelRef(lt("init")))
	c.Label(lt("nobias"))
	dwZero(c, !k.avx2, t)
	c.Label(lt("init"))
	c.VPSUBD(corr, t, corr)
	for j := 0; j < p; j++ {
		if k.avx2 {
			c.VMOVDQA(corr, k.acc(j))
		} else {
			c.VMOVDQA32(corr, k.acc(j))
		}
	}
}

// requantize turns the p sums of the channel vector into bytes (requant's
// steps, the residual if flagRes, the upper clamp) and stores them.
func (k *dw8Params) requantize(c *build.Context, p int, lt func(string) string) {
	acc, q, t := k.acc, k.consts, k.t()
	c.Load(c.Param("scale"), dwA)
	var scale operand.Op = operand.Mem{Base: dwA, Index: dwOff, Scale: 4}
	if !k.avx2 {
		c.VMOVUPS(scale, dw8Scale)
		scale = dw8Scale
	}
	rq := &requant{resZero: q.resZero, resScale: q.resScale, hi: q.hi, negHi: q.negHi, zeroOut: q.zeroOut, lo: q.lo, maxFirst: true}
	for j := 0; j < p; j++ {
		rq.toFloat(c, acc(j), scale)
	}
	c.TESTQ(operand.U32(dwFlagRes), dwFlags)
	c.JZ(operand.LabelRef(lt("nores")))
	c.LEAQ(operand.Mem{Base: dwRp, Index: dwOff, Scale: 1}, dwT)
	for j := 0; j < p; j++ {
		c.VPMOVZXBD(k.pixAddr(c, j), t)
		rq.addRes(c, acc(j), t)
	}
	c.Label(lt("nores"))
	c.LEAQ(operand.Mem{Base: dwDp, Index: dwOff, Scale: 1}, dwT)
	for j := 0; j < p; j++ {
		rq.round(c, acc(j))
		c.VPMINSD(q.top, acc(j), acc(j))
		// In [lo, hi] within [0, 255]: the narrowing saturations keep it.
		if k.avx2 {
			storeBytes(c, c.VPACKSSDW, acc(j), acc(j), t, k.pixAddr(c, j))
		} else {
			c.VPMOVUSDB(acc(j), k.pixAddr(c, j))
		}
	}
}
