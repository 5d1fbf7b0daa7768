package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// batchnormFile emits kernels/batchnorm_amd64.s: the passes of a
// training-mode BatchNorm (kernels/batchnorm.go has their contracts and
// the Go code they must equal bit for bit). Every kernel walks k channels
// (a multiple of the float64 lanes: 8 per zmm, 4 per ymm) in blocks of up
// to four vectors (two on AVX2, which has 16 registers), and for each
// block every pixel in order, ld values apart, so each channel's float64
// sum runs in pixel order as in Go. Nothing is fused: a product that Go
// rounds is rounded here (VMULPD then VADDPD, never an FMA).
func batchnormFile(c *build.Context) {
	for _, avx512 := range []bool{false, true} {
		isa := "AVX2"
		if avx512 {
			isa = "AVX512"
		}
		bnMoments(newBN(c, "channelMoments"+isa, avx512, "func(x *float32, pixels, k, ld int, sum, sumSq *float64)"))
		bnApply(newBN(c, "batchNormApply"+isa, avx512,
			"func(x, y *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int)"))
		bnGradSums(newBN(c, "batchNormGradSums"+isa, avx512,
			"func(dy, x *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int, sumDy, sumDyH *float64)"))
		bnGradInput(newBN(c, "batchNormGradInput"+isa, avx512,
			"func(dy, x, dx *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int, mdy, mdyh, scale *float64)"))
		reluMask(c, "reluMask"+isa, avx512)
	}
}

// reluMask emits the gradient of a ReLU on whole vectors: dy[i] = 0 where
// !(y[i] > 0) (y <= 0 or NaN), n a positive multiple of the vector width
// (16 float32 lanes on AVX-512, 8 on AVX2), four vectors a pass while
// they last.
func reluMask(c *build.Context, name string, avx512 bool) {
	k := vectorFunc(c, name, avx512, "func(dy, y *float32, n int)",
		"ReLU gradient mask on %d-lane vectors. Requires %s.")
	g := &bnGen{c: c, name: name, avx512: avx512}
	dy, y, n := reg.RDI, reg.RSI, reg.RCX
	vb := k.vbytes()
	vec := func(i int) reg.VecPhysical { return k.vec(i) }
	zero := vec(12)
	c.Load(c.Param("dy"), dy)
	c.Load(c.Param("y"), y)
	c.Load(c.Param("n"), n)
	if avx512 {
		c.VPXORD(zero, zero, zero) // VXORPS on zmm would need AVX512DQ
	} else {
		c.VXORPS(zero, zero, zero)
	}
	body := func(tag string, nv int) {
		for i := 0; i < nv; i++ {
			c.VMOVUPS(operand.Mem{Base: dy, Disp: i * vb}, vec(i))
			c.VMOVUPS(operand.Mem{Base: y, Disp: i * vb}, vec(4+i))
			g.keepWhere(cmpGTOQ, vec(i), vec(4+i), zero)
			c.VMOVUPS(vec(i), operand.Mem{Base: dy, Disp: i * vb})
		}
		c.ADDQ(operand.U32(nv*vb), dy)
		c.ADDQ(operand.U32(nv*vb), y)
	}
	label := func(s string) string { return name + "_" + s }
	groupsThenSingles(c, k, label, n, body, "done")
	c.Label(label("done"))
	c.VZEROUPPER()
	c.RET()
}

// bnGen is one BatchNorm kernel being emitted: its float64 vectors are
// zmm (AVX-512) or ymm registers and its float32 vectors the ymm or xmm of
// another register, allocated per block so they never alias.
type bnGen struct {
	c      *build.Context
	name   string
	avx512 bool
	next   int // the next free vector register

	// GP registers: the pixel offset in bytes (added to every row base),
	// ld in bytes, pixels left, vectors of channels left.
	off, ld, pix, left reg.GPPhysical
}

