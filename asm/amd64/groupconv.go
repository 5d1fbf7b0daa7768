package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The fp32 grouped convolution kernels of kernels/groupconv.go
// (kernels/groupconv_amd64.s), NHWC, every output
//
//	s = bias + 0 (-0 becomes +0) or +0; s = fma(w, x, s) over the taps in
//	(kh, kw, ci) order; s = s + res; s = lo if s < lo; s = hi if s > hi
//
// one VFMADD231PS per tap and input channel, as the Go code defines it (so
// bit-identical with it). Two families:
//
//   - gcPerm*: groups of cig = cog channels (1, 2, 4, 8) packed side by side
//     in a vector of output channels. Lane j of the vector at channel
//     offset o needs input channel o + j - j%cig + ci for the ci-th step,
//     which is the input vector at offset o with element ci of each block of
//     cig lanes broadcast over the block: VPERMILPS with an immediate (cig 2,
//     4) or VPERMPS with an index register (cig 8, AVX-512). A row of
//     interior 3x3 pixels (stride 1 or 2 along W) in chunks of P outputs, as
//     the depthwise row kernels: per chunk and output vector, each input
//     vector is loaded and permuted once per input channel and used for
//     every output it touches; a filter row's weights in registers where
//     they fit beside the accumulators, else the FMAs' memory operands.
//   - gcBc*: any cig and cog, one group at a time, its cog outputs in nv
//     vectors (the last one masked): an implicit GEMM of up to P pixels of
//     one row by nv vectors, the input channel broadcast from memory, the
//     nv weight vectors of each (tap, ci) in registers.

// gcPermParams is one permute-family row kernel.
type gcPermParams struct {
	name   string
	avx512 bool
	cig    int  // channels per group, in = out; divides the lanes
	stride int  // along W
	p      int  // outputs per chunk
	wregs  bool // a filter row's weights in registers (else the FMAs' memory operands)
}

// gcBcParams is one broadcast-family tile kernel.
type gcBcParams struct {
	name   string
	avx512 bool
	nv     int  // output vectors per group
	p      int  // pixels per tile, at most
	bcst   bool // the input as the FMA's embedded broadcast (nv = 1)
}

var gcPermKernels = []gcPermParams{
	{"gcPerm1s1AVX2", false, 1, 1, 10, true}, {"gcPerm1s2AVX2", false, 1, 2, 10, true},
	{"gcPerm2s1AVX2", false, 2, 1, 8, true}, {"gcPerm2s2AVX2", false, 2, 2, 8, true},
	{"gcPerm4s1AVX2", false, 4, 1, 12, false}, {"gcPerm4s2AVX2", false, 4, 2, 12, false},
	{"gcPerm1s1AVX512", true, 1, 1, 12, true}, {"gcPerm1s2AVX512", true, 1, 2, 12, true},
	{"gcPerm2s1AVX512", true, 2, 1, 12, true}, {"gcPerm2s2AVX512", true, 2, 2, 12, true},
	{"gcPerm4s1AVX512", true, 4, 1, 12, true}, {"gcPerm4s2AVX512", true, 4, 2, 12, true},
	{"gcPerm8s1AVX512", true, 8, 1, 12, false}, {"gcPerm8s2AVX512", true, 8, 2, 12, false},
}

var gcBcKernels = []gcBcParams{
	{"gcBc1AVX2", false, 1, 12, false},
	{"gcBc2AVX2", false, 2, 6, false},
	{"gcBc1AVX512", true, 1, 14, true},
	{"gcBc2AVX512", true, 2, 14, false},
}

// groupconvFile emits kernels/groupconv_amd64.s.
func groupconvFile(c *build.Context) {
	for _, k := range gcPermKernels {
		k.generate(c)
	}
	for _, k := range gcBcKernels {
		k.generate(c)
	}
	gcTables(c)
}

