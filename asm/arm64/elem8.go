package main

import "fmt"

// The uint8 elementwise kernels (kernels/quant8.go): max pooling window,
// Quantize and Dequantize. Arguments are ABI0 stack slots; each kernel
// takes n a positive multiple of its vector width (Go does the tails).

// fdivS4 is FDIV Vd.4S, Vn.4S, Vm.4S (U=1, opcode 11111): the correctly
// rounded IEEE quotient, as Go's float32 division.
func fdivS4(d, n, m V) Enc {
	return Enc{threeSameFP(0x6e20fc00, d, n, m), fmt.Sprintf("fdiv v%d.4s, v%d.4s, v%d.4s", d, n, m)}
}

func (a *Asm) FDIV(d, n, m V) { a.word(fdivS4(d, n, m)) }

func (a *Asm) CMPconst(c int, r R) { a.op("CMP", fmt.Sprintf("$%d", c), r.String()) }
func (a *Asm) BLT(label string)    { a.op("BLT", label) }
func (a *Asm) B(label string)      { a.op("B", label) }
func (a *Asm) ADDconst(c int, src, dst R) {
	a.op("ADD", fmt.Sprintf("$%d", c), src.String(), dst.String())
}
func (a *Asm) VLD1B(base R, first V, n int) {
	a.op("VLD1", fmt.Sprintf("(%s)", base), listB16(first, n))
}
func (a *Asm) VST1Bpost(base R, first V, n int) {
	a.op("VST1.P", listB16(first, n), fmt.Sprintf("%d(%s)", 16*n, base))
}
func (a *Asm) VST1post(base R, first V, n int) {
	a.op("VST1.P", list(first, n), fmt.Sprintf("%d(%s)", 16*n, base))
}

// maxWindow8 writes maxWindow8NEON(dst, src *uint8, n, kh, kw, rowStride,
// pixStride int): dst[j] = max over y < kh, x < kw of
// src[y*rowStride + x*pixStride + j] for j < n, n a multiple of 16 (UMAX).
func maxWindow8(a *Asm) {
	maxWindowKernel(a, "maxWindow8NEON", 16, 0, a.VLD1B, a.VST1Bpost, func(nv int) {
		for i := 0; i < nv; i++ {
			a.VUMAXB(V(4+i), V(i), V(i))
		}
	})
}

// elemArgs loads dst, src, n into R0-R2 and broadcasts the float32 scale
// into V16 and the int32 zero into V17.
func elemArgs(a *Asm, name string) {
	a.Text(name, 0, 32)
	a.MOVD("dst+0(FP)", "R0")
	a.MOVD("src+8(FP)", "R1")
	a.MOVD("n+16(FP)", "R2")
	a.MOVW("scale+24(FP)", "R3")
	a.VDUPS(3, 16)
	a.MOVW("zero+28(FP)", "R3")
	a.VDUPS(3, 17)
}

// quantize writes quantizeNEON(dst *uint8, src *float32, n int, scale
// float32, zero int32), bit-exact with kernels.quantizeGo, 16 values per
// iteration: FDIV; FMAX/FMIN clamp to ±65536 (NaN stays NaN); FCVTNS
// (ties to even; NaN gives 0, Go's NaN rule); SQADD zero (saturating,
// which cannot change the final clamp to [0, 255]); SQXTUN then UQXTN
// saturate to uint8.
func quantize(a *Asm) {
	const lo, hi V = 18, 19
	elemArgs(a, "quantizeNEON")
	a.MOVD("$0xc7800000", "R3") // -65536.0
	a.VDUPS(3, lo)
	a.MOVD("$0x47800000", "R3") // 65536.0
	a.VDUPS(3, hi)
	a.Label("loop")
	a.VLD1post(1, 0, 4)
	for i := V(0); i < 4; i++ {
		a.FDIV(i, i, 16)
		a.FMAX(i, i, lo)
		a.FMIN(i, i, hi)
		a.FCVTNS(i, i)
		a.SQADD(i, i, 17)
	}
	a.SQXTUN(4, 0)
	a.SQXTUN2(4, 1)
	a.SQXTUN(5, 2)
	a.SQXTUN2(5, 3)
	a.UQXTN(6, 4)
	a.UQXTN2(6, 5)
	a.VST1Bpost(0, 6, 1)
	a.SUBSconst(16, 2, 2)
	a.BNE("loop")
	a.RET()
}