func newBN(c *build.Context, name string, avx512 bool, sig string) *bnGen {
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr(sig)
	isa := "AVX2"
	if avx512 {
		isa = "AVX512F, AVX512VL"
	}
	c.Commentf("BatchNorm pass on %d channels per vector, float64 lanes. Requires %s.", map[bool]int{false: 4, true: 8}[avx512], isa)
	return &bnGen{c: c, name: name, avx512: avx512, off: reg.R12, ld: reg.R13, pix: reg.R14, left: reg.R15}
}

// lanes is the float64 lanes of a vector, the channels it holds.
func (g *bnGen) lanes() int {
	if g.avx512 {
		return 8
	}
	return 4
}

// maxBlock is the most vectors of channels a block does.
func (g *bnGen) maxBlock() int {
	if g.avx512 {
		return 4
	}
	return 2
}

func (g *bnGen) label(s string) string { return g.name + "_" + s }

// alloc returns a fresh register index.
func (g *bnGen) alloc() int {
	i := g.next
	g.next++
	if i >= 16 && !g.avx512 || i >= 32 {
		panic(fmt.Sprintf("%s: out of vector registers", g.name))
	}
	return i
}

// vr is one allocated vector register: d its float64 width, f the
// float32 vector of the same channels (its lower half).
type vr struct{ d, f reg.VecPhysical }

// vec allocates a register.
func (g *bnGen) vec() vr {
	i := g.alloc()
	if g.avx512 {
		return vr{zregs[i], yregs[i]}
	}
	return vr{yregs[i], xregs[i]}
}

// vecs allocates n registers.
func (g *bnGen) vecs(n int) []vr {
	v := make([]vr, n)
	for i := range v {
		v[i] = g.vec()
	}
	return v
}

// row is vector v of the current pixel's row of the float32 tensor at base.
func (g *bnGen) row(base reg.GPPhysical, v int) operand.Mem {
	return operand.Mem{Base: base, Index: g.off, Scale: 1, Disp: v * g.lanes() * 4}
}

// chans is vector v of the float64 per-channel array at base.
func (g *bnGen) chans(base reg.GPPhysical, v int) operand.Mem {
	return operand.Mem{Base: base, Disp: v * g.lanes() * 8}
}

// params loads the named pointer arguments into regs.
func (g *bnGen) params(names []string, regs []reg.GPPhysical) {
	for i, n := range names {
		g.c.Load(g.c.Param(n), regs[i])
	}
}

// toFloat rounds the float64 lanes of r to its float32 vector.
func (g *bnGen) toFloat(r vr) {
	if g.avx512 {
		g.c.VCVTPD2PS(r.d, r.f)
	} else {
		g.c.VCVTPD2PSY(r.d, r.f)
	}
}

// keepWhere zeroes the lanes of v (float32) where the predicate imm of
// CMPPS does not hold for cmp against zero (cmp may be clobbered).
func (g *bnGen) keepWhere(imm uint8, v, cmp, zero reg.VecPhysical) {
	if g.avx512 {
		g.c.VCMPPS(operand.U8(imm), zero, cmp, reg.K1)
		g.c.VMOVAPS_Z(v, reg.K1, v)
		return
	}
	g.c.VCMPPS(operand.U8(imm), zero, cmp, cmp)
	g.c.VANDPS(cmp, v, v)
}

// CMPPS predicates: "not less or equal, unordered" (x > 0 or NaN: what a
// ReLU keeps) and "greater than, ordered" (x > 0: where its gradient
// passes).
const (
	cmpNLEUQ = 0x16
	cmpGTOQ  = 0x1e
)

// bnBlocks is one block shape's code: setup loads the per-channel values
// of nv vectors of channels, body does one pixel, finish stores.
type bnBlocks struct {
	setup, body, finish func(nv int)
	floats, doubles     []reg.GPPhysical // the row and per-channel pointers, moved per block
}

