package main

import (
	"math/bits"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// maxWindow emits the max-pooling kernel for one output pixel:
//
//	dst[j] = max over y < kh, x < kw of src[y*rowStride + x*pixStride + j], j < n
//
// n is a positive multiple of the vector width (Go does the channel tail);
// kh, kw >= 1; strides are in elements. Each 4-vector group of channels is
// finished over the whole window before the next, so it stays in registers.
func maxWindow(c *build.Context, name string, avx512 bool) {
	k := vectorFunc(c, name, avx512, "func(dst, src *float32, n, kh, kw, rowStride, pixStride int)",
		"Max over a kh x kw window of %d-lane channel vectors. Requires %s.")
	maxWindowBody(c, name, k.vec, 4, k.vbytes(), func(m operand.Op, v reg.VecPhysical) { c.VMAXPS(m, v, v) })
}

// maxWindow8 is maxWindow on uint8 channels (VPMAXUB): 32 lanes on AVX2,
// 64 on AVX-512BW.
func maxWindow8(c *build.Context, name string, avx512 bool) {
	k := &kernel{avx512: avx512}
	isa := "AVX2"
	if avx512 {
		isa = "AVX512BW"
	}
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(dst, src *uint8, n, kh, kw, rowStride, pixStride int)")
	c.Commentf("Max over a kh x kw window of %d-lane uint8 channel vectors. Requires %s.", k.vbytes(), isa)
	maxWindowBody(c, name, k.vec, 1, k.vbytes(), func(m operand.Op, v reg.VecPhysical) { c.VPMAXUB(m, v, v) })
}

// maxWindowBody emits the loops of maxWindow for elements of esize bytes,
// vectors of vb bytes, vmax(m, v) doing v = max(v, m).
func maxWindowBody(c *build.Context, name string, vec func(int) reg.VecPhysical, esize, vb int, vmax func(m operand.Op, v reg.VecPhysical)) {
	var (
		dst, src, n    = reg.RDI, reg.RSI, reg.RCX
		kh, kw         = reg.R8, reg.R9
		rowStr, pixStr = reg.R10, reg.R11
		row, p, y, x   = reg.R12, reg.R13, reg.R14, reg.R15
		lanes          = vb / esize
		group          = 4 * lanes // channels per register group
		label          = func(s string) operand.LabelRef { return operand.LabelRef(name + "_" + s) }
		vload, vstore  = c.VMOVUPS, c.VMOVUPS
	)
	c.Load(c.Param("dst"), dst)
	c.Load(c.Param("src"), src)
	c.Load(c.Param("n"), n)
	c.Load(c.Param("kh"), kh)
	c.Load(c.Param("kw"), kw)
	c.Load(c.Param("rowStride"), rowStr)
	c.Load(c.Param("pixStride"), pixStr)
	if esize > 1 {
		sh := operand.U8(bits.TrailingZeros(uint(esize)))
		c.SHLQ(sh, rowStr)
		c.SHLQ(sh, pixStr)
	}

	// window runs the kh x kw loop for v vectors at src.
	window := func(tag string, nv int) {
		for i := 0; i < nv; i++ {
			vload(operand.Mem{Base: src, Disp: i * vb}, vec(i))
		}
		c.MOVQ(src, row)
		c.MOVQ(kh, y)
		c.Label(string(label(tag + "_y")))
		c.MOVQ(row, p)
		c.MOVQ(kw, x)
		c.Label(string(label(tag + "_x")))
		for i := 0; i < nv; i++ {
			vmax(operand.Mem{Base: p, Disp: i * vb}, vec(i))
		}
		c.ADDQ(pixStr, p)
		c.DECQ(x)
		c.JNZ(label(tag + "_x"))
		c.ADDQ(rowStr, row)
		c.DECQ(y)
		c.JNZ(label(tag + "_y"))
		for i := 0; i < nv; i++ {
			vstore(vec(i), operand.Mem{Base: dst, Disp: i * vb})
		}
		c.ADDQ(operand.U32(nv*vb), src)
		c.ADDQ(operand.U32(nv*vb), dst)
	}
	c.Label(string(label("groups")))
	c.CMPQ(n, operand.U32(group))
	c.JL(label("singles"))
	window("g", 4)
	c.SUBQ(operand.U32(group), n)
	c.JMP(label("groups"))
	c.Label(string(label("singles")))
	c.TESTQ(n, n)
	c.JZ(label("done"))
	window("s", 1)
	c.SUBQ(operand.U32(lanes), n)
	c.JMP(label("singles"))
	c.Label(string(label("done")))
	c.VZEROUPPER()
	c.RET()
}

// vectorFunc starts a NOSPLIT function on vectors of the ISA (AVX2 or
// AVX-512) with the given signature; doc is a format with the lane count
// and the required ISA. It returns the kernel describing the registers.
func vectorFunc(c *build.Context, name string, avx512 bool, sig, doc string) *kernel {
	k := &kernel{avx512: avx512}
	isa := "AVX2"
	if avx512 {
		isa = "AVX512F"
	}
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr(sig)
	c.Commentf(doc, k.lanes(), isa)
	return k
}
