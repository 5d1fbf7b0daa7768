package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// How a kernel multiplies uint8 activations by int8 weights.
const (
	// dotVNNI512: EVEX VPDPBUSD on zmm, four u8*s8 products per int32 lane.
	dotVNNI512 = iota
	// dotAVXVNNI: VEX VPDPBUSD on ymm (AVX-VNNI), emitted as bytes.
	dotAVXVNNI
	// dotMadd16: both operands widened to int16 (VPMOVZXBW/VPMOVSXBW),
	// then VPMADDWD: exact for every input. Each int32 lane holds two of
	// a column's four products; pairs are added in the epilogue.
	dotMadd16
	// dotMaddUBSW: VPMADDUBSW (u8*s8 pairs into int16, saturating) then
	// VPMADDWD by ones. Not exact for every input (255*127*2 > 32767):
	// run only for weights in [-64, 63], where no pair sum saturates (the
	// narrow variant of the dotMadd16 kernel, chosen by kernels.PackB8).
	dotMaddUBSW
)

// kernel8 is one int8 GEMM microkernel: mr rows by nr() columns.
type kernel8 struct {
	name   string
	dot    int
	mr     int
	nv     int // 8- or 16-lane int32 column vectors per row
	unroll int // K groups of 4 per iteration of the main loop
	pf     int // prefetch B this many bytes ahead (0: none)
}

// The kernels that are emitted. The AVX-512 tile was chosen by measuring
// 12x32, 14x32, 8x48 and 6x64 (BenchmarkGemm8, docs/INT8.md): 12x32 and
// 14x32 tie at 790-910 GOP/s, 8x48 is 5-10% slower; 14 divides the ResNet
// maps as for the fp32 kernel.
var kernels8 = []*kernel8{
	{name: "gemmU8_14x32_AVX512VNNI", dot: dotVNNI512, mr: 14, nv: 2, unroll: 4, pf: 2048},
	{name: "gemmU8_6x16_AVXVNNI", dot: dotAVXVNNI, mr: 6, nv: 2, unroll: 4, pf: 1024},
	{name: "gemmU8_6x8_AVX2", dot: dotMadd16, mr: 6, nv: 1, unroll: 4, pf: 512},
	{name: "gemmU8_5x16_AVX2UBSW", dot: dotMaddUBSW, mr: 5, nv: 2, unroll: 4, pf: 1024},
}

func (k *kernel8) zmm() bool { return k.dot == dotVNNI512 }

// corrInit: the accumulators start from ep.corr (see kloop).
func (k *kernel8) corrInit() bool { return k.dot == dotVNNI512 || k.dot == dotAVXVNNI }

func (k *kernel8) lanes() int {
	if k.zmm() {
		return 16
	}
	return 8
}

func (k *kernel8) nr() int { return k.nv * k.lanes() }

func (k *kernel8) vec(i int) reg.VecPhysical {
	if k.zmm() {
		return zregs[i]
	}
	return yregs[i]
}

// accPerRow is the number of accumulators of a row: dotMadd16 keeps two
// int32 lanes per column until the epilogue.
func (k *kernel8) accPerRow() int {
	if k.dot == dotMadd16 {
		return 2 * k.nv
	}
	return k.nv
}

func (k *kernel8) acc(i, v int) reg.VecPhysical { return k.vec(i*k.accPerRow() + v) }

// w is weight register v of the current K group (free after the K loop).
func (k *kernel8) w(v int) reg.VecPhysical { return k.vec(k.mr*k.accPerRow() + v) }

// tmp registers follow the weights; ones (dotMaddUBSW) is the last.
func (k *kernel8) tmp(i int) reg.VecPhysical { return k.vec(k.mr*k.accPerRow() + k.accPerRow() + i) }

func (k *kernel8) ones() reg.VecPhysical { return k.tmp(2) }

func (k *kernel8) xmm(v reg.VecPhysical) reg.VecPhysical { return v.AsX().(reg.VecPhysical) }

// Offsets in the epilogue block gemm8Epi (kernels/gemm8_amd64.go; a test
// there checks them): per-column int32 corrections and float32 scales for
// up to 64 columns, then 16-lane broadcasts of the scalars.
const (
	epiCorr     = 0
	epiScale    = 256
	epiZeroOut  = 512
	epiLo       = 576
	epiResZero  = 640
	epiResScale = 704
	epiHi       = 768 // +65536
	epiNegHi    = 832 // -65536
)

