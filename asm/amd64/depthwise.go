package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The fp32 depthwise convolution kernels of kernels/depthwise.go
// (kernels/depthwise_amd64.s): per ISA, a one-pixel kernel for any
// (clipped) window and a 3x3 kernel for a row of interior pixels at
// stride 1 and at stride 2 along W. Every output is
//
//	s = bias + 0 (-0 becomes +0) or +0; s = fma(w, x, s) over the taps in
//	(kh, kw) order; s = s + res; s = lo if s < lo; s = hi if s > hi
//
// as the Go code defines it, one VFMADD231PS per tap, so the results are
// bit-identical with Go's. The row kernel walks the row in chunks of P
// outputs and, within a chunk, every channel vector: the vector's 3x3
// filter in nine registers, P accumulators (AVX-512 8, AVX2 6 beside the
// nine weights), each input vector loaded once per chunk and used for every
// output it touches (up to three).

// dwRowParams is one 3x3 row kernel.
type dwRowParams struct {
	name   string
	avx512 bool
	stride int
	p      int // outputs per chunk (accumulators)
}

var dwRowKernels = []dwRowParams{
	{"dw3x3s1AVX2", false, 1, 6},
	{"dw3x3s2AVX2", false, 2, 6},
	{"dw3x3s1AVX512", true, 1, 8},
	{"dw3x3s2AVX512", true, 2, 8},
}

// depthwiseFile emits kernels/depthwise_amd64.s: the fp32 kernels here,
// the int8 ones of depthwise8.go.
func depthwiseFile(c *build.Context) {
	dwWindow(c, "dwWindowAVX2", false)
	dwWindow(c, "dwWindowAVX512", true)
	for _, k := range dwRowKernels {
		k.generate(c)
	}
	for _, k := range dw8Kernels {
		k.generate(c)
	}
}

// Flag bits, mirrored by dwFlag* in kernels/depthwise.go.
const (
	dwFlagBias = 1
	dwFlagRes  = 2
	dwFlagLo   = 4
	dwFlagHi   = 8
)

// dwVec is the vector register i of the ISA.
func dwVec(avx512 bool, i int) reg.VecPhysical {
	if avx512 {
		return zregs[i]
	}
	return yregs[i]
}

func dwZero(c *build.Context, avx512 bool, v reg.VecPhysical) {
	if avx512 {
		c.VPXORD(v, v, v)
	} else {
		c.VXORPS(v, v, v)
	}
}

// dwBroadcastArg broadcasts the float32 argument name into v (through AX:
// vet's asmdecl knows MOVL's operand size).
func dwBroadcastArg(c *build.Context, name string, v reg.VecPhysical) {
	b, err := c.Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	c.MOVL(b.Addr, reg.EAX)
	c.VMOVD(reg.EAX, v.AsX())
	c.VBROADCASTSS(v.AsX(), v)
}

// Registers of the one-pixel kernel (dwWindow).
var (
	winDst, winSrc, winW, winN, winOff = reg.RDI, reg.RSI, reg.RDX, reg.RCX, reg.R8
	winSRow, winSTap                   = reg.R9, reg.R10 // winSRow: from the end of a window row to the next row's start
	winWRow, winWTap                   = reg.R11, reg.R12
	winP, winQ, winY, winX             = reg.R13, reg.R14, reg.R15, reg.RAX // input and weight cursors, row and tap counters
	winT                               = reg.RBX
)

// dwWindow emits the one-pixel kernel (kernels.dwWindowKernel):
//
//	for j < n: s = bias[j] or +0; for y < kh, x < kw:
//	    s = fma(w[y*wRow + x*wTap + j], src[y*srcRow + x*srcTap + j], s)
//	then residual, clamp, dst[j] = s
//
// n a positive multiple of the lanes, kh, kw >= 1, strides in elements.
// Groups of four vectors go through the whole window at once (four
// independent chains), then single vectors. Weights are the FMAs' memory
// operands.
func dwWindow(c *build.Context, name string, avx512 bool) {
	isa := "AVX2, FMA3"
	lanes := 8
	if avx512 {
		isa, lanes = "AVX512F", 16
	}
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(dst, src, w, bias, res *float32, n, kh, kw, srcRow, srcTap, wRow, wTap, flags int, lo, hi float32)")
	c.Commentf("Depthwise sum of one output pixel over a kh x kw window, %d-lane channel vectors. Requires %s.", lanes, isa)
	k := &dwWindowGen{c: c, avx512: avx512, vb: 4 * lanes, label: func(s string) string { return name + "_" + s }}
	k.setup()

	c.Label(k.label("groups"))
	c.MOVQ(winN, winT)
	c.SUBQ(winOff, winT)
	c.CMPQ(winT, operand.U32(4*k.vb))
	c.JL(operand.LabelRef(k.label("singles")))
	k.vectors("g", 4)
	c.JMP(operand.LabelRef(k.label("groups")))
	c.Label(k.label("singles"))
	c.CMPQ(winOff, winN)
	c.JGE(operand.LabelRef(k.label("done")))
	k.vectors("s", 1)
	c.JMP(operand.LabelRef(k.label("singles")))
	c.Label(k.label("done"))
	c.VZEROUPPER()
	c.RET()
}