// loop emits the kernel: blocks of maxBlock vectors of channels, then
// single vectors, each over every pixel in order; then RET.
func (g *bnGen) loop(b bnBlocks) {
	c := g.c
	c.Load(c.Param("k"), g.left)
	c.SHRQ(operand.U8(map[int]uint8{4: 2, 8: 3}[g.lanes()]), g.left)
	c.Load(c.Param("ld"), g.ld)
	c.SHLQ(operand.U8(2), g.ld)
	block := func(nv int) {
		g.next = 0
		b.setup(nv)
		c.XORQ(g.off, g.off)
		c.Load(c.Param("pixels"), g.pix)
		c.Label(g.label(fmt.Sprint("pixel", nv)))
		b.body(nv)
		c.ADDQ(g.ld, g.off)
		c.DECQ(g.pix)
		c.JNZ(operand.LabelRef(g.label(fmt.Sprint("pixel", nv))))
		b.finish(nv)
		for _, r := range b.floats {
			c.ADDQ(operand.U32(nv*g.lanes()*4), r)
		}
		for _, r := range b.doubles {
			c.ADDQ(operand.U32(nv*g.lanes()*8), r)
		}
	}
	c.Label(g.label("blocks"))
	c.CMPQ(g.left, operand.U32(g.maxBlock()))
	c.JL(operand.LabelRef(g.label("singles")))
	block(g.maxBlock())
	c.SUBQ(operand.U32(g.maxBlock()), g.left)
	c.JMP(operand.LabelRef(g.label("blocks")))
	c.Label(g.label("singles"))
	c.TESTQ(g.left, g.left)
	c.JZ(operand.LabelRef(g.label("done")))
	block(1)
	c.DECQ(g.left)
	c.JMP(operand.LabelRef(g.label("singles")))
	c.Label(g.label("done"))
	c.VZEROUPPER()
	c.RET()
}

// loadChans loads vector v of each per-channel float64 array into regs.
func (g *bnGen) loadChans(bases []reg.GPPhysical, regs [][]vr, nv int) {
	for i, base := range bases {
		regs[i] = g.vecs(nv)
		for v := range nv {
			g.c.VMOVUPD(g.chans(base, v), regs[i][v].d)
		}
	}
}

// storeChans stores regs back to each per-channel float64 array.
func (g *bnGen) storeChans(bases []reg.GPPhysical, regs [][]vr, nv int) {
	for i, base := range bases {
		for v := range nv {
			g.c.VMOVUPD(regs[i][v].d, g.chans(base, v))
		}
	}
}

// bnMoments: sum[j] += x[p*ld+j], sumSq[j] += x[p*ld+j]² (the square of
// a float32 is exact in float64, so no rounding is left to fuse).
func bnMoments(g *bnGen) {
	x, sum, sq := reg.RDI, reg.RSI, reg.RDX
	g.params([]string{"x", "sum", "sumSq"}, []reg.GPPhysical{x, sum, sq})
	acc := make([][]vr, 2)
	var t []vr
	g.loop(bnBlocks{floats: []reg.GPPhysical{x}, doubles: []reg.GPPhysical{sum, sq},
		setup: func(nv int) { g.loadChans([]reg.GPPhysical{sum, sq}, acc, nv); t = g.vecs(nv) },
		body: func(nv int) {
			for v := range nv {
				g.c.VCVTPS2PD(g.row(x, v), t[v].d)
				g.c.VADDPD(t[v].d, acc[0][v].d, acc[0][v].d)
				g.c.VMULPD(t[v].d, t[v].d, t[v].d)
				g.c.VADDPD(t[v].d, acc[1][v].d, acc[1][v].d)
			}
		},
		finish: func(nv int) { g.storeChans([]reg.GPPhysical{sum, sq}, acc, nv) },
	})
}

// normalized leaves in r.d the float64 of xhat = float32((x-mean)·invStd)
// for vector v of the current pixel of x, as kernels.Normalized: computed
// in float64, rounded to float32 (left in r.f), widened back if wide.
func (g *bnGen) normalized(r vr, x reg.GPPhysical, v int, mean, invStd vr, wide bool) {
	g.c.VCVTPS2PD(g.row(x, v), r.d)
	g.c.VSUBPD(mean.d, r.d, r.d)
	g.c.VMULPD(invStd.d, r.d, r.d)
	g.toFloat(r)
	if wide {
		g.c.VCVTPS2PD(r.f, r.d)
	}
}

