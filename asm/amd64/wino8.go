package main

// kernels/winograd8_amd64.s: the stages of the integer int8 Winograd
// F(2x2, 3x3) (kernels/winograd8.go) for AVX2, AVX-512BW and AVX512-VNNI:
// the int16 transform-domain GEMM, the input transform (uint8 -> int16)
// and the output transform fused with the requantization.

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// wino8File emits kernels/winograd8_amd64.s.
func wino8File(c *build.Context) {
	for _, k := range gemms16 {
		k.generate(c)
	}
	wino8In(c, "wino8InAVX2", false)
	wino8In(c, "wino8InAVX512", true)
	wino8Out(c, "wino8OutAVX2", false)
	wino8Out(c, "wino8OutAVX512", true)
}

var xregs = []reg.VecPhysical{reg.X0, reg.X1, reg.X2, reg.X3, reg.X4, reg.X5, reg.X6, reg.X7, reg.X8, reg.X9, reg.X10,
	reg.X11, reg.X12, reg.X13, reg.X14, reg.X15, reg.X16, reg.X17, reg.X18, reg.X19, reg.X20, reg.X21, reg.X22,
	reg.X23, reg.X24, reg.X25, reg.X26, reg.X27, reg.X28, reg.X29, reg.X30, reg.X31}

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

// gemm16 is one int16 GEMM kernel: an mr x (nv*lanes) tile of int32
// accumulators over k2 channel pairs, with the register plan of the fp32
// kernel (acc, bvec, tmp) and no prefetching.
type gemm16 struct {
	kernel
	vnni bool // VPDPWSSD instead of VPMADDWD + VPADDD
}

var gemms16 = []*gemm16{
	{kernel: kernel{name: "wino8Gemm_6x16_AVX2", mr: 6, nv: 2, unroll: 2}},
	{kernel: kernel{name: "wino8Gemm_14x32_AVX512BW", avx512: true, mr: 14, nv: 2, unroll: 2}},
	{kernel: kernel{name: "wino8Gemm_14x32_AVX512VNNI", avx512: true, mr: 14, nv: 2, unroll: 2}, vnni: true},
}

func (k *gemm16) generate(c *build.Context) {
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
	tile := func(h int) {
		k.kloop(c, h, l(fmt.Sprintf("m%d_", h)))
		k.store(c, h)
	}
	next := func() {
		c.IMUL3Q(operand.U32(k.mr), rLdc, reg.RAX)
		c.ADDQ(reg.RAX, rC)
	}
	rowTiles(c, l, k.mr, tile, "next", func() {}, next)
}

func (k *gemm16) mov(c *build.Context, src, dst operand.Op) {
	if k.avx512 {
		c.VMOVDQU32(src, dst)
	} else {
		c.VMOVDQU(src, dst)
	}
}

func (k *gemm16) kloop(c *build.Context, h int, l string) {
	k.zeroAcc(c, h, false)
	loadB := func(u int) {
		for v := 0; v < k.nv; v++ {
			k.mov(c, operand.Mem{Base: rB, Disp: (u*k.nv + v) * k.vbytes()}, k.bvec(v))
		}
	}
	row := func(i int, a operand.Mem) {
		if k.vnni {
			t := k.tmp(i)
			c.VPBROADCASTD(a, t)
			for v := 0; v < k.nv; v++ {
				vpdpwssd(c, k.bvec(v), t, k.acc(i, v))
			}
			return
		}
		t, p := k.tmp(0), k.tmp(1)
		c.VPBROADCASTD(a, t)
		for v := 0; v < k.nv; v++ {
			c.VPMADDWD(k.bvec(v), t, p)
			c.VPADDD(p, k.acc(i, v), k.acc(i, v))
		}
	}
	tileKLoop(c, l, h, k.mr, k.unroll, k.nr()*4, 0, loadB, row)
}