// dwWindowGen holds what the steps of one dwWindow share. Vector
// registers: accumulators 0-3, input temporaries 4-7, lo 8, hi 9, zero 10.
type dwWindowGen struct {
	c      *build.Context
	avx512 bool
	vb     int                 // bytes per vector
	label  func(string) string // the kernel's labels
}

func (k *dwWindowGen) acc(i int) reg.VecPhysical { return dwVec(k.avx512, i) }
func (k *dwWindowGen) tmp(i int) reg.VecPhysical { return dwVec(k.avx512, 4+i) }
func (k *dwWindowGen) lo() reg.VecPhysical       { return dwVec(k.avx512, 8) }
func (k *dwWindowGen) hi() reg.VecPhysical       { return dwVec(k.avx512, 9) }
func (k *dwWindowGen) zero() reg.VecPhysical     { return dwVec(k.avx512, 10) }

// setup loads the arguments, scales counts and strides to bytes, makes the
// row steps net of the taps the x loop walks (so that the loops only add)
// and broadcasts the bounds.
func (k *dwWindowGen) setup() {
	c := k.c
	c.Load(c.Param("dst"), winDst)
	c.Load(c.Param("src"), winSrc)
	c.Load(c.Param("w"), winW)
	c.Load(c.Param("n"), winN)
	c.SHLQ(operand.U8(2), winN)
	c.Load(c.Param("srcTap"), winSTap)
	c.SHLQ(operand.U8(2), winSTap)
	c.Load(c.Param("wTap"), winWTap)
	c.SHLQ(operand.U8(2), winWTap)
	c.Comment("Row steps net of the kw taps the x loop has walked.")
	c.Load(c.Param("kw"), winT)
	c.Load(c.Param("srcRow"), winSRow)
	c.SHLQ(operand.U8(2), winSRow)
	c.MOVQ(winT, winX)
	c.IMULQ(winSTap, winX)
	c.SUBQ(winX, winSRow)
	c.Load(c.Param("wRow"), winWRow)
	c.SHLQ(operand.U8(2), winWRow)
	c.MOVQ(winT, winX)
	c.IMULQ(winWTap, winX)
	c.SUBQ(winX, winWRow)
	dwBroadcastArg(c, "lo", k.lo())
	dwBroadcastArg(c, "hi", k.hi())
	dwZero(c, k.avx512, k.zero())
	c.XORQ(winOff, winOff)
}

// vectors emits the outputs of nv channel vectors at winOff, labels
// prefixed tag, and moves winOff past them.
func (k *dwWindowGen) vectors(tag string, nv int) {
	k.initAcc(tag, nv)
	k.window(tag, nv)
	k.finish(tag, nv)
	k.c.ADDQ(operand.U32(nv*k.vb), winOff)
}

// initAcc loads the flags into winT and starts the accumulators from the
// bias + 0 (-0 becomes +0) or from +0.
func (k *dwWindowGen) initAcc(tag string, nv int) {
	c, label := k.c, k.label
	c.Load(c.Param("flags"), winT)
	c.TESTQ(operand.U32(dwFlagBias), winT)
	c.JZ(operand.LabelRef(label(tag + "_nobias")))
	c.Load(c.Param("bias"), winX)
	for i := 0; i < nv; i++ {
		c.VADDPS(operand.Mem{Base: winX, Index: winOff, Scale: 1, Disp: i * k.vb}, k.zero(), k.acc(i))
	}
	c.JMP(operand.LabelRef(label(tag + "_init")))
	c.Label(label(tag + "_nobias"))
	for i := 0; i < nv; i++ {
		dwZero(c, k.avx512, k.acc(i))
	}
	c.Label(label(tag + "_init"))
}

