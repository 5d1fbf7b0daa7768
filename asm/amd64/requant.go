package main

import (
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// requant emits, on vectors of int32 accumulators, the float32 steps of
// kernels.Requantize in its order and rounding (no FMA: each product is
// rounded on its own), for the int8 GEMM epilogues (gemm8.go) and the
// int8 Winograd output transform (wino8.go):
//
//	t = float32(acc) * scale                          (toFloat)
//	t = t + float32(res - resZero) * resScale         (addRes, with a residual)
//	q = round-half-even(clamp(t, ±65536)) + zeroOut   (round: VCVTPS2DQ, default MXCSR)
//	q = max(q, lo)
//
// The operands hold their value broadcast to every lane, in a register or
// in memory. The caller saturates q to 255 as it narrows it to bytes.
type requant struct {
	resZero, resScale, hi, negHi, zeroOut, lo operand.Op
	// maxFirst clamps as min(max(t, -65536), 65536), as Requantize writes
	// it (the Winograd output transform); otherwise max(min(t, 65536),
	// -65536) (the GEMM epilogues). The two agree for every t but NaN,
	// which no caller produces (finite scales).
	maxFirst bool
	// rangeClamp (AVX512DQ) clamps with one VRANGEPS instead: the value of
	// smaller magnitude of t and hi (+65536) with the sign of t, which is
	// the same for every t but NaN.
	rangeClamp bool
}

// toFloat converts x to float32 and multiplies it by scale.
func (q *requant) toFloat(c *build.Context, x reg.VecPhysical, scale operand.Op) {
	c.VCVTDQ2PS(x, x)
	c.VMULPS(scale, x, x)
}

// addRes adds to x the residual in t, uint8 values widened to int32
// lanes; t is clobbered.
func (q *requant) addRes(c *build.Context, x, t reg.VecPhysical) {
	c.VPSUBD(q.resZero, t, t)
	c.VCVTDQ2PS(t, t)
	c.VMULPS(q.resScale, t, t)
	c.VADDPS(t, x, x)
}

// round clamps x, rounds it to int32, adds the output zero point and
// applies the lower bound: x ends in [lo, 65536 + zeroOut].
func (q *requant) round(c *build.Context, x reg.VecPhysical) {
	switch {
	case q.rangeClamp:
		c.VRANGEPS(operand.U8(0b0010), q.hi, x, x) // imm8: min of |.|, sign of x
	case q.maxFirst:
		c.VMAXPS(q.negHi, x, x)
		c.VMINPS(q.hi, x, x)
	default:
		c.VMINPS(q.hi, x, x)
		c.VMAXPS(q.negHi, x, x)
	}
	c.VCVTPS2DQ(x, x)
	c.VPADDD(q.zeroOut, x, x)
	c.VPMAXSD(q.lo, x, x)
}

// storeBytes (AVX2) narrows the int32 lanes of the ymm vectors x0 and x1
// (columns 0-7 and 8-15; x1 == x0 for 8 columns) to bytes, saturating,
// and stores the 16 (8) bytes at m in column order. pack is the first,
// dword-to-word narrowing: VPACKSSDW keeps any lane >= 0 exact through
// the saturation to 255 of VPACKUSWB that follows; VPACKUSDW only lanes
// in [0, 255]. t is scratch; x0 is clobbered.
func storeBytes(c *build.Context, pack func(...operand.Op), x0, x1, t reg.VecPhysical, m operand.Mem) {
	x := x0.AsX().(reg.VecPhysical)
	// After the packs, lane 0 holds columns 0-3 then 8-11 (or 0-3 twice),
	// lane 1 columns 4-7 then 12-15.
	pack(x1, x0, x0)
	c.VPACKUSWB(x0, x0, x0)
	c.VEXTRACTI128(operand.U8(1), x0, t.AsX())
	c.VPUNPCKLDQ(t.AsX(), x, x)
	if x1 != x0 {
		c.VMOVDQU(x, m)
	} else {
		c.MOVQ(x, m)
	}
}