// bnApply: y = float32(gamma·xhat) + beta, then ReLU if relu != 0 (+0
// where y <= 0, NaN kept).
func bnApply(g *bnGen) {
	c := g.c
	x, y, mean, invStd, gamma, beta, relu := reg.RDI, reg.RDX, reg.R8, reg.R9, reg.R10, reg.R11, reg.RAX
	g.params([]string{"x", "y", "mean", "invStd", "gamma", "beta", "relu"},
		[]reg.GPPhysical{x, y, mean, invStd, gamma, beta, relu})
	ch := make([][]vr, 2) // mean, invStd
	var ga, be, t, o []vr
	var zero vr
	g.loop(bnBlocks{floats: []reg.GPPhysical{x, y, gamma, beta}, doubles: []reg.GPPhysical{mean, invStd},
		setup: func(nv int) {
			g.loadChans([]reg.GPPhysical{mean, invStd}, ch, nv)
			ga, be, t, o = g.vecs(nv), g.vecs(nv), g.vecs(nv), g.vecs(nv)
			for v := range nv {
				c.VMOVUPS(operand.Mem{Base: gamma, Disp: v * g.lanes() * 4}, ga[v].f)
				c.VMOVUPS(operand.Mem{Base: beta, Disp: v * g.lanes() * 4}, be[v].f)
			}
			zero = g.vec()
			c.VXORPS(zero.f, zero.f, zero.f)
		},
		body: func(nv int) {
			for v := range nv {
				g.normalized(t[v], x, v, ch[0][v], ch[1][v], false)
				c.VMULPS(ga[v].f, t[v].f, o[v].f)
				c.VADDPS(be[v].f, o[v].f, o[v].f)
			}
			skip := g.label(fmt.Sprint("norelu", nv))
			c.TESTQ(relu, relu)
			c.JZ(operand.LabelRef(skip))
			for v := range nv {
				c.VMOVAPS(o[v].f, t[v].f) // t is free: compare a copy
				g.keepWhere(cmpNLEUQ, o[v].f, t[v].f, zero.f)
			}
			c.Label(skip)
			for v := range nv {
				c.VMOVUPS(o[v].f, g.row(y, v))
			}
		},
		finish: func(int) {},
	})
}

// reluGate zeroes the float32 lanes of gv where the BatchNorm's fused
// ReLU did not pass its output, when relu != 0: where !(float32(gamma·h)
// + beta > 0), h the float32 xhat (in h.f), the output bnApply computed.
// It recomputes the output rather than read it back: one tensor less to
// read from memory.
// The flag is read from the arguments each time: the registers are all in
// use, and the branch is always predicted.
func (g *bnGen) reluGate(gv, h, tmp, zero vr, gamma, beta reg.GPPhysical, v, nv int) {
	c := g.c
	skip := g.label(fmt.Sprint("nogate", nv, "_", v))
	flag, err := c.Param("relu").Resolve()
	if err != nil {
		panic(err)
	}
	c.CMPQ(flag.Addr, operand.U8(0))
	c.JE(operand.LabelRef(skip))
	c.VMULPS(operand.Mem{Base: gamma, Disp: v * g.lanes() * 4}, h.f, tmp.f)
	c.VADDPS(operand.Mem{Base: beta, Disp: v * g.lanes() * 4}, tmp.f, tmp.f)
	g.keepWhere(cmpGTOQ, gv.f, tmp.f, zero.f)
	c.Label(skip)
}