// window adds the products of the kh x kw taps in (y, x) order, one FMA
// per tap and vector.
func (k *dwWindowGen) window(tag string, nv int) {
	c, label := k.c, k.label
	c.LEAQ(operand.Mem{Base: winSrc, Index: winOff, Scale: 1}, winP)
	c.LEAQ(operand.Mem{Base: winW, Index: winOff, Scale: 1}, winQ)
	c.Load(c.Param("kh"), winY)
	c.Label(label(tag + "_y"))
	c.Load(c.Param("kw"), winX)
	c.Label(label(tag + "_x"))
	for i := 0; i < nv; i++ {
		c.VMOVUPS(operand.Mem{Base: winP, Disp: i * k.vb}, k.tmp(i))
	}
	for i := 0; i < nv; i++ {
		c.VFMADD231PS(operand.Mem{Base: winQ, Disp: i * k.vb}, k.tmp(i), k.acc(i))
	}
	c.ADDQ(winSTap, winP)
	c.ADDQ(winWTap, winQ)
	c.DECQ(winX)
	c.JNZ(operand.LabelRef(label(tag + "_x")))
	c.ADDQ(winSRow, winP)
	c.ADDQ(winWRow, winQ)
	c.DECQ(winY)
	c.JNZ(operand.LabelRef(label(tag + "_y")))
}

// finish adds the residual, clamps and stores, as the flags in winT say.
func (k *dwWindowGen) finish(tag string, nv int) {
	c, label := k.c, k.label
	c.TESTQ(operand.U32(dwFlagRes), winT)
	c.JZ(operand.LabelRef(label(tag + "_nores")))
	c.Load(c.Param("res"), winX)
	for i := 0; i < nv; i++ {
		c.VADDPS(operand.Mem{Base: winX, Index: winOff, Scale: 1, Disp: i * k.vb}, k.acc(i), k.acc(i))
	}
	c.Label(label(tag + "_nores"))
	dwClamp(c, winT, nv, k.acc, k.lo, k.hi, label(tag))
	for i := 0; i < nv; i++ {
		c.VMOVUPS(k.acc(i), operand.Mem{Base: winDst, Index: winOff, Scale: 1, Disp: i * k.vb})
	}
}

// dwClamp applies the clamp of the flags in the GP register flags to
// acc(0..nv-1): x < lo becomes lo (VMAXPS with x as the second source
// returns x when the comparison is false: NaN and -0 pass), then x > hi
// becomes hi (VMINPS likewise). lo() and hi() give the bound registers,
// loading them if need be.
func dwClamp(c *build.Context, flags reg.GPPhysical, nv int, acc func(int) reg.VecPhysical, lo, hi func() reg.VecPhysical, l string) {
	c.TESTQ(operand.U32(dwFlagLo), flags)
	c.JZ(operand.LabelRef(l + "_nolo"))
	b := lo()
	for i := 0; i < nv; i++ {
		c.VMAXPS(acc(i), b, acc(i))
	}
	c.Label(l + "_nolo")
	c.TESTQ(operand.U32(dwFlagHi), flags)
	c.JZ(operand.LabelRef(l + "_nohi"))
	b = hi()
	for i := 0; i < nv; i++ {
		c.VMINPS(acc(i), b, acc(i))
	}
	c.Label(l + "_nohi")
}

// Registers of the row kernels.
var (
	dwN     = reg.RCX // n in bytes
	dwOff   = reg.RDX // byte offset of the channel vector
	dwC4    = reg.R8  // pixel stride in bytes
	dwSRow  = reg.R9  // input row stride in bytes
	dwRows  = reg.R10 // filter rows inside the input (1..3)
	dwCnt   = reg.R11 // pixels left in the row
	dwXp    = reg.R12 // input of the chunk's first output, filter row 0
	dwDp    = reg.R13 // output of the chunk
	dwRp    = reg.R14 // residual of the chunk
	dwXr    = reg.R15 // input row in the chunk
	dwT     = reg.RSI // walking pointer
	dwFlags = reg.RBX
	dwA     = reg.RAX // scratch
)