// store writes the h rows of accumulators to c (whole panels: the caller's
// M matrix is padded to a multiple of NR columns).
func (k *gemm16) store(c *build.Context, h int) {
	c.MOVQ(rC, reg.RAX)
	for i := 0; i < h; i++ {
		if i > 0 {
			c.ADDQ(rLdc, reg.RAX)
		}
		for v := 0; v < k.nv; v++ {
			k.mov(c, k.acc(i, v), operand.Mem{Base: reg.RAX, Disp: v * k.vbytes()})
		}
	}
}

// Registers of wino8In: the rows of the 4x4 patch, the output rows
// (V[4i] for i = 0..3), the pixel and output strides with their triples
// (for scaled addressing of x = 3), and the channel count.
var (
	wiSrc                         = [4]reg.GPPhysical{reg.RAX, reg.RBX, reg.RCX, reg.RDX}
	wiDst                         = [4]reg.GPPhysical{reg.RSI, reg.RDI, reg.R8, reg.R9}
	wiPs, wiPs3, wiDs, wiDs3, wiN = reg.R10, reg.R11, reg.R12, reg.R13, reg.R14
)

// wino8In emits the input transform on n channels (a multiple of 16
// for AVX2, 32 for AVX-512): d = src[y*rs+x*ps+c] - zero as int16,
// dst[ξ*ds+c] = (Bᵀ d B)[ξ], Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
// AVX-512 keeps the 16 vectors in registers; AVX2, with 16 registers,
// writes the column pass to dst and reads it back for the row pass.
func wino8In(c *build.Context, name string, avx512 bool) {
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
	g := &wino8InGen{c: c, avx512: avx512, zero: reg.Y15}
	if avx512 {
		g.zero = reg.Z31
	}
	g.setup()

	c.Label(l("loop"))
	if avx512 {
		g.inRegisters()
	} else {
		g.throughMemory()
	}
	for y := 0; y < 4; y++ {
		c.ADDQ(operand.U32(lanes), wiSrc[y])
	}
	for i := 0; i < 4; i++ {
		c.ADDQ(operand.U32(2*lanes), wiDst[i])
	}
	c.SUBQ(operand.U32(lanes), wiN)
	c.JNZ(operand.LabelRef(l("loop")))
	c.VZEROUPPER()
	c.RET()
}

// wino8InGen holds what the steps of one wino8In share: the ISA and the
// register of the broadcast zero point.
type wino8InGen struct {
	c      *build.Context
	avx512 bool
	zero   reg.VecPhysical
}

// setup loads the arguments: the four patch rows and the four output rows
// as pointers (so that every access is one scaled address), the strides,
// n, and the zero point in every int16 lane.
func (g *wino8InGen) setup() {
	c := g.c
	c.Load(c.Param("src"), wiSrc[0])
	c.Load(c.Param("rs"), reg.R15)
	for y := 1; y < 4; y++ {
		c.LEAQ(operand.Mem{Base: wiSrc[y-1], Index: reg.R15, Scale: 1}, wiSrc[y])
	}
	c.Load(c.Param("ps"), wiPs)
	c.LEAQ(operand.Mem{Base: wiPs, Index: wiPs, Scale: 2}, wiPs3)
	c.Load(c.Param("ds"), wiDs)
	c.SHLQ(operand.U8(1), wiDs)
	c.LEAQ(operand.Mem{Base: wiDs, Index: wiDs, Scale: 2}, wiDs3)
	c.Load(c.Param("dst"), wiDst[0])
	for i := 1; i < 4; i++ {
		c.LEAQ(operand.Mem{Base: wiDst[i-1], Index: wiDs, Scale: 4}, wiDst[i])
	}
	c.Load(c.Param("n"), wiN)
	c.Load(c.Param("zero"), reg.R15)
	c.MOVQ(reg.R15, xregs[0])
	c.VPBROADCASTW(xregs[0], g.zero)
}

func (g *wino8InGen) srcAt(y, x int) operand.Mem {
	return scaled(wiSrc[y], x, map[int]reg.GPPhysical{1: wiPs, 3: wiPs3})
}

func (g *wino8InGen) dstAt(xi int) operand.Mem {
	return scaled(wiDst[xi/4], xi%4, map[int]reg.GPPhysical{1: wiDs, 3: wiDs3})
}