// gcTables emits gcPermIdx<>, the VPERMPS indices of the cig = 8 kernels
// (vector ci: lane j takes j - j%8 + ci), and gcMaskAVX2<>, 8 lanes of -1
// then 8 of 0, so that the 8 values at index 8-n enable lanes [0, n).
func gcTables(c *build.Context) {
	c.StaticGlobal("gcPermIdx")
	c.DataAttributes(attr.RODATA | attr.NOPTR)
	for ci := 0; ci < 8; ci++ {
		for j := 0; j < 16; j++ {
			c.AddDatum(4*(16*ci+j), operand.U32(j-j%8+ci))
		}
	}
	c.StaticGlobal("gcMaskAVX2")
	c.DataAttributes(attr.RODATA | attr.NOPTR)
	for i := 0; i < 16; i++ {
		v := uint32(0)
		if i < 8 {
			v = 0xffffffff
		}
		c.AddDatum(4*i, operand.U32(v))
	}
}

func gcISA(avx512 bool) (string, int) {
	if avx512 {
		return "AVX512F", 16
	}
	return "AVX2, FMA3", 8
}

// gcPermW is the weight pointer of a permute kernel (the registers dw*
// of depthwise.go are the others).
var gcPermW = reg.RDI

func (k *gcPermParams) vb() int { return 4 * k.lanes() }

func (k *gcPermParams) lanes() int {
	_, l := gcISA(k.avx512)
	return l
}

func (k *gcPermParams) acc(j int) reg.VecPhysical { return dwVec(k.avx512, j) }
func (k *gcPermParams) x() reg.VecPhysical        { return dwVec(k.avx512, k.p) }
func (k *gcPermParams) t() reg.VecPhysical        { return dwVec(k.avx512, k.p+1) }

// idx is the VPERMPS index of input channel ci (cig = 8).
func (k *gcPermParams) idx(ci int) reg.VecPhysical { return dwVec(k.avx512, k.p+2+ci) }

// weight is weight vector i = kw*cig + ci of the current filter row (wregs).
func (k *gcPermParams) weight(i int) reg.VecPhysical { return dwVec(k.avx512, k.p+2+i) }

func (k *gcPermParams) check() {
	regs := k.p + 2
	if k.cig == 8 {
		regs += 8
	}
	if k.wregs {
		regs += 3 * k.cig
	}
	if k.avx512 && regs > 30 || !k.avx512 && regs > 16 || k.lanes()%k.cig != 0 || k.cig == 8 && !k.avx512 {
		panic(fmt.Sprintf("%s: does not fit", k.name))
	}
}

// generate emits one permute-family row kernel (kernels.gcRowKernel).
func (k *gcPermParams) generate(c *build.Context) {
	k.check()
	isa, lanes := gcISA(k.avx512)
	c.Function(k.name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)")
	c.Commentf("Grouped 3x3 conv, %d channels per group, stride %d along W, over npix interior pixels", k.cig, k.stride)
	c.Commentf("of a row, %d-lane output vectors, %d outputs per chunk. Requires %s.", lanes, k.p, isa)
	l := func(s string) string { return k.name + "_" + s }

	c.Load(c.Param("n"), dwN)
	c.SHLQ(operand.U8(2), dwN)
	c.Load(c.Param("c"), dwC4)
	c.SHLQ(operand.U8(2), dwC4)
	c.Load(c.Param("srcRow"), dwSRow)
	c.SHLQ(operand.U8(2), dwSRow)
	c.Load(c.Param("rows"), dwRows)
	c.Load(c.Param("flags"), dwFlags)
	if k.avx512 {
		dwBroadcastArg(c, "lo", zregs[30])
		dwBroadcastArg(c, "hi", zregs[31])
	}
	if k.cig == 8 {
		c.LEAQ(operand.NewDataAddr(operand.NewStaticSymbol("gcPermIdx"), 0), dwA)
		for ci := 0; ci < 8; ci++ {
			c.VMOVUPS(operand.Mem{Base: dwA, Disp: 64 * ci}, k.idx(ci))
		}
	}
	c.Load(c.Param("src"), dwXp)
	c.Load(c.Param("dst"), dwDp)
	c.Load(c.Param("res"), dwRp)
	c.Load(c.Param("npix"), dwCnt)

	c.Label(l("full"))
	c.CMPQ(dwCnt, operand.U32(k.p))
	c.JL(operand.LabelRef(l("tail")))
	k.chunk(c, k.p, l)
	c.SUBQ(operand.U32(k.p), dwCnt)
	c.JMP(operand.LabelRef(l("full")))
	c.Label(l("tail"))
	for size := 1 << 30; size >= 1; size >>= 1 {
		if size >= k.p {
			continue
		}
		c.CMPQ(dwCnt, operand.U32(size))
		c.JL(operand.LabelRef(l(fmt.Sprintf("skip%d", size))))
		k.chunk(c, size, l)
		c.SUBQ(operand.U32(size), dwCnt)
		c.Label(l(fmt.Sprintf("skip%d", size)))
	}
	c.VZEROUPPER()
	c.RET()
}