const signature8 = "func(m, n, k int, a *uint8, lda int, b *int8, c *uint8, ldc int, res *uint8, ldres int, ep *int32)"

// gemm8File emits kernels/gemm8_amd64.s (requantBench and vnniPeak go to
// kernelbench_amd64.s).
func gemm8File(c *build.Context) {
	for _, k := range kernels8 {
		k.generate(c)
	}
	amxGemm8(c)
	maxWindow8(c, "maxWindow8AVX2", false)
	maxWindow8(c, "maxWindow8AVX512", true)
	quantize(c, "quantizeAVX2", false)
	quantize(c, "quantizeAVX512", true)
	dequantize(c, "dequantizeAVX2", false)
	dequantize(c, "dequantizeAVX512", true)
	add8(c, "add8AVX2", false)
	add8(c, "add8AVX512", true)
}

// vpdpbusd emits acc += u8(u)·s8(s), four products per int32 lane.
func (k *kernel8) vpdpbusd(c *build.Context, s, u, acc reg.VecPhysical) {
	if k.dot == dotVNNI512 {
		c.Instruction(&ir.Instruction{Opcode: "VPDPBUSD", Operands: []operand.Op{s, u, acc},
			Inputs: []operand.Op{s, u, acc}, Outputs: []operand.Op{acc}})
		return
	}
	// The Go assembler encodes VPDPBUSD on ymm with EVEX (AVX512VL), which
	// an AVX-VNNI CPU without AVX-512 cannot run.
	enc := vexVPDPBUSD(regNum(acc), regNum(u), regNum(s))
	rawInst(c, fmt.Sprintf("{vex} vpdpbusd %s, %s, %s", intelName(acc), intelName(u), intelName(s)), enc)
}

// vexVPDPBUSD encodes VEX.256.66.0F38.W0 50 /r, vpdpbusd ymm(dst),
// ymm(src1: unsigned bytes), ymm(src2: signed bytes), register form.
func vexVPDPBUSD(dst, src1, src2 int) []byte {
	b1 := byte(0x02) // map 0F38
	if dst < 8 {
		b1 |= 0x80 // VEX.R is stored inverted
	}
	b1 |= 0x40 // X̄: no index register
	if src2 < 8 {
		b1 |= 0x20
	}
	b2 := byte((^src1&0xf)<<3) | 0x04 | 0x01 // W0, vvvv inverted, L=256, pp=66
	modrm := byte(0xc0 | (dst&7)<<3 | src2&7)
	return []byte{0xc4, b1, b2, 0x50, modrm}
}

func regNum(v reg.VecPhysical) int {
	if n := int(v.PhysicalIndex()); n < 16 {
		return n
	}
	panic(fmt.Sprintf("VEX encodes only vector registers 0-15, not %s", v.Asm()))
}

func intelName(v reg.VecPhysical) string { return fmt.Sprintf("ymm%d", regNum(v)) }