// load widens 16 or 32 activations to int16 and subtracts the zero point.
func (g *wino8InGen) load(m operand.Mem, v reg.VecPhysical) {
	g.c.VPMOVZXBW(m, v)
	g.c.VPSUBW(g.zero, v, v)
}

// xf applies Bᵀ in place to (a, b, c, d) -> (a-c, b+c, c-b, b-d).
func (g *wino8InGen) xf(r [4]reg.VecPhysical, tmp reg.VecPhysical) {
	c := g.c
	c.VPSUBW(r[2], r[0], r[0])
	c.VPSUBW(r[3], r[1], r[3])
	c.VPADDW(r[2], r[1], tmp)
	c.VPSUBW(r[1], r[2], r[2])
	if g.avx512 {
		c.VMOVDQU64(tmp, r[1])
	} else {
		c.VMOVDQU(tmp, r[1])
	}
}

// inRegisters (AVX-512) loads the whole patch into Z0-Z15, transforms its
// columns then its rows, and stores the 16 results.
func (g *wino8InGen) inRegisters() {
	var d [4][4]reg.VecPhysical
	for y := 0; y < 4; y++ {
		for x := 0; x < 4; x++ {
			d[y][x] = zregs[y*4+x]
			g.load(g.srcAt(y, x), d[y][x])
		}
	}
	tmp := zregs[16]
	for x := 0; x < 4; x++ {
		g.xf([4]reg.VecPhysical{d[0][x], d[1][x], d[2][x], d[3][x]}, tmp)
	}
	for i := 0; i < 4; i++ {
		g.xf(d[i], tmp)
		for j := 0; j < 4; j++ {
			g.c.VMOVDQU64(d[i][j], g.dstAt(i*4+j))
		}
	}
}

// throughMemory (AVX2) transforms one column of the patch at a time into
// dst, then reads dst back a row at a time for the row pass: the patch
// does not fit in 16 registers.
func (g *wino8InGen) throughMemory() {
	c := g.c
	r := [4]reg.VecPhysical{yregs[0], yregs[1], yregs[2], yregs[3]}
	tmp := yregs[4]
	for x := 0; x < 4; x++ {
		for y := 0; y < 4; y++ {
			g.load(g.srcAt(y, x), r[y])
		}
		g.xf(r, tmp)
		for i := 0; i < 4; i++ {
			c.VMOVDQU(r[i], g.dstAt(i*4+x))
		}
	}
	for i := 0; i < 4; i++ {
		for j := 0; j < 4; j++ {
			c.VMOVDQU(g.dstAt(i*4+j), r[j])
		}
		g.xf(r, tmp)
		for j := 0; j < 4; j++ {
			c.VMOVDQU(r[j], g.dstAt(i*4+j))
		}
	}
}

// Registers of wino8Out. Vector registers 0-7 hold the column pass, then
// y in 0, 3, 4, 7. Constants: 8 -65536, 9 65536, 10 zeroOut, 11 lo,
// 12 255, 13 resZero, 14 resScale; 15 scratch; 1, 2, 5, 6 free after the
// column pass. woSrc2 walks the rows of M.
var (
	woDst, woRs, woPs, woSrc, woSs, woSs3, woN = reg.RDI, reg.RSI, reg.RDX, reg.RAX, reg.RBX, reg.RCX, reg.R8
	woBias, woScale, woRes, woFlags, woSrc2    = reg.R9, reg.R10, reg.R11, reg.R12, reg.R13
)