// perm sets t to x with element ci of each block of cig lanes broadcast
// over the block.
func (k *gcPermParams) perm(c *build.Context, ci int) reg.VecPhysical {
	switch k.cig {
	case 1:
		return k.x()
	case 2:
		c.VPERMILPS(operand.U8([]int{0xa0, 0xf5}[ci]), k.x(), k.t())
	case 4:
		c.VPERMILPS(operand.U8(0x55*ci), k.x(), k.t())
	case 8:
		c.VPERMPS(k.x(), k.idx(ci), k.t())
	}
	return k.t()
}

// chunk emits p consecutive outputs, every output vector in turn (the
// weight pointer walks the packed weights, 9*cig vectors per output
// vector), then moves the chunk pointers past them.
func (k *gcPermParams) chunk(c *build.Context, p int, l func(string) string) {
	tag := fmt.Sprintf("c%d", p)
	lt := func(s string) string { return l(tag + "_" + s) }
	c.XORQ(dwOff, dwOff)
	c.Load(c.Param("w"), gcPermW)
	c.Label(lt("vec"))
	k.initAcc(c, p, lt)
	c.Comment("Filter rows: dwFlags counts them, dwA points at their weights.")
	c.LEAQ(operand.Mem{Base: dwXp, Index: dwOff, Scale: 1}, dwXr)
	c.MOVQ(gcPermW, dwA)
	c.MOVQ(dwRows, dwFlags)
	c.Label(lt("row"))
	c.MOVQ(dwXr, dwT)
	k.filterRow(c, p)
	c.ADDQ(dwSRow, dwXr)
	c.ADDQ(operand.U32(3*k.cig*k.vb()), dwA)
	c.DECQ(dwFlags)
	c.JNZ(operand.LabelRef(lt("row")))
	c.Load(c.Param("flags"), dwFlags)
	k.finish(c, p, l(tag))
	c.ADDQ(operand.U32(k.vb()), dwOff)
	c.ADDQ(operand.U32(9*k.cig*k.vb()), gcPermW)
	c.CMPQ(dwOff, dwN)
	c.JL(operand.LabelRef(lt("vec")))
	c.IMUL3Q(operand.U32(p*k.stride), dwC4, dwA)
	c.ADDQ(dwA, dwXp)
	if k.stride != 1 {
		c.IMUL3Q(operand.U32(p), dwC4, dwA)
	}
	c.ADDQ(dwA, dwDp)
	c.ADDQ(dwA, dwRp)
}

// filterRow adds one filter row (weights at dwA, input from dwT) to the p
// accumulators: input column q serves output j through tap kw when
// q = j*stride + kw; for each output its taps come in kw order and, per
// tap, input channels in order.
func (k *gcPermParams) filterRow(c *build.Context, p int) {
	s := k.stride
	if k.wregs {
		for i := 0; i < 3*k.cig; i++ {
			c.VMOVUPS(operand.Mem{Base: dwA, Disp: i * k.vb()}, k.weight(i))
		}
	}
	for q := 0; q < (p-1)*s+3; q++ {
		c.VMOVUPS(gcPixAddr(c, q), k.x())
		for ci := 0; ci < k.cig; ci++ {
			t := k.perm(c, ci)
			for kw := 0; kw < 3; kw++ {
				if q < kw || (q-kw)%s != 0 {
					continue
				}
				if j := (q - kw) / s; j < p {
					var w operand.Op = operand.Mem{Base: dwA, Disp: (kw*k.cig + ci) * k.vb()}
					if k.wregs {
						w = k.weight(kw*k.cig + ci)
					}
					c.VFMADD231PS(w, t, k.acc(j))
				}
			}
		}
	}
}