// bnGradSums: g = dy, zeroed where the fused ReLU (relu != 0) did not
// pass (reluGate); sumDy += g, sumDyH += g·xhat (exact products).
func bnGradSums(g *bnGen) {
	c := g.c
	dy, x, mean, invStd, gamma, beta, sumDy, sumDyH := reg.RDI, reg.RSI, reg.R8, reg.R9, reg.R10, reg.R11, reg.RBX, reg.RCX
	g.params([]string{"dy", "x", "mean", "invStd", "gamma", "beta", "sumDy", "sumDyH"},
		[]reg.GPPhysical{dy, x, mean, invStd, gamma, beta, sumDy, sumDyH})
	ch := make([][]vr, 4) // mean, invStd, sumDy, sumDyH
	var gv, hv []vr
	var tmp, zero vr
	g.loop(bnBlocks{floats: []reg.GPPhysical{dy, x, gamma, beta}, doubles: []reg.GPPhysical{mean, invStd, sumDy, sumDyH},
		setup: func(nv int) {
			g.loadChans([]reg.GPPhysical{mean, invStd, sumDy, sumDyH}, ch, nv)
			gv, hv = g.vecs(nv), g.vecs(nv)
			tmp, zero = g.vec(), g.vec()
			c.VXORPS(zero.f, zero.f, zero.f)
		},
		body: func(nv int) {
			for v := range nv {
				c.VMOVUPS(g.row(dy, v), gv[v].f)
				g.normalized(hv[v], x, v, ch[0][v], ch[1][v], false)
				g.reluGate(gv[v], hv[v], tmp, zero, gamma, beta, v, nv)
				c.VCVTPS2PD(gv[v].f, gv[v].d)
				c.VCVTPS2PD(hv[v].f, hv[v].d)
				c.VADDPD(gv[v].d, ch[2][v].d, ch[2][v].d)
				c.VMULPD(hv[v].d, gv[v].d, hv[v].d)
				c.VADDPD(hv[v].d, ch[3][v].d, ch[3][v].d)
			}
		},
		finish: func(nv int) { g.storeChans([]reg.GPPhysical{sumDy, sumDyH}, ch[2:], nv) },
	})
}

// bnGradInput: g = dy gated as in bnGradSums, then dx =
// float32(scale·((g - mdy) - float64(xhat·mdyh))).
func bnGradInput(g *bnGen) {
	c := g.c
	dy, x, dx, mean, invStd, gamma, beta := reg.RDI, reg.RSI, reg.RDX, reg.R8, reg.R9, reg.R10, reg.R11
	mdy, mdyh, scale := reg.RAX, reg.RBX, reg.RCX
	g.params([]string{"dy", "x", "dx", "mean", "invStd", "gamma", "beta", "mdy", "mdyh", "scale"},
		[]reg.GPPhysical{dy, x, dx, mean, invStd, gamma, beta, mdy, mdyh, scale})
	ch := make([][]vr, 5) // mean, invStd, mdy, mdyh, scale
	var gv, hv []vr
	var tmp, zero vr
	g.loop(bnBlocks{floats: []reg.GPPhysical{dy, x, dx, gamma, beta}, doubles: []reg.GPPhysical{mean, invStd, mdy, mdyh, scale},
		setup: func(nv int) {
			g.loadChans([]reg.GPPhysical{mean, invStd, mdy, mdyh, scale}, ch, nv)
			gv, hv = g.vecs(nv), g.vecs(nv)
			tmp, zero = g.vec(), g.vec()
			c.VXORPS(zero.f, zero.f, zero.f)
		},
		body: func(nv int) {
			for v := range nv {
				c.VMOVUPS(g.row(dy, v), gv[v].f)
				g.normalized(hv[v], x, v, ch[0][v], ch[1][v], false)
				g.reluGate(gv[v], hv[v], tmp, zero, gamma, beta, v, nv)
				c.VCVTPS2PD(gv[v].f, gv[v].d)
				c.VCVTPS2PD(hv[v].f, hv[v].d)
				c.VSUBPD(ch[2][v].d, gv[v].d, gv[v].d)
				c.VMULPD(ch[3][v].d, hv[v].d, hv[v].d)
				c.VSUBPD(hv[v].d, gv[v].d, gv[v].d)
				c.VMULPD(ch[4][v].d, gv[v].d, gv[v].d)
				g.toFloat(gv[v])
				c.VMOVUPS(gv[v].f, g.row(dx, v))
			}
		},
		finish: func(int) {},
	})
}