// The vector registers of a row kernel: accumulators, the nine weights,
// input temporaries and (AVX-512) the clamp bounds.
func (k *dwRowParams) acc(j int) reg.VecPhysical { return dwVec(k.avx512, j) }

func (k *dwRowParams) weight(i int) reg.VecPhysical {
	if k.avx512 {
		return zregs[k.p+i]
	}
	return yregs[k.p+i]
}

func (k *dwRowParams) xtmp(q int) reg.VecPhysical {
	if k.avx512 {
		return zregs[k.p+9+q%4]
	}
	return yregs[15]
}

func (k *dwRowParams) vb() int {
	if k.avx512 {
		return 64
	}
	return 32
}

func (k *dwRowParams) check() {
	if k.avx512 && k.p+9+4 > 30 || !k.avx512 && k.p+9 > 15 {
		panic(fmt.Sprintf("%s: %d accumulators do not fit", k.name, k.p))
	}
}

// generate emits one row kernel (kernels.dwRowKernel).
func (k *dwRowParams) generate(c *build.Context) {
	k.check()
	isa := "AVX2, FMA3"
	lanes := 8
	if k.avx512 {
		isa, lanes = "AVX512F", 16
	}
	c.Function(k.name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)")
	c.Commentf("Depthwise 3x3, stride %d along W, over npix interior pixels of a row, %d-lane channel", k.stride, lanes)
	c.Commentf("vectors, %d outputs per chunk with the filter in registers. Requires %s.", k.p, isa)
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

// pixAddr is dwPixAddr, for the fp32 row kernel's steps.
func (k *dwRowParams) pixAddr(c *build.Context, q int) operand.Mem { return dwPixAddr(c, q) }

// dwPixAddr addresses pixel q (q = 0, 1, 2, ...) of a walk along a row
// that started at base: even pixels at (dwT), odd ones at (dwT)(dwC4*1),
// with dwT moved two pixels ahead before each even pixel but the first.
func dwPixAddr(c *build.Context, q int) operand.Mem {
	if q%2 == 1 {
		return operand.Mem{Base: dwT, Index: dwC4, Scale: 1}
	}
	if q > 0 {
		c.LEAQ(operand.Mem{Base: dwT, Index: dwC4, Scale: 2}, dwT)
	}
	return operand.Mem{Base: dwT}
}

// chunk emits p consecutive outputs, every channel vector in turn: the
// vector's filter rows inside the input into registers, the sums, the
// epilogue; then moves the chunk pointers past them. Pixel-major, so the
// chunk's inputs (3 rows x (p-1)*s+3 pixels x C) are read sequentially and
// stay in L1 while every channel vector goes through; the filter (9C
// values) is reloaded per chunk, 9 loads per 9p FMAs.
func (k *dwRowParams) chunk(c *build.Context, p int, l func(string) string) {
	tag := fmt.Sprintf("c%d", p)
	lt := func(s string) string { return l(tag + "_" + s) }
	dwChunkLoop(c, p, k.stride, k.vb(), lt, func() {
		c.Comment("The filter of this channel vector, its rows inside the input.")
		dwFilterRows(c, lt, dwC4, func(r int, taps [3]operand.Mem) {
			for kw, m := range taps {
				c.VMOVUPS(m, k.weight(3*r+kw))
			}
		})
		k.initAcc(c, p, lt)
		dwRowSums(c, p, k.stride, lt, c.VMOVUPS, k.xtmp, func(r, kw, j int, x reg.VecPhysical) {
			c.VFMADD231PS(k.weight(3*r+kw), x, k.acc(j))
		})
		k.finish(c, p, lt, l(tag))
	})
}

// initAcc starts the p accumulators from the bias + 0 (-0 becomes +0),
// broadcast through a temporary, or from +0.
func (k *dwRowParams) initAcc(c *build.Context, p int, lt func(string) string) {
	c.TESTQ(operand.U32(dwFlagBias), dwFlags)
	c.JZ(operand.LabelRef(lt("nobias")))
	c.Load(c.Param("bias"), dwA)
	b := k.xtmp(0)
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

// finish adds the residual, clamps (labels prefixed clampLabel) and stores
// the p outputs of the channel vector. AVX2 has no register to spare for
// the bounds and broadcasts them when it needs them.
func (k *dwRowParams) finish(c *build.Context, p int, lt func(string) string, clampLabel string) {
	c.TESTQ(operand.U32(dwFlagRes), dwFlags)
	c.JZ(operand.LabelRef(lt("nores")))
	c.LEAQ(operand.Mem{Base: dwRp, Index: dwOff, Scale: 1}, dwT)
	for j := 0; j < p; j++ {
		c.VADDPS(k.pixAddr(c, j), k.acc(j), k.acc(j))
	}
	c.Label(lt("nores"))
	bound := func(name string, avx512Reg int) func() reg.VecPhysical {
		return func() reg.VecPhysical {
			if k.avx512 {
				return zregs[avx512Reg]
			}
			dwBroadcastArg(c, name, yregs[15])
			return yregs[15]
		}
	}
	dwClamp(c, dwFlags, p, k.acc, bound("lo", 30), bound("hi", 31), clampLabel)
	c.LEAQ(operand.Mem{Base: dwDp, Index: dwOff, Scale: 1}, dwT)
	for j := 0; j < p; j++ {
		c.VMOVUPS(k.acc(j), k.pixAddr(c, j))
	}
}

// The frame the fp32 and int8 row kernels share (labels by lt): one chunk
// goes over every channel vector, loads the vector's filter rows, sums
// over the input rows, and finishes with each kernel's own epilogue.

// dwChunkLoop emits body for every channel vector of a chunk of p outputs
// (dwOff from 0 to dwN by step), then moves the chunk pointers past the p
// outputs, s input pixels each.
func dwChunkLoop(c *build.Context, p, s, step int, lt func(string) string, body func()) {
	c.XORQ(dwOff, dwOff)
	c.Label(lt("vec"))
	body()
	c.ADDQ(operand.U32(step), dwOff)
	c.CMPQ(dwOff, dwN)
	c.JL(operand.LabelRef(lt("vec")))
	c.IMUL3Q(operand.U32(p*s), dwC4, dwA)
	c.ADDQ(dwA, dwXp)
	if s != 1 {
		c.IMUL3Q(operand.U32(p), dwC4, dwA)
	}
	c.ADDQ(dwA, dwDp)
	c.ADDQ(dwA, dwRp)
}

// dwFilterRows emits the loads of the channel vector's filter rows inside
// the input (dwRows of them): row(r, taps) loads row r from its three taps'
// addresses, tap bytes apart.
func dwFilterRows(c *build.Context, lt func(string) string, tap reg.GPPhysical, row func(r int, taps [3]operand.Mem)) {
	c.Load(c.Param("w"), dwA)
	c.ADDQ(dwOff, dwA)
	c.LEAQ(operand.Mem{Base: tap, Index: tap, Scale: 2}, dwT)
	for r := 0; r < 3; r++ {
		if r > 0 {
			c.CMPQ(dwRows, operand.U32(r))
			c.JLE(operand.LabelRef(lt("weights")))
			c.ADDQ(dwT, dwA)
		}
		row(r, [3]operand.Mem{{Base: dwA}, {Base: dwA, Index: tap, Scale: 1}, {Base: dwA, Index: tap, Scale: 2}})
	}
	c.Label(lt("weights"))
}

// dwRowSums emits the sums of the chunk's p outputs (stride s) over the
// filter rows inside the input: load (a move or a widening) brings input
// column q of the row into register xreg(q), tap(r, kw, j, x) adds its
// product with weight (r, kw) to output j. Input column q serves output j
// through tap kw when q = j*s + kw; for each output its taps come in kw
// order, rows in r order.
func dwRowSums(c *build.Context, p, s int, lt func(string) string, load func(...operand.Op), xreg func(q int) reg.VecPhysical, tap func(r, kw, j int, x reg.VecPhysical)) {
	c.LEAQ(operand.Mem{Base: dwXp, Index: dwOff, Scale: 1}, dwXr)
	for r := 0; r < 3; r++ {
		if r > 0 {
			c.CMPQ(dwRows, operand.U32(r))
			c.JLE(operand.LabelRef(lt("summed")))
			c.ADDQ(dwSRow, dwXr)
		}
		c.MOVQ(dwXr, dwT)
		for q := 0; q < (p-1)*s+3; q++ {
			x := xreg(q)
			load(dwPixAddr(c, q), x)
			for kw := 0; kw < 3; kw++ {
				if q < kw || (q-kw)%s != 0 {
					continue
				}
				if j := (q - kw) / s; j < p {
					tap(r, kw, j, x)
				}
			}
		}
	}
	c.Label(lt("summed"))
}