// initAcc sets the p accumulators to bias + 0 (-0 becomes +0) or +0.
func (k *gcPermParams) initAcc(c *build.Context, p int, lt func(string) string) {
	c.TESTQ(operand.U32(dwFlagBias), dwFlags)
	c.JZ(operand.LabelRef(lt("nobias")))
	c.Load(c.Param("bias"), dwA)
	b := k.x()
	dwZero(c, k.avx512, b)
	c.VADDPS(operand.Mem{Base: dwA, Index: dwOff, Scale: 1}, b, b)
	for j := 0; j < p; j++ {
		c.VMOVAPS(b, k.acc(j))
	}
	c.JMP(operand.LabelRef(lt("init")))
	c.Label(lt("nobias"))
	for j := 0; j < p; j++ {
		dwZero(c, k.avx512, k.acc(j))
	}
	c.Label(lt("init"))
}

// finish adds the residual, clamps and stores the p outputs of the
// current output vector.
func (k *gcPermParams) finish(c *build.Context, p int, l string) {
	c.TESTQ(operand.U32(dwFlagRes), dwFlags)
	c.JZ(operand.LabelRef(l + "_nores"))
	c.LEAQ(operand.Mem{Base: dwRp, Index: dwOff, Scale: 1}, dwT)
	for j := 0; j < p; j++ {
		c.VADDPS(gcPixAddr(c, j), k.acc(j), k.acc(j))
	}
	c.Label(l + "_nores")
	bound := func(name string, avx512Reg int) func() reg.VecPhysical {
		return func() reg.VecPhysical {
			if k.avx512 {
				return zregs[avx512Reg]
			}
			dwBroadcastArg(c, name, k.x())
			return k.x()
		}
	}
	dwClamp(c, dwFlags, p, k.acc, bound("lo", 30), bound("hi", 31), l)
	c.LEAQ(operand.Mem{Base: dwDp, Index: dwOff, Scale: 1}, dwT)
	for j := 0; j < p; j++ {
		c.VMOVUPS(k.acc(j), gcPixAddr(c, j))
	}
}

// gcPixAddr is the depthwise row kernels' walk along a row (pixAddr: dwT,
// dwC4), which does not depend on the kernel.
func gcPixAddr(c *build.Context, q int) operand.Mem {
	var k *dwRowParams
	return k.pixAddr(c, q)
}

// Registers of the broadcast-family kernels.
var (
	bcSrc  = reg.RSI                                     // the group's input at the tile's first tap
	bcW    = reg.RDX                                     // walking weights
	bcWg   = reg.RDI                                     // the group's weights
	bcPS   = reg.R8                                      // pixel stride in bytes: input in the K loop, output in the epilogue
	bcPS3  = reg.R9                                      // 3*bcPS
	bcBase = []reg.GPPhysical{reg.R10, reg.R11, reg.R12} // pixels 0-4, 5-9, 10-14 of the tile
	bcCi   = reg.R13                                     // input channels left; the flags in the epilogue
	bcX    = reg.R14                                     // taps left in the filter row
	bcY    = reg.R15                                     // filter rows left
	bcGoff = reg.RBX                                     // byte offset of the group's outputs
	bcG    = reg.RCX                                     // groups left
	bcA    = reg.RAX                                     // scratch
)

func (k *gcBcParams) lanes() int {
	_, l := gcISA(k.avx512)
	return l
}

func (k *gcBcParams) vb() int { return 4 * k.lanes() }

// acc is the accumulator of pixel j, vector v (flat: dwVec(j*nv+v)).
func (k *gcBcParams) acc(j, v int) reg.VecPhysical { return dwVec(k.avx512, j*k.nv+v) }
func (k *gcBcParams) w(v int) reg.VecPhysical      { return dwVec(k.avx512, k.p*k.nv+v) }
func (k *gcBcParams) t() reg.VecPhysical           { return dwVec(k.avx512, k.p*k.nv+k.nv) }