// wino8Out emits the output transform fused with the requantization
// on n channels (a multiple of 8 for AVX2, 16 for AVX-512), the steps of
// kernels.Requantize in its order: with M[ξ] = src[ξ*ss+c] (int32),
// y = Aᵀ M A (Aᵀ = [1 1 1 0; 0 1 -1 -1]) in wrapping int32 adds, then for
// each of the 2x2 outputs acc = y>>2 (+ bias), t = float32(acc)*scale
// (+ float32(res-resZero)*resScale, product rounded then sum), clamped to
// ±65536, rounded half to even (VCVTPS2DQ, default MXCSR), + zeroOut,
// clamped to [lo, 255], stored as a byte at dst[i*rs+k*ps+c]; res has
// dst's strides. No FMA anywhere. The flags are flagBias and flagRes of
// the GEMM kernels (wino8Flag* in kernels/winograd8_amd64.go).
func wino8Out(c *build.Context, name string, avx512 bool) {
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(dst *uint8, rs, ps int, src *int32, ss, n int, bias *int32, scale *float32, res *uint8, zeroOut, lo, resZero int, resScale float32, flags int)")
	isa, lanes := "AVX2", 8
	if avx512 {
		isa, lanes = "AVX512F, AVX512BW", 16
	}
	c.Commentf("Output transform and requantization of the int8 Winograd F(2x2, 3x3),")
	c.Commentf("%d channels per iteration. Requires %s.", lanes, isa)
	g := &wino8OutGen{c: c, avx512: avx512, l: func(s string) string { return name + "_" + s }}
	vb := 4 * lanes

	g.loadArgs()
	g.broadcastConsts()
	c.Label(g.l("loop"))
	g.requantize(g.rowPass(g.columnPass()))
	c.ADDQ(operand.U32(vb), woSrc)
	c.ADDQ(operand.U32(vb), woBias)
	c.ADDQ(operand.U32(vb), woScale)
	c.ADDQ(operand.U32(lanes), woRes)
	c.ADDQ(operand.U32(lanes), woDst)
	c.SUBQ(operand.U32(lanes), woN)
	c.JNZ(operand.LabelRef(g.l("loop")))
	c.VZEROUPPER()
	c.RET()
}

// wino8OutGen holds what the steps of one wino8Out share.
type wino8OutGen struct {
	c      *build.Context
	avx512 bool
	l      func(string) string // the kernel's labels
}

func (g *wino8OutGen) v(i int) reg.VecPhysical { return (&kernel{avx512: g.avx512}).vec(i) }

func (g *wino8OutGen) mov(src, dst operand.Op) {
	if g.avx512 {
		g.c.VMOVDQU32(src, dst)
	} else {
		g.c.VMOVDQU(src, dst)
	}
}

// mAt is M[4i+x], at woSrc2 + x*ss with woSrc2 on row i.
func (g *wino8OutGen) mAt(x int) operand.Mem {
	return scaled(woSrc2, x, map[int]reg.GPPhysical{1: woSs, 3: woSs3})
}

// outAt addresses output q = 2i+k of the 2x2 block, at base + i*rs + k*ps
// (R15 holds rs + ps).
func (g *wino8OutGen) outAt(base reg.GPPhysical, q int) operand.Mem {
	m := operand.Mem{Base: base}
	switch q {
	case 1:
		m.Index, m.Scale = woPs, 1
	case 2:
		m.Index, m.Scale = woRs, 1
	case 3:
		m.Index, m.Scale = reg.R15, 1 // rs + ps
	}
	return m
}

func (g *wino8OutGen) loadArgs() {
	c := g.c
	c.Load(c.Param("dst"), woDst)
	c.Load(c.Param("rs"), woRs)
	c.Load(c.Param("ps"), woPs)
	c.Load(c.Param("src"), woSrc)
	c.Load(c.Param("ss"), woSs)
	c.SHLQ(operand.U8(2), woSs)
	c.LEAQ(operand.Mem{Base: woSs, Index: woSs, Scale: 2}, woSs3)
	c.Load(c.Param("n"), woN)
	c.Load(c.Param("bias"), woBias)
	c.Load(c.Param("scale"), woScale)
	c.Load(c.Param("res"), woRes)
	c.Load(c.Param("flags"), woFlags)
}

// broadcastConsts puts the requantization constants in vector registers
// 8-14 (see the register plan above), once per call.
func (g *wino8OutGen) broadcastConsts() {
	c, v := g.c, g.v
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
}