// dequantize writes dequantizeNEON(dst *float32, src *uint8, n int, scale
// float32, zero int32), bit-exact with kernels.dequantizeGo, 16 values per
// iteration: widen (UXTL), VSUB zero (wraps as Go's int32 subtraction),
// SCVTF (ties to even under Go's FPCR), FMUL.
func dequantize(a *Asm) {
	elemArgs(a, "dequantizeNEON")
	a.Label("loop")
	a.VLD1Bpost(1, 0, 1)
	a.UXTLbh(0, 1)
	a.UXTL2bh(0, 2)
	a.UXTLhs(1, 3)
	a.UXTL2hs(1, 4)
	a.UXTLhs(2, 5)
	a.UXTL2hs(2, 6)
	for i := V(3); i < 7; i++ {
		a.VSUBS(17, i, i)
		a.SCVTF(i, i)
		a.FMUL(i, i, 16)
	}
	a.VST1post(0, 3, 4)
	a.SUBSconst(16, 2, 2)
	a.BNE("loop")
	a.RET()
}

// add8 writes add8NEON(dst, a, b *uint8, n int, p *int32), bit-exact with
// kernels.add8Go, 16 pairs per iteration. p points to a kernels.Add8Params
// (int32 ZeroA, ZeroB, ZeroOut, Lo at 0-12, float32 ScaleA, ScaleB at 16,
// 20) whose Lo the caller has clamped to [0, 255]: the ReLU bound is then
// applied after narrowing, by UMAX on bytes (max commutes with the
// monotonic clamp to [0, 255]). The caller guarantees finite sums.
//
//	t = float32(a - zA)·sA + float32(b - zB)·sB   (FMUL, FMUL, FADD)
//	dst = max(sat8(FCVTNS(clamp(t, ±65536)) + zOut), lo)
func add8(a *Asm) {
	const (
		zA, zB, zOut, lo, sA, sB V = 16, 17, 18, 19, 20, 21
		cLo, cHi                 V = 22, 23
	)
	a.Text("add8NEON", 0, 40)
	a.MOVD("dst+0(FP)", "R0")
	a.MOVD("a+8(FP)", "R1")
	a.MOVD("b+16(FP)", "R2")
	a.MOVD("n+24(FP)", "R3")
	a.MOVD("p+32(FP)", "R4")
	for i, v := range []V{zA, zB, zOut, lo, sA, sB} {
		a.MOVW(fmt.Sprintf("%d(R4)", 4*i), "R5")
		if v == lo {
			a.VDUPB(5, v)
		} else {
			a.VDUPS(5, v)
		}
	}
	a.MOVD("$0xc7800000", "R5") // -65536.0
	a.VDUPS(5, cLo)
	a.MOVD("$0x47800000", "R5") // 65536.0
	a.VDUPS(5, cHi)
	a.Label("loop")
	a.VLD1Bpost(1, 0, 1)
	a.VLD1Bpost(2, 1, 1)
	// a widened into V4-V7, b into V8-V11.
	for _, w := range []struct{ src, first V }{{0, 4}, {1, 8}} {
		a.UXTLbh(w.src, 2)
		a.UXTL2bh(w.src, 3)
		a.UXTLhs(2, w.first)
		a.UXTL2hs(2, w.first+1)
		a.UXTLhs(3, w.first+2)
		a.UXTL2hs(3, w.first+3)
	}
	for i := V(0); i < 4; i++ {
		x, y := 4+i, 8+i
		a.VSUBS(zA, x, x)
		a.SCVTF(x, x)
		a.FMUL(x, x, sA)
		a.VSUBS(zB, y, y)
		a.SCVTF(y, y)
		a.FMUL(y, y, sB)
		a.FADD(x, x, y)
		a.FMAX(x, x, cLo)
		a.FMIN(x, x, cHi)
		a.FCVTNS(x, x)
		a.SQADD(x, x, zOut)
	}
	a.SQXTUN(12, 4)
	a.SQXTUN2(12, 5)
	a.SQXTUN(13, 6)
	a.SQXTUN2(13, 7)
	a.UQXTN(14, 12)
	a.UQXTN2(14, 13)
	a.VUMAXB(lo, 14, 14)
	a.VST1Bpost(0, 14, 1)
	a.SUBSconst(16, 3, 3)
	a.BNE("loop")
	a.RET()
}