// mask is AVX2's lane mask of the last vector (AVX-512: K1).
func (k *gcBcParams) mask() reg.VecPhysical { return dwVec(k.avx512, k.p*k.nv+k.nv+1) }

func (k *gcBcParams) check() {
	regs := k.p*k.nv + k.nv + 2
	if k.avx512 && regs > 32 || !k.avx512 && regs > 16 || k.p > 5*len(bcBase) || k.bcst && (k.nv != 1 || !k.avx512) {
		panic(fmt.Sprintf("%s: does not fit", k.name))
	}
}

// generate emits one broadcast-family kernel (kernels.gcTileKernel): the
// mask of the last vector, then a copy of the whole computation per tile
// size, chosen by npix.
func (k *gcBcParams) generate(c *build.Context) {
	k.check()
	isa, lanes := gcISA(k.avx512)
	c.Function(k.name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(dst, src, w, bias, res *float32, npix, pixStride, kh, kw, srcRow, srcTap, cig, groups, gW, cog, dstPix, nLast, flags int, lo, hi float32)")
	c.Commentf("Grouped conv of npix (<= %d) pixels of a row, one group at a time, %d %d-lane output", k.p, k.nv, lanes)
	c.Commentf("vectors per group (the last masked to nLast lanes). Requires %s.", isa)
	l := func(s string) string { return k.name + "_" + s }
	if k.avx512 {
		c.Load(c.Param("nLast"), reg.RCX)
		c.MOVL(operand.U32(1), reg.EAX)
		c.SHLL(reg.CL, reg.EAX)
		c.DECL(reg.EAX)
		c.KMOVW(reg.EAX, reg.K1)
	} else {
		c.Load(c.Param("nLast"), bcA)
		c.NEGQ(bcA)
		c.LEAQ(operand.NewDataAddr(operand.NewStaticSymbol("gcMaskAVX2"), 32), bcG)
		c.VMOVUPS(operand.Mem{Base: bcG, Index: bcA, Scale: 4}, k.mask())
	}
	c.Load(c.Param("npix"), bcA)
	for p := k.p; p >= 1; p-- {
		c.CMPQ(bcA, operand.U32(p))
		c.JEQ(operand.LabelRef(l(fmt.Sprintf("p%d", p))))
	}
	c.JMP(operand.LabelRef(l("done")))
	for p := k.p; p >= 1; p-- {
		c.Label(l(fmt.Sprintf("p%d", p)))
		k.tile(c, p, func(s string) string { return l(fmt.Sprintf("p%d_%s", p, s)) })
		c.JMP(operand.LabelRef(l("done")))
	}
	c.Label(l("done"))
	c.VZEROUPPER()
	c.RET()
}

// tile computes p pixels, every group in turn.
func (k *gcBcParams) tile(c *build.Context, p int, l func(string) string) {
	c.Load(c.Param("src"), bcSrc)
	c.Load(c.Param("w"), bcWg)
	c.Load(c.Param("groups"), bcG)
	c.XORQ(bcGoff, bcGoff)
	c.Label(l("group"))
	k.initAcc(c, p, l)
	c.MOVQ(bcWg, bcW)
	k.kloop(c, p, l)
	k.finish(c, p, l)
	for _, s := range []struct {
		arg string
		r   reg.GPPhysical
	}{{"cig", bcSrc}, {"gW", bcWg}, {"cog", bcGoff}} {
		c.Load(c.Param(s.arg), bcA)
		c.SHLQ(operand.U8(2), bcA)
		c.ADDQ(bcA, s.r)
	}
	c.DECQ(bcG)
	c.JNZ(operand.LabelRef(l("group")))
}

// setBases points the base registers at pixels 0, 5, 10 of a walk from
// the address in from with stride bcPS.
func (k *gcBcParams) setBases(c *build.Context, from reg.GPPhysical, p int) {
	c.MOVQ(from, bcBase[0])
	for b := 1; b*5 < p; b++ {
		c.LEAQ(operand.Mem{Base: bcBase[b-1], Index: bcPS, Scale: 4}, bcBase[b])
		c.ADDQ(bcPS, bcBase[b])
	}
}

// addBases adds r (or a constant) to the bases of p pixels.
func (k *gcBcParams) addBases(c *build.Context, r operand.Op, p int) {
	for b := 0; b*5 < p; b++ {
		c.ADDQ(r, bcBase[b])
	}
}

// pixel addresses pixel j of the walk, plus disp bytes.
func (k *gcBcParams) pixel(j, disp int) operand.Mem {
	m := operand.Mem{Base: bcBase[j/5], Disp: disp}
	switch j % 5 {
	case 1, 2, 4:
		m.Index, m.Scale = bcPS, uint8(j%5)
	case 3:
		m.Index, m.Scale = bcPS3, 1
	}
	return m
}

// paramAddr is the memory operand of an argument.
func paramAddr(c *build.Context, name string) operand.Mem {
	b, err := c.Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// kloop runs the taps of the window (kh rows of kw taps) and, per tap,
// the cig input channels, four at a time then one at a time.
func (k *gcBcParams) kloop(c *build.Context, p int, l func(string) string) {
	c.Load(c.Param("pixStride"), bcPS)
	c.SHLQ(operand.U8(2), bcPS)
	c.LEAQ(operand.Mem{Base: bcPS, Index: bcPS, Scale: 2}, bcPS3)
	k.setBases(c, bcSrc, p)
	c.Load(c.Param("kh"), bcY)
	c.Label(l("y"))
	c.Load(c.Param("kw"), bcX)
	c.Label(l("x"))
	c.Load(c.Param("cig"), bcCi)
	c.CMPQ(bcCi, operand.U32(4))
	c.JL(operand.LabelRef(l("ci1")))
	c.Label(l("ci4"))
	k.ciSteps(c, p, 4)
	c.SUBQ(operand.U32(4), bcCi)
	c.CMPQ(bcCi, operand.U32(4))
	c.JGE(operand.LabelRef(l("ci4")))
	c.Label(l("ci1"))
	c.TESTQ(bcCi, bcCi)
	c.JZ(operand.LabelRef(l("tap")))
	k.ciSteps(c, p, 1)
	c.DECQ(bcCi)
	c.JMP(operand.LabelRef(l("ci1")))
	c.Label(l("tap"))
	c.Comment("Next tap: the bases have walked cig channels.")
	c.Load(c.Param("srcTap"), bcA)
	c.SUBQ(paramAddr(c, "cig"), bcA)
	c.SHLQ(operand.U8(2), bcA)
	k.addBases(c, bcA, p)
	c.DECQ(bcX)
	c.JNZ(operand.LabelRef(l("x")))
	c.Comment("Next filter row: the bases have walked kw taps.")
	c.Load(c.Param("kw"), bcA)
	c.IMULQ(paramAddr(c, "srcTap"), bcA)
	c.NEGQ(bcA)
	c.ADDQ(paramAddr(c, "srcRow"), bcA)
	c.SHLQ(operand.U8(2), bcA)
	k.addBases(c, bcA, p)
	c.DECQ(bcY)
	c.JNZ(operand.LabelRef(l("y")))
}

// ciSteps emits u input channels of one tap: the nv weight vectors of
// each, then its FMA into every pixel's accumulators.
func (k *gcBcParams) ciSteps(c *build.Context, p, u int) {
	for i := 0; i < u; i++ {
		for v := 0; v < k.nv; v++ {
			c.VMOVUPS(operand.Mem{Base: bcW, Disp: (i*k.nv + v) * k.vb()}, k.w(v))
		}
		for j := 0; j < p; j++ {
			x := k.pixel(j, 4*i)
			if k.bcst {
				c.VFMADD231PS_BCST(x, k.w(0), k.acc(j, 0))
				continue
			}
			c.VBROADCASTSS(x, k.t())
			for v := 0; v < k.nv; v++ {
				c.VFMADD231PS(k.w(v), k.t(), k.acc(j, v))
			}
		}
	}
	k.addBases(c, operand.U32(4*u), p)
	c.ADDQ(operand.U32(u*k.nv*k.vb()), bcW)
}

// loadVec loads vector v of a group's outputs (the last one masked) into
// dst.
func (k *gcBcParams) loadVec(c *build.Context, m operand.Mem, v int, dst reg.VecPhysical) {
	switch {
	case v < k.nv-1:
		c.VMOVUPS(m, dst)
	case k.avx512:
		c.VMOVUPS_Z(m, reg.K1, dst)
	default:
		c.VMASKMOVPS(m, k.mask(), dst)
	}
}

// initAcc sets the accumulators of p pixels to bias + 0 (-0 becomes +0)
// or +0.
func (k *gcBcParams) initAcc(c *build.Context, p int, l func(string) string) {
	c.Load(c.Param("flags"), bcA)
	c.TESTQ(operand.U32(dwFlagBias), bcA)
	c.JZ(operand.LabelRef(l("nobias")))
	c.Load(c.Param("bias"), bcA)
	dwZero(c, k.avx512, k.t())
	for v := 0; v < k.nv; v++ {
		k.loadVec(c, operand.Mem{Base: bcA, Index: bcGoff, Scale: 1, Disp: v * k.vb()}, v, k.w(v))
		c.VADDPS(k.t(), k.w(v), k.w(v))
		for j := 0; j < p; j++ {
			c.VMOVAPS(k.w(v), k.acc(j, v))
		}
	}
	c.JMP(operand.LabelRef(l("init")))
	c.Label(l("nobias"))
	for j := 0; j < p; j++ {
		for v := 0; v < k.nv; v++ {
			dwZero(c, k.avx512, k.acc(j, v))
		}
	}
	c.Label(l("init"))
}

// finish adds the residual, clamps and stores the group's outputs of p
// pixels (dstPix apart).
func (k *gcBcParams) finish(c *build.Context, p int, l func(string) string) {
	flags := bcCi
	c.Load(c.Param("flags"), flags)
	c.Load(c.Param("dstPix"), bcPS)
	c.SHLQ(operand.U8(2), bcPS)
	c.LEAQ(operand.Mem{Base: bcPS, Index: bcPS, Scale: 2}, bcPS3)
	c.TESTQ(operand.U32(dwFlagRes), flags)
	c.JZ(operand.LabelRef(l("nores")))
	c.Load(c.Param("res"), bcA)
	c.ADDQ(bcGoff, bcA)
	k.setBases(c, bcA, p)
	for j := 0; j < p; j++ {
		for v := 0; v < k.nv; v++ {
			m := k.pixel(j, v*k.vb())
			switch {
			case v < k.nv-1:
				c.VADDPS(m, k.acc(j, v), k.acc(j, v))
			case k.avx512: // masked-off lanes are not read
				c.VADDPS(m, k.acc(j, v), reg.K1, k.acc(j, v))
			default:
				c.VMASKMOVPS(m, k.mask(), k.t())
				c.VADDPS(k.t(), k.acc(j, v), k.acc(j, v))
			}
		}
	}
	c.Label(l("nores"))
	bound := func(name string) func() reg.VecPhysical {
		return func() reg.VecPhysical {
			dwBroadcastArg(c, name, k.t())
			return k.t()
		}
	}
	dwClamp(c, flags, p*k.nv, func(i int) reg.VecPhysical { return dwVec(k.avx512, i) }, bound("lo"), bound("hi"), l("clamp"))
	c.Load(c.Param("dst"), bcA)
	c.ADDQ(bcGoff, bcA)
	k.setBases(c, bcA, p)
	for j := 0; j < p; j++ {
		for v := 0; v < k.nv; v++ {
			m := k.pixel(j, v*k.vb())
			switch {
			case v < k.nv-1:
				c.VMOVUPS(k.acc(j, v), m)
			case k.avx512:
				c.VMOVUPS(k.acc(j, v), reg.K1, m)
			default:
				c.VMASKMOVPS(k.acc(j, v), k.mask(), m)
			}
		}
	}
}