// columnPass computes t0x = m0x + m1x + m2x and t1x = m1x - m2x - m3x,
// reaching the rows of M by advancing woSrc2 by 4*ss.
func (g *wino8OutGen) columnPass() (t0, t1 [4]reg.VecPhysical) {
	c, v := g.c, g.v
	tmp := v(15)
	t0 = [4]reg.VecPhysical{v(0), v(1), v(2), v(3)}
	t1 = [4]reg.VecPhysical{v(4), v(5), v(6), v(7)}
	nextRow := func() { c.LEAQ(operand.Mem{Base: woSrc2, Index: woSs, Scale: 4}, woSrc2) }
	c.MOVQ(woSrc, woSrc2)
	for x := 0; x < 4; x++ {
		g.mov(g.mAt(x), t0[x])
	}
	nextRow()
	for x := 0; x < 4; x++ {
		g.mov(g.mAt(x), t1[x])
		c.VPADDD(t1[x], t0[x], t0[x])
	}
	nextRow()
	for x := 0; x < 4; x++ {
		g.mov(g.mAt(x), tmp)
		c.VPADDD(tmp, t0[x], t0[x])
		c.VPSUBD(tmp, t1[x], t1[x])
	}
	nextRow()
	for x := 0; x < 4; x++ {
		c.VPSUBD(g.mAt(x), t1[x], t1[x])
	}
	return t0, t1
}

// rowPass computes y_i0 = t_i0 + t_i1 + t_i2 (into t_i0) and
// y_i1 = t_i1 - t_i2 - t_i3 (into t_i3), then y >>= 2 (exact); it returns
// the four outputs in the order of outAt.
func (g *wino8OutGen) rowPass(t0, t1 [4]reg.VecPhysical) (ys [4]reg.VecPhysical) {
	c, tmp := g.c, g.v(15)
	for i, t := range [2][4]reg.VecPhysical{t0, t1} {
		c.VPSUBD(t[2], t[1], tmp)
		c.VPSUBD(t[3], tmp, t[3])
		c.VPADDD(t[1], t[0], t[0])
		c.VPADDD(t[2], t[0], t[0])
		c.VPSRAD(operand.U8(2), t[0], t[0])
		c.VPSRAD(operand.U8(2), t[3], t[3])
		ys[2*i], ys[2*i+1] = t[0], t[3]
	}
	return ys
}

// requantize adds the bias and the residual as the flags say, requantizes
// the four outputs and stores them as bytes at dst + i*rs + k*ps.
func (g *wino8OutGen) requantize(ys [4]reg.VecPhysical) {
	c, v, l := g.c, g.v, g.l
	tmp := v(15)
	c.LEAQ(operand.Mem{Base: woRs, Index: woPs, Scale: 1}, reg.R15)
	c.TESTQ(operand.U32(flagBias), woFlags)
	c.JZ(operand.LabelRef(l("nobias")))
	g.mov(operand.Mem{Base: woBias}, tmp)
	for _, y := range ys {
		c.VPADDD(tmp, y, y)
	}
	c.Label(l("nobias"))
	q := &requant{hi: v(9), negHi: v(8), zeroOut: v(10), lo: v(11), resZero: v(13), resScale: v(14), maxFirst: true}
	g.mov(operand.Mem{Base: woScale}, tmp)
	for _, y := range ys {
		q.toFloat(c, y, tmp)
	}
	c.TESTQ(operand.U32(flagRes), woFlags)
	c.JZ(operand.LabelRef(l("nores")))
	rv := [4]reg.VecPhysical{v(1), v(2), v(5), v(6)}
	for i, r := range rv {
		c.VPMOVZXBD(g.outAt(woRes, i), r)
		q.addRes(c, ys[i], r)
	}
	c.Label(l("nores"))
	for i, y := range ys {
		q.round(c, y)
		c.VPMINSD(v(12), y, y)
		if g.avx512 {
			c.VPMOVDB(y, g.outAt(woDst, i))
			continue
		}
		// Eight dwords in [0, 255] to eight bytes.
		storeBytes(c, c.VPACKUSDW, y, y, tmp, g.outAt(woDst, i))
	}
}