func (k *kernel8) generate(c *build.Context) {
	c.Function(k.name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr(signature8)
	isa := map[int]string{dotVNNI512: "AVX512F, AVX512BW, AVX512VL, AVX512VNNI", dotAVXVNNI: "AVX2, AVX-VNNI",
		dotMadd16: "AVX2", dotMaddUBSW: "AVX2"}[k.dot]
	c.Commentf("Rows [0, m) of one %d-column int8 panel in %d-row tiles, each over the", k.nr(), k.mr)
	c.Commentf("whole K loop, then requantized to uint8. Requires %s.", isa)
	l := func(s string) string { return k.name + "_" + s }

	c.Load(c.Param("a"), rA)
	c.Load(c.Param("lda"), rLda)
	c.Load(c.Param("c"), rC)
	c.Load(c.Param("res"), rRes)
	c.Load(c.Param("m"), rM)
	c.Load(c.Param("k"), rK)
	c.SHRQ(operand.U8(2), rK) // K groups of 4 bytes
	if k.zmm() {
		columnMasks(c, k.nv)
	}
	tile := func(h int) {
		k.kloop(c, h, l(fmt.Sprintf("m%d_", h)))
		c.MOVQ(operand.U32(h), rKK)
	}
	next := func() {
		stepParam(c, "ldc", k.mr, rC)
		stepParam(c, "ldres", k.mr, rRes)
	}
	rowTiles(c, l, k.mr, tile, "epilogue", func() { k.epilogue(c, l) }, next)
}

// kloop starts the accumulators of m rows and runs the K loop (rK groups
// of 4 bytes) over them. The VNNI kernels start from the correction
// (Bias - ZeroA*ColSum: int32 adds wrap, so the order does not matter),
// which saves one add per output vector in the epilogue; dotMadd16 keeps
// two lanes per column until the epilogue and adds it there.
func (k *kernel8) kloop(c *build.Context, m int, l string) {
	if k.corrInit() {
		c.Load(c.Param("ep"), grp[0])
	}
	for i := 0; i < m; i++ {
		for v := 0; v < k.accPerRow(); v++ {
			switch {
			case k.corrInit() && k.zmm():
				c.VMOVDQU32(operand.Mem{Base: grp[0], Disp: epiCorr + 64*v}, k.acc(i, v))
			case k.corrInit():
				c.VMOVDQU(operand.Mem{Base: grp[0], Disp: epiCorr + 32*v}, k.acc(i, v))
			case k.zmm():
				c.VPXORD(k.acc(i, v), k.acc(i, v), k.acc(i, v))
			default:
				c.VPXOR(k.acc(i, v), k.acc(i, v), k.acc(i, v))
			}
		}
	}
	if k.dot == dotMaddUBSW {
		// int16 ones for VPMADDWD.
		c.VPCMPEQW(k.ones(), k.ones(), k.ones())
		c.VPSRLW(operand.U8(15), k.ones(), k.ones())
	}
	gbytes := 4 * k.nr() // bytes of B per K group
	loadB := func(u int) {
		bm := func(off int) operand.Mem { return operand.Mem{Base: rB, Disp: u*gbytes + off} }
		switch k.dot {
		case dotVNNI512:
			for v := 0; v < k.nv; v++ {
				c.VMOVDQU32(bm(v*64), k.w(v))
			}
		case dotAVXVNNI, dotMaddUBSW:
			for v := 0; v < k.nv; v++ {
				c.VMOVDQU(bm(v*32), k.w(v))
			}
		case dotMadd16:
			for v := 0; v < k.accPerRow(); v++ {
				c.VPMOVSXBW(bm(v*16), k.w(v))
			}
		}
	}
	row := func(i int, a operand.Mem) {
		switch k.dot {
		case dotVNNI512, dotAVXVNNI:
			t := k.tmp(i % 2)
			c.VPBROADCASTD(a, t)
			for v := 0; v < k.nv; v++ {
				k.vpdpbusd(c, k.w(v), t, k.acc(i, v))
			}
		case dotMadd16:
			// Four activations as int16, repeated: [a0 a1 a2 a3]x4.
			t, p := k.tmp(0), k.tmp(1)
			c.VPBROADCASTD(a, k.xmm(t))
			c.VPMOVZXBW(k.xmm(t), t)
			for v := 0; v < k.accPerRow(); v++ {
				c.VPMADDWD(k.w(v), t, p)
				c.VPADDD(p, k.acc(i, v), k.acc(i, v))
			}
		case dotMaddUBSW:
			t, p := k.tmp(0), k.tmp(1)
			c.VPBROADCASTD(a, t)
			for v := 0; v < k.nv; v++ {
				c.VPMADDUBSW(k.w(v), t, p)
				c.VPMADDWD(k.ones(), p, p)
				c.VPADDD(p, k.acc(i, v), k.acc(i, v))
			}
		}
	}
	tileKLoop(c, l, m, k.mr, k.unroll, gbytes, k.pf, loadB, row)
}

// epilogue requantizes the tile's rKK rows and stores their n columns,
// step by step as kernels.Requantize: correction (bias - ZeroA*ColSum),
// float32 conversion, scale, residual, clamp to ±65536, round half to even
// (VCVTPS2DQ under the default MXCSR), + ZeroOut, max Lo, saturate to 255.
// Two copies of the row loop: with and without the residual.
func (k *kernel8) epilogue(c *build.Context, l func(string) string) {
	ep := reg.RDI
	c.Load(c.Param("ep"), ep)
	if k.dot == dotMadd16 {
		// Pairs of int32 lanes per column to one lane, in column order.
		for i := 0; i < k.mr; i++ {
			for v := 0; v < k.nv; v++ {
				lo, hi := k.acc(i, 2*v), k.acc(i, 2*v+1)
				c.VPHADDD(hi, lo, lo)
				c.VPERMQ(operand.U8(0xd8), lo, lo)
			}
		}
	}
	c.TESTQ(rRes, rRes)
	c.JZ(operand.LabelRef(l("nores")))
	k.rowsOut(c, l, ep, true)
	c.JMP(operand.LabelRef(l("stored")))
	c.Label(l("nores"))
	k.rowsOut(c, l, ep, false)
	c.Label(l("stored"))
}

// out is the requantized row vector v of row i (the accumulator, in place).
func (k *kernel8) out(i, v int) reg.VecPhysical {
	if k.dot == dotMadd16 {
		return k.acc(i, 2*v)
	}
	return k.acc(i, v)
}

func (k *kernel8) rowsOut(c *build.Context, l func(string) string, ep reg.GPPhysical, res bool) {
	sfx := "nores"
	if res {
		sfx = "res"
	}
	rowC, rowR, ldc, ldr := reg.RAX, reg.RBX, reg.RCX, reg.R8
	c.MOVQ(rC, rowC)
	c.Load(c.Param("ldc"), ldc)
	if res {
		c.MOVQ(rRes, rowR)
		c.Load(c.Param("ldres"), ldr)
	}
	em := func(off int) operand.Mem { return operand.Mem{Base: ep, Disp: off} }
	exit := l("out_" + sfx)
	q, resT, packT := k.epilogueConsts(c, em, res)
	for i := 0; i < k.mr; i++ {
		if i > 0 {
			c.CMPQ(rKK, operand.U32(i))
			c.JBE(operand.LabelRef(exit))
			c.ADDQ(ldc, rowC)
			if res {
				c.ADDQ(ldr, rowR)
			}
		}
		for v := 0; v < k.nv; v++ {
			k.requantVec(c, q, em, i, v, rowC, rowR, resT)
		}
		if !k.zmm() {
			// Lanes in [0, 65536+255]: VPACKSSDW, then saturation to 255.
			storeBytes(c, c.VPACKSSDW, k.out(i, 0), k.out(i, k.nv-1), packT, operand.Mem{Base: rowC})
		}
	}
	c.Label(exit)
}

// epilogueConsts sets aside the temporaries of the epilogue among the
// registers free after the K loop (packT for AVX2 packing, resT for the
// residual: nil when unused) and loads the scalars into the others, in
// this order of use; the scalars left over stay memory operands of ep.
// Reading them all from memory for every vector made the epilogue
// load-bound (BenchmarkRequant: 115 -> 53 ns per 1000 values).
func (k *kernel8) epilogueConsts(c *build.Context, em func(int) operand.Mem, res bool) (q *requant, resT, packT reg.VecPhysical) {
	free := []reg.VecPhysical{k.w(0), k.w(1), k.tmp(0), k.tmp(1)}
	if !k.zmm() {
		packT, free = free[len(free)-1], free[:len(free)-1]
	}
	if res {
		resT, free = free[len(free)-1], free[:len(free)-1]
	}
	consts := map[int]operand.Op{}
	for i, off := range []int{epiHi, epiNegHi, epiZeroOut, epiLo} {
		consts[off] = em(off)
		if i < len(free) {
			if k.zmm() {
				c.VMOVDQU32(em(off), free[i])
			} else {
				c.VMOVDQU(em(off), free[i])
			}
			consts[off] = free[i]
		}
	}
	q = &requant{resZero: em(epiResZero), resScale: em(epiResScale),
		hi: consts[epiHi], negHi: consts[epiNegHi], zeroOut: consts[epiZeroOut], lo: consts[epiLo]}
	return q, resT, packT
}

// requantVec requantizes output vector v of row i in place: the
// correction (unless the accumulators started from it), the scale, the
// residual row at rowR if resT is not nil, the rounding; AVX-512 stores it
// to rowC here, AVX2 after the row (storeBytes).
func (k *kernel8) requantVec(c *build.Context, q *requant, em func(int) operand.Mem, i, v int, rowC, rowR reg.GPPhysical, resT reg.VecPhysical) {
	vb := 4 * k.lanes() // bytes of one int32 vector
	x := k.out(i, v)
	if !k.corrInit() {
		c.VPADDD(em(epiCorr+v*vb), x, x)
	}
	q.toFloat(c, x, em(epiScale+v*vb))
	if resT != nil {
		t := resT
		if k.zmm() {
			// A masked byte load never touches columns >= n.
			c.VMOVDQU8_Z(operand.Mem{Base: rowR, Disp: v * 16}, masks[v], t.AsX().(reg.VecPhysical))
			c.VPMOVZXBD(t.AsX(), t)
		} else {
			c.VPMOVZXBD(operand.Mem{Base: rowR, Disp: v * 8}, t)
		}
		q.addRes(c, x, t)
	}
	q.round(c, x)
	if k.zmm() {
		// Unsigned saturation to 255 (values are >= Lo >= 0).
		c.VPMOVUSDB(x, masks[v], operand.Mem{Base: rowC, Disp: v * 16})
	}
}

// Registers of requantBench: the pointers (scale for the float32 kernel,
// mult, rnd and shift for the fixed-point one), and the scalars.
var (
	rbDst, rbAcc, rbN, rbCorr, rbCst        = reg.RDI, reg.RSI, reg.RCX, reg.R8, reg.R12
	rbScale, rbMult, rbRnd, rbShift         = reg.R9, reg.R9, reg.R10, reg.R11
	rbZeroOut, rbLo, rbHi, rbNegHi, rbRnd30 = reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z31 // rbRnd30: 2^30 in every qword
)

// requantBench emits the two requantization epilogues compared in
// docs/INT8.md, on one row of n int32 accumulators (n a positive multiple
// of 64, four 16-lane vectors per iteration), AVX-512:
//
//   - requantF32AVX512, the shipped float32 steps of the kernels above:
//     dst[j] = Requantize(acc[j]+corr[j], scale[j], no residual, zeroOut, lo);
//   - requantFixedAVX512, gemmlowp-style fixed point: x = acc[j]+corr[j],
//     h = (x*mult[j] + 2^30) >> 31 (rounding doubling high multiply, 64-bit
//     products of even and odd lanes by VPMULDQ), y = (h + rnd[j]) >> shift[j]
//     (arithmetic), dst[j] = clamp(y + zeroOut, lo, 255).
//
// consts holds zeroOut and lo broadcast to 16 lanes each (the layout of
// gemm8Epi from epiZeroOut: zeroOut, lo, resZero, resScale, hi, negHi).
func requantBench(c *build.Context) {
	for _, fixed := range []bool{false, true} {
		name, sig := "requantF32AVX512", "func(dst *uint8, acc *int32, n int, corr *int32, scale *float32, consts *int32)"
		if fixed {
			name, sig = "requantFixedAVX512", "func(dst *uint8, acc *int32, n int, corr *int32, mult *int32, rnd *int32, shift *int32, consts *int32)"
		}
		c.Function(name)
		c.Attributes(attr.NOSPLIT)
		c.SignatureExpr(sig)
		c.Commentf("Requantization of n int32 values (%s). Requires AVX512F, AVX512BW.", map[bool]string{false: "float32", true: "fixed point"}[fixed])
		requantBenchArgs(c, fixed)
		c.SHRQ(operand.U8(6), rbN)
		c.Label(name + "_loop")
		for u := 0; u < 4; u++ {
			requantBenchVec(c, u, fixed)
		}
		ptrs := []reg.GPPhysical{rbAcc, rbCorr}
		if fixed {
			ptrs = append(ptrs, rbMult, rbRnd, rbShift)
		} else {
			ptrs = append(ptrs, rbScale)
		}
		for _, p := range ptrs {
			c.ADDQ(operand.U32(256), p)
		}
		c.ADDQ(operand.U32(64), rbDst)
		c.DECQ(rbN)
		c.JNZ(operand.LabelRef(name + "_loop"))
		c.VZEROUPPER()
		c.RET()
	}
}

// requantBenchArgs loads the arguments of either kernel and its scalars.
func requantBenchArgs(c *build.Context, fixed bool) {
	c.Load(c.Param("dst"), rbDst)
	c.Load(c.Param("acc"), rbAcc)
	c.Load(c.Param("n"), rbN)
	c.Load(c.Param("corr"), rbCorr)
	c.Load(c.Param("consts"), rbCst)
	if fixed {
		c.Load(c.Param("mult"), rbMult)
		c.Load(c.Param("rnd"), rbRnd)
		c.Load(c.Param("shift"), rbShift)
		// 2^30 in every qword, for the rounding of the high multiply.
		c.MOVQ(operand.U64(1<<30), reg.RAX)
		c.VPBROADCASTQ(reg.RAX, rbRnd30)
		c.MOVL(operand.U32(0xaaaa), reg.EAX)
		c.KMOVW(reg.EAX, reg.K1)
	} else {
		c.Load(c.Param("scale"), rbScale)
	}
	// The scalars live in registers, as the per-channel arrays would
	// stay in L1 across the rows of a tile.
	c.VMOVDQU32(operand.Mem{Base: rbCst}, rbZeroOut)
	c.VMOVDQU32(operand.Mem{Base: rbCst, Disp: epiLo - epiZeroOut}, rbLo)
	if !fixed {
		c.VMOVUPS(operand.Mem{Base: rbCst, Disp: epiHi - epiZeroOut}, rbHi)
		c.VMOVUPS(operand.Mem{Base: rbCst, Disp: epiNegHi - epiZeroOut}, rbNegHi)
	}
}

// requantBenchVec requantizes and stores vector u of the iteration.
func requantBenchVec(c *build.Context, u int, fixed bool) {
	x := zregs[u]
	at := func(r reg.GPPhysical) operand.Mem { return operand.Mem{Base: r, Disp: 64 * u} }
	c.VMOVDQU32(at(rbAcc), x)
	c.VPADDD(at(rbCorr), x, x)
	if fixed {
		odd, m, mo := zregs[4+u], zregs[8+u], zregs[12+u]
		c.VMOVDQU32(at(rbMult), m)
		c.VPSHUFD(operand.U8(0xf5), x, odd) // odd lanes into even positions
		c.VPSHUFD(operand.U8(0xf5), m, mo)
		c.VPMULDQ(m, x, x)
		c.VPMULDQ(mo, odd, odd)
		c.VPADDQ(rbRnd30, x, x)
		c.VPADDQ(rbRnd30, odd, odd)
		c.VPSRLQ(operand.U8(31), x, x) // h in the low dword
		c.VPADDQ(odd, odd, odd)        // h in the high dword
		c.VPBLENDMD(odd, x, reg.K1, x)
		c.VPADDD(at(rbRnd), x, x)
		c.VPSRAVD(at(rbShift), x, x)
	} else {
		c.VCVTDQ2PS(x, x)
		c.VMULPS(at(rbScale), x, x)
		c.VMINPS(rbHi, x, x)
		c.VMAXPS(rbNegHi, x, x)
		c.VCVTPS2DQ(x, x)
	}
	c.VPADDD(rbZeroOut, x, x)
	c.VPMAXSD(rbLo, x, x)
	// Narrowing into a register then storing is faster than
	// VPMOVUSDB to memory on Zen 4/5.
	c.VPMOVUSDB(x, x.AsX())
	c.VMOVDQU(x.AsX(), operand.Mem{Base: rbDst, Disp: 16 * u})
}

// vnniPeak emits a loop of 12 independent VPDPBUSD on registers only (no
// memory), zmm (EVEX) or ymm (VEX, AVX-VNNI): the ceiling the int8 kernels
// are compared with. One iteration is 12·lanes·4 multiply-adds.
func vnniPeak(c *build.Context, name string, zmm bool) {
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.SignatureExpr("func(n int)")
	k := &kernel8{dot: dotAVXVNNI}
	isa := "AVX2, AVX-VNNI"
	if zmm {
		k.dot, isa = dotVNNI512, "AVX512F, AVX512VNNI"
	}
	c.Commentf("n iterations of 12 independent %d-lane VPDPBUSD. Requires %s.", k.lanes(), isa)
	c.Load(c.Param("n"), reg.RCX)
	for i := 0; i < 14; i++ {
		if zmm {
			c.VPXORD(k.vec(i), k.vec(i), k.vec(i))
		} else {
			c.VPXOR(k.vec(i), k.vec(i), k.vec(i))
		}
	}
	c.TESTQ(reg.RCX, reg.RCX)
	c.JZ(operand.LabelRef(name + "_done"))
	c.Label(name + "_loop")
	for i := 0; i < 12; i++ {
		k.vpdpbusd(c, k.vec(12), k.vec(13), k.vec(i))
	}
	c.DECQ(reg.RCX)
	c.JNZ(operand.LabelRef(name + "_loop"))
	c.Label(name + "_done")
	c.VZEROUPPER()
	c.RET()
}
