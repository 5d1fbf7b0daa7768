package main

import (
	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// elemFunc starts a NOSPLIT function with the given signature and a doc
// line naming its lanes per iteration and ISA.
func elemFunc(c *build.Context, name, sig, doc string, lanes int, avx512 bool) {
	isa := "AVX2"
	if avx512 {
		isa = "AVX512F, AVX512BW"
	}
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr(sig)
	c.Commentf(doc, lanes, isa)
}

// broadcastArgs (which uses AX) loads the float32 scale and int32 zero arguments as
// broadcast vectors.
func broadcastArgs(c *build.Context, scale, zero reg.VecPhysical) {
	for _, a := range []struct {
		name string
		v    reg.VecPhysical
	}{{"scale", scale}, {"zero", zero}} {
		b, err := c.Param(a.name).Resolve()
		if err != nil {
			panic(err)
		}
		// Via a GP register: vet's asmdecl knows MOVL's operand size.
		c.MOVL(b.Addr, reg.EAX)
		c.VMOVD(reg.EAX, a.v.AsX())
		c.VPBROADCASTD(a.v.AsX(), a.v)
	}
}

// quantize emits the vector part of kernels.quantizeGo, bit-exact:
//
//	t = x / scale (VDIVPS, IEEE like Go's float32 division)
//	t = 0 if NaN; clamp to [-65536, 65536]
//	q = round-half-even(t) (VCVTPS2DQ, MXCSR left at its default by Go)
//	dst = min(max(q + zero, 0), 255)
//
// n is a positive multiple of 4 vectors (32 on AVX2, 64 on AVX-512); the
// caller guarantees |zero| <= 2^24, so q + zero cannot wrap. The clamp
// takes the bound as first source, so a NaN survives it and is then
// cleared by the ordered-compare mask before the conversion.
func quantize(c *build.Context, name string, avx512 bool) {
	k := &kernel{avx512: avx512}
	lanes := k.lanes()
	group := 4 * lanes
	elemFunc(c, name, "func(dst *uint8, src *float32, n int, scale float32, zero int32)",
		"Quantize %d float32 per iteration to uint8. Requires %s.", group, avx512)
	var (
		dst, src, n        = reg.RDI, reg.RSI, reg.RCX
		scale, zero        = k.vec(8), k.vec(9)
		lo, hi, zeroI, idx = k.vec(10), k.vec(11), k.vec(12), k.vec(13)
		vb                 = k.vbytes()
		label              = func(s string) operand.LabelRef { return operand.LabelRef(name + "_" + s) }
	)
	c.Load(c.Param("dst"), dst)
	c.Load(c.Param("src"), src)
	c.Load(c.Param("n"), n)
	broadcastArgs(c, scale, zero)
	c.MOVL(operand.U32(0xc7800000), reg.EAX) // -65536.0
	c.MOVL(operand.U32(0x47800000), reg.EDX) // 65536.0
	if avx512 {
		c.VPBROADCASTD(reg.EAX, lo)
		c.VPBROADCASTD(reg.EDX, hi)
		c.VPXORD(zeroI, zeroI, zeroI)
	} else {
		c.VMOVD(reg.EAX, lo.AsX())
		c.VPBROADCASTD(lo.AsX(), lo)
		c.VMOVD(reg.EDX, hi.AsX())
		c.VPBROADCASTD(hi.AsX(), hi)
		packIndex(c, idx)
	}
	c.Label(string(label("loop")))
	for i := 0; i < 4; i++ {
		v := k.vec(i)
		c.VMOVUPS(operand.Mem{Base: src, Disp: i * vb}, v)
		c.VDIVPS(scale, v, v)
		c.VMAXPS(v, lo, v) // max(lo, v): NaN stays
		c.VMINPS(v, hi, v)
		if avx512 {
			kr := []reg.OpmaskPhysical{reg.K1, reg.K2, reg.K3, reg.K4}[i]
			c.VCMPPS(operand.U8(7), v, v, kr) // ordered: not NaN
			c.VCVTPS2DQ_Z(v, kr, v)
			c.VPADDD(zero, v, v)
			c.VPMAXSD(zeroI, v, v)
			c.VPMOVUSDB(v, operand.Mem{Base: dst, Disp: i * lanes})
		} else {
			m := k.vec(4 + i)
			c.VCMPPS(operand.U8(7), v, v, m)
			c.VANDPS(m, v, v)
			c.VCVTPS2DQ(v, v)
			c.VPADDD(zero, v, v)
		}
	}
	if !avx512 {
		packStore(c, k, idx, dst)
	}
	c.ADDQ(operand.U32(4*vb), src)
	c.ADDQ(operand.U32(group), dst)
	c.SUBQ(operand.U32(group), n)
	c.JNZ(label("loop"))
	c.VZEROUPPER()
	c.RET()
}

// dequantize emits the vector part of kernels.dequantizeGo, bit-exact:
// dst = float32(int32(q) - zero) * scale (VPSUBD wraps like Go's int32
// subtraction, VCVTDQ2PS rounds to nearest even like Go's conversion).
// n is a positive multiple of 4 vectors.
func dequantize(c *build.Context, name string, avx512 bool) {
	k := &kernel{avx512: avx512}
	lanes := k.lanes()
	group := 4 * lanes
	elemFunc(c, name, "func(dst *float32, src *uint8, n int, scale float32, zero int32)",
		"Dequantize %d uint8 per iteration to float32. Requires %s.", group, avx512)
	var (
		dst, src, n = reg.RDI, reg.RSI, reg.RCX
		scale, zero = k.vec(8), k.vec(9)
		vb          = k.vbytes()
		label       = func(s string) operand.LabelRef { return operand.LabelRef(name + "_" + s) }
	)
	c.Load(c.Param("dst"), dst)
	c.Load(c.Param("src"), src)
	c.Load(c.Param("n"), n)
	broadcastArgs(c, scale, zero)
	c.Label(string(label("loop")))
	for i := 0; i < 4; i++ {
		v := k.vec(i)
		c.VPMOVZXBD(operand.Mem{Base: src, Disp: i * lanes}, v)
		c.VPSUBD(zero, v, v)
		c.VCVTDQ2PS(v, v)
		c.VMULPS(scale, v, v)
		c.VMOVUPS(v, operand.Mem{Base: dst, Disp: i * vb})
	}
	c.ADDQ(operand.U32(group), src)
	c.ADDQ(operand.U32(4*vb), dst)
	c.SUBQ(operand.U32(group), n)
	c.JNZ(label("loop"))
	c.VZEROUPPER()
	c.RET()
}

// packIndex sets idx for packStore (uses AX).
func packIndex(c *build.Context, idx reg.VecPhysical) {
	// VPACKSSDW and VPACKUSWB work within 128-bit lanes: after both, dword
	// j holds four bytes of vector (j%4) half (j/4); VPERMD by idx restores
	// the order.
	c.MOVQ(operand.U64(0x0703060205010400), reg.RAX)
	c.VMOVQ(reg.RAX, idx.AsX())
	c.VPMOVZXBD(idx.AsX(), idx)
}

// packStore saturates the int32 lanes of ymm vectors 0-3 to uint8 and
// stores the 32 bytes in order at dst (AVX2).
func packStore(c *build.Context, k *kernel, idx reg.VecPhysical, dst reg.GPPhysical) {
	c.VPACKSSDW(k.vec(1), k.vec(0), k.vec(0))
	c.VPACKSSDW(k.vec(3), k.vec(2), k.vec(2))
	c.VPACKUSWB(k.vec(2), k.vec(0), k.vec(0))
	c.VPERMD(k.vec(0), idx, k.vec(0))
	c.VMOVDQU(k.vec(0), operand.Mem{Base: dst})
}

// add8 emits the vector part of kernels.add8Go, bit-exact with Requantize:
//
//	t = float32(a - zA)·sA + float32(b - zB)·sB   (each product rounded)
//	q = round-half-even(clamp(t, ±65536)) + zOut
//	dst = min(max(q, lo), 255)
//
// p points to a kernels.Add8Params, typed *int32 as the GEMM epilogue block
// is: int32 ZeroA, ZeroB, ZeroOut, Lo at 0-12, float32 ScaleA, ScaleB at
// 16 and 20 (checked by TestAdd8ParamsLayout).
// The caller guarantees finite t (|scales| <= 2^90) and |zOut| <= 2^24.
// n is a positive multiple of 4 vectors (32 on AVX2, 64 on AVX-512).
func add8(c *build.Context, name string, avx512 bool) {
	k := &kernel{avx512: avx512}
	lanes := k.lanes()
	group := 4 * lanes
	elemFunc(c, name, "func(dst, a, b *uint8, n int, p *int32)",
		"Requantized sum of %d uint8 pairs per iteration. Requires %s.", group, avx512)
	var (
		dst, a, b, n, p = reg.RDI, reg.RSI, reg.RDX, reg.RCX, reg.R8
		tmp             = k.vec(4)
		zA, zB, zOut    = k.vec(5), k.vec(6), k.vec(7)
		lo, sA, sB      = k.vec(8), k.vec(9), k.vec(10)
		cLo, cHi        = k.vec(11), k.vec(12)
		idx, zeroI      = k.vec(13), k.vec(14)
		label           = func(s string) operand.LabelRef { return operand.LabelRef(name + "_" + s) }
	)
	c.Load(c.Param("dst"), dst)
	c.Load(c.Param("a"), a)
	c.Load(c.Param("b"), b)
	c.Load(c.Param("n"), n)
	c.Load(c.Param("p"), p)
	for i, v := range []reg.VecPhysical{zA, zB, zOut, lo, sA, sB} {
		c.VPBROADCASTD(operand.Mem{Base: p, Disp: 4 * i}, v)
	}
	c.MOVL(operand.U32(0xc7800000), reg.EAX) // -65536.0
	c.VMOVD(reg.EAX, cLo.AsX())
	c.VPBROADCASTD(cLo.AsX(), cLo)
	c.MOVL(operand.U32(0x47800000), reg.EAX) // 65536.0
	c.VMOVD(reg.EAX, cHi.AsX())
	c.VPBROADCASTD(cHi.AsX(), cHi)
	if avx512 {
		c.VPXORD(zeroI, zeroI, zeroI)
	} else {
		packIndex(c, idx)
	}
	c.Label(string(label("loop")))
	for i := 0; i < 4; i++ {
		v := k.vec(i)
		c.VPMOVZXBD(operand.Mem{Base: a, Disp: i * lanes}, v)
		c.VPSUBD(zA, v, v)
		c.VCVTDQ2PS(v, v)
		c.VMULPS(sA, v, v)
		c.VPMOVZXBD(operand.Mem{Base: b, Disp: i * lanes}, tmp)
		c.VPSUBD(zB, tmp, tmp)
		c.VCVTDQ2PS(tmp, tmp)
		c.VMULPS(sB, tmp, tmp)
		c.VADDPS(tmp, v, v)
		c.VMAXPS(cLo, v, v)
		c.VMINPS(cHi, v, v)
		c.VCVTPS2DQ(v, v)
		c.VPADDD(zOut, v, v)
		c.VPMAXSD(lo, v, v)
		if avx512 {
			c.VPMAXSD(zeroI, v, v) // VPMOVUSDB reads lanes as unsigned
			c.VPMOVUSDB(v, operand.Mem{Base: dst, Disp: i * lanes})
		}
	}
	if !avx512 {
		packStore(c, k, idx, dst)
	}
	c.ADDQ(operand.U32(group), a)
	c.ADDQ(operand.U32(group), b)
	c.ADDQ(operand.U32(group), dst)
	c.SUBQ(operand.U32(group), n)
	c.JNZ(label("loop"))
	c.VZEROUPPER()
	c.RET()
}
