package main

import (
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// epilogue emits the stand-alone epilogue used after the Winograd output
// transform (the GEMM kernels fuse theirs):
//
//	v[i] = relu?(v[i] + bias[i] + res[i]), i < n
//
// bias is added if flags&flagBias, res if flags&flagRes, ReLU applied if
// flags&flagRelu, in that order, as the GEMM epilogue does; ReLU keeps NaN
// (max(x, 0) with x as the second source). n is a positive multiple of the
// vector width. Four vectors per iteration while they last, then one.
func epilogue(c *build.Context, name string, avx512 bool) {
	k := vectorFunc(c, name, avx512, "func(v, bias, res *float32, n, flags int)",
		"Bias, residual and ReLU on %d-lane vectors. Requires %s.")
	var (
		v, bias, res, n, flags = reg.RDI, reg.RSI, reg.RDX, reg.RCX, reg.R8
		vb                     = k.vbytes()
		zero                   = k.vec(15)
		label                  = func(s string) string { return name + "_" + s }
	)
	c.Load(c.Param("v"), v)
	c.Load(c.Param("bias"), bias)
	c.Load(c.Param("res"), res)
	c.Load(c.Param("n"), n)
	c.Load(c.Param("flags"), flags)
	if avx512 {
		c.VPXORD(zero, zero, zero)
	} else {
		c.VXORPS(zero, zero, zero)
	}
	body := func(tag string, nv int) {
		for i := 0; i < nv; i++ {
			c.VMOVUPS(operand.Mem{Base: v, Disp: i * vb}, k.vec(i))
		}
		c.TESTQ(operand.U32(flagBias), flags)
		c.JZ(operand.LabelRef(label(tag + "_nobias")))
		for i := 0; i < nv; i++ {
			c.VADDPS(operand.Mem{Base: bias, Disp: i * vb}, k.vec(i), k.vec(i))
		}
		c.ADDQ(operand.U32(nv*vb), bias)
		c.Label(label(tag + "_nobias"))
		c.TESTQ(operand.U32(flagRes), flags)
		c.JZ(operand.LabelRef(label(tag + "_nores")))
		for i := 0; i < nv; i++ {
			c.VADDPS(operand.Mem{Base: res, Disp: i * vb}, k.vec(i), k.vec(i))
		}
		c.ADDQ(operand.U32(nv*vb), res)
		c.Label(label(tag + "_nores"))
		c.TESTQ(operand.U32(flagRelu), flags)
		c.JZ(operand.LabelRef(label(tag + "_norelu")))
		for i := 0; i < nv; i++ {
			c.VMAXPS(k.vec(i), zero, k.vec(i))
		}
		c.Label(label(tag + "_norelu"))
		for i := 0; i < nv; i++ {
			c.VMOVUPS(k.vec(i), operand.Mem{Base: v, Disp: i * vb})
		}
		c.ADDQ(operand.U32(nv*vb), v)
	}
	groupsThenSingles(c, k, label, n, body, "done")
	c.Label(label("done"))
	c.VZEROUPPER()
	c.RET()
}

// clampRows emits the clamp of the Clip op and of a Clip fused into a
// layer (kernels.Clamp, Epilogue.Clamp) on rows of vectors:
//
//	dst[r*ld+j] = src[r*ld+j] clamped to [lo, hi], r < rows, j < n
//
// as VMAXPS with lo, then VMINPS with hi, the value the second source of
// both: x < lo becomes lo, then x > hi becomes hi, and NaN passes (so
// does a zero equal to a bound of zero, with its sign). n is a positive
// multiple of the vector width, rows >= 1, ld (in elements) >= n; dst may
// be src. Four vectors per iteration while they last, then one.
func clampRows(c *build.Context, name string, avx512 bool) {
	k := vectorFunc(c, name, avx512, "func(dst, src *float32, rows, n, ld int, lo, hi float32)",
		"Clamp of rows of %d-lane vectors to [lo, hi], NaN passing. Requires %s.")
	var (
		dst, src, rows, n, ld = reg.RDI, reg.RSI, reg.RDX, reg.RCX, reg.R8
		d, s, j               = reg.R9, reg.R10, reg.R11
		vb                    = k.vbytes()
		lo, hi                = k.vec(14), k.vec(15)
		label                 = func(s string) string { return name + "_" + s }
	)
	c.Load(c.Param("dst"), dst)
	c.Load(c.Param("src"), src)
	c.Load(c.Param("rows"), rows)
	c.Load(c.Param("n"), n)
	c.Load(c.Param("ld"), ld)
	c.SHLQ(operand.U8(2), ld)
	dwBroadcastArg(c, "lo", lo)
	dwBroadcastArg(c, "hi", hi)
	body := func(tag string, nv int) {
		for i := 0; i < nv; i++ {
			c.VMAXPS(operand.Mem{Base: s, Disp: i * vb}, lo, k.vec(i))
		}
		for i := 0; i < nv; i++ {
			c.VMINPS(k.vec(i), hi, k.vec(i))
		}
		for i := 0; i < nv; i++ {
			c.VMOVUPS(k.vec(i), operand.Mem{Base: d, Disp: i * vb})
		}
		c.ADDQ(operand.U32(nv*vb), s)
		c.ADDQ(operand.U32(nv*vb), d)
	}
	c.Label(label("row"))
	c.MOVQ(dst, d)
	c.MOVQ(src, s)
	c.MOVQ(n, j)
	groupsThenSingles(c, k, label, j, body, "next")
	c.Label(label("next"))
	c.ADDQ(ld, dst)
	c.ADDQ(ld, src)
	c.DECQ(rows)
	c.JNZ(operand.LabelRef(label("row")))
	c.VZEROUPPER()
	c.RET()
}

// groupsThenSingles emits the loop of a vector function over n values (n
// a multiple of the lanes, counted down in register n): body of four
// vectors while four remain, then of one, then a jump to label(end).
// body(tag, nv) must advance its pointers by nv vectors.
func groupsThenSingles(c *build.Context, k *kernel, label func(string) string, n reg.Physical, body func(tag string, nv int), end string) {
	c.Label(label("groups"))
	c.CMPQ(n, operand.U32(4*k.lanes()))
	c.JL(operand.LabelRef(label("singles")))
	body("g", 4)
	c.SUBQ(operand.U32(4*k.lanes()), n)
	c.JMP(operand.LabelRef(label("groups")))
	c.Label(label("singles"))
	c.TESTQ(n, n)
	c.JZ(operand.LabelRef(label(end)))
	body("s", 1)
	c.SUBQ(operand.U32(k.lanes()), n)
	c.JMP(operand.LabelRef(label("singles")))
}
