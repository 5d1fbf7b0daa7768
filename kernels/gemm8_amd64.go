//go:build gc && !purego

package kernels

import "github.com/klauspost/cpuid/v2"

// The int8 assembly kernels compute rows [0, m) of one packed column panel
// (b: k*NR bytes in the layout of PackedB8 with KG = 4) and write columns
// [0, n) of c, requantized exactly as Requantize:
//
//	acc = Σ_k a[i*lda+k]·b[k][j] + ep.corr[j]      (corr = Bias - ZeroA·ColSum)
//	c[i*ldc+j] = Requantize(acc, ep.scale[j], res != nil, res[i*ldres+j], ...)
//
// with the scalars of the Requant taken from ep. k is a positive multiple
// of 4, m >= 1; lda, ldc, ldres are in bytes; res may be nil. The AVX-512
// kernel handles any 1 <= n <= NR with opmasks and reads no residual
// column >= n; the AVX2-class kernels require n == NR (the Go wrapper runs
// narrower panels through scratch rows). Rows past m are never read.
// ep points to a gemm8Epi.

// gemmU8_14x32_AVX512VNNI: MR=14, NR=32, 28 zmm accumulators, VPDPBUSD.
// Requires AVX512F, AVX512BW, AVX512VL and AVX512VNNI.
//
//go:noescape
func gemmU8_14x32_AVX512VNNI(m, n, k int, a *uint8, lda int, b *int8, c *uint8, ldc int, res *uint8, ldres int, ep *int32)

// gemmU8_6x16_AVXVNNI: MR=6, NR=16, 12 ymm accumulators, VEX VPDPBUSD.
// Requires AVX2 and AVX-VNNI.
//
//go:noescape
func gemmU8_6x16_AVXVNNI(m, n, k int, a *uint8, lda int, b *int8, c *uint8, ldc int, res *uint8, ldres int, ep *int32)

// gemmU8_6x8_AVX2: MR=6, NR=8; activations and weights widened to int16
// (VPMOVZXBW, VPMOVSXBW) and multiplied by VPMADDWD, exact for all inputs.
// Requires AVX2.
//
//go:noescape
func gemmU8_6x8_AVX2(m, n, k int, a *uint8, lda int, b *int8, c *uint8, ldc int, res *uint8, ldres int, ep *int32)

// gemmU8_5x16_AVX2UBSW: MR=5, NR=16, VPMADDUBSW + VPMADDWD. Its int16
// pair sums saturate (255·127·2 > 32767), so it is exact only while
// |a[2t]·w[2t] + a[2t+1]·w[2t+1]| <= 32767 (for instance weights in
// [-64, 63]); it is the narrow variant of gemmU8_6x8_AVX2, run only on
// matrices whose weights are all in that range (see PackB8). Requires AVX2.
//
//go:noescape
func gemmU8_5x16_AVX2UBSW(m, n, k int, a *uint8, lda int, b *int8, c *uint8, ldc int, res *uint8, ldres int, ep *int32)

// maxWindow8AVX2 is maxWindowAVX2 on uint8 (see maxWindow8Go), n a
// positive multiple of 32. Requires AVX2.
//
//go:noescape
func maxWindow8AVX2(dst, src *uint8, n, kh, kw, rowStride, pixStride int)

// maxWindow8AVX512 is maxWindow8AVX2 with n a multiple of 64. Requires
// AVX512BW.
//
//go:noescape
func maxWindow8AVX512(dst, src *uint8, n, kh, kw, rowStride, pixStride int)

// quantizeAVX2 is quantizeGo on n values, n a positive multiple of 32,
// |zero| <= 2^24; bit-exact (see asm/amd64/elem8.go). Requires AVX2.
//
//go:noescape
func quantizeAVX2(dst *uint8, src *float32, n int, scale float32, zero int32)

// quantizeAVX512 is quantizeAVX2 with n a multiple of 64. Requires
// AVX512F and AVX512BW.
//
//go:noescape
func quantizeAVX512(dst *uint8, src *float32, n int, scale float32, zero int32)

// dequantizeAVX2 is dequantizeGo on n values, n a positive multiple of 32.
// Requires AVX2.
//
//go:noescape
func dequantizeAVX2(dst *float32, src *uint8, n int, scale float32, zero int32)

// dequantizeAVX512 is dequantizeAVX2 with n a multiple of 64. Requires
// AVX512F and AVX512BW.
//
//go:noescape
func dequantizeAVX512(dst *float32, src *uint8, n int, scale float32, zero int32)

// add8AVX2 is add8Go for n a positive multiple of 32; p points to an
// Add8Params (finite scales <= 2^90, |ZeroOut| <= 2^24). Requires AVX2.
//
//go:noescape
func add8AVX2(dst, a, b *uint8, n int, p *int32)

// add8AVX512 is add8AVX2 with n a multiple of 64. Requires AVX512F and
// AVX512BW.
//
//go:noescape
func add8AVX512(dst, a, b *uint8, n int, p *int32)

// add8Call adapts an add8 kernel to the path's signature.
func add8Call(f func(dst, a, b *uint8, n int, p *int32)) func(dst, a, b *uint8, n int, p *Add8Params) {
	return func(dst, a, b *uint8, n int, p *Add8Params) { f(dst, a, b, n, &p.ZeroA) }
}

// gemm8MaxNR bounds the panel width of the amd64 int8 kernels.
const gemm8MaxNR = 64

// gemm8Epi is the requantization block the kernels read (offsets mirrored
// by epi* in asm/amd64/gemm8.go, checked by TestGemm8EpiLayout): per-column
// values, then each scalar broadcast to 16 lanes so that the kernels use
// them as plain vector memory operands.
type gemm8Epi struct {
	corr     [gemm8MaxNR]int32   // Bias[j] - ZeroA*ColSum[j]
	scale    [gemm8MaxNR]float32 // Scale[j]
	zeroOut  [16]int32
	lo       [16]int32
	resZero  [16]int32
	resScale [16]float32
	hi       [16]float32 // +65536
	negHi    [16]float32 // -65536
}

// fill sets the block for one panel of n columns.
func (e *gemm8Epi) fill(n int, colSum []int32, rq *Requant) {
	for j := 0; j < n; j++ {
		v := -rq.ZeroA * colSum[j]
		if rq.Bias != nil {
			v += rq.Bias[j]
		}
		e.corr[j] = v
		e.scale[j] = rq.Scale[j]
	}
	for j := range 16 {
		e.zeroOut[j], e.lo[j], e.resZero[j] = rq.ZeroOut, rq.Lo, rq.ResZero
		e.resScale[j], e.hi[j], e.negHi[j] = rq.ResScale, 65536, -65536
	}
}

// gemm8CallMACs bounds the work of one assembly call (rows*k*NR
// multiply-adds, a few tens of microseconds): assembly is not preemptible.
const gemm8CallMACs = 1 << 21

// Kernel identifiers for asm8Rows: the calls are direct (not through a
// func value) so that the stack blocks passed to them do not escape.
const (
	k8VNNI512 = iota
	k8AVXVNNI
	k8AVX2
	k8AVX2UBSW
)

func call8(id, m, n, k int, a *uint8, lda int, b *int8, c *uint8, ldc int, res *uint8, ldres int, ep *gemm8Epi) {
	e := &ep.corr[0]
	if res == nil {
		ldres = 0 // the kernels step res by MR*ldres per tile and test it for nil
	}
	switch id {
	case k8VNNI512:
		gemmU8_14x32_AVX512VNNI(m, n, k, a, lda, b, c, ldc, res, ldres, e)
	case k8AVXVNNI:
		gemmU8_6x16_AVXVNNI(m, n, k, a, lda, b, c, ldc, res, ldres, e)
	case k8AVX2:
		gemmU8_6x8_AVX2(m, n, k, a, lda, b, c, ldc, res, ldres, e)
	case k8AVX2UBSW:
		gemmU8_5x16_AVX2UBSW(m, n, k, a, lda, b, c, ldc, res, ldres, e)
	}
}

// asm8Impl wraps an assembly kernel as a gemm8Impl. masked kernels take
// any n; the others get full panels, narrower ones through scratch rows.
func asm8Impl(name string, id, mr, nr int, masked bool) *gemm8Impl {
	rows := func(m, n, k int, a []uint8, lda int, b []int8, colSum []int32, c []uint8, ldc int, rq Requant) {
		var ep gemm8Epi
		ep.fill(n, colSum, &rq)
		chunk := max(mr, gemm8CallMACs/(k*nr)/mr*mr)
		for i0 := 0; i0 < m; i0 += chunk {
			mm := min(chunk, m-i0)
			var res *uint8
			if rq.Res != nil {
				res = &rq.Res[i0*rq.LdRes]
			}
			if masked || n == nr {
				call8(id, mm, n, k, &a[i0*lda], lda, &b[0], &c[i0*ldc], ldc, res, rq.LdRes, &ep)
				continue
			}
			tail8(id, mr, nr, mm, n, k, a[i0*lda:], lda, b, c[i0*ldc:], ldc, &rq, i0, &ep)
		}
	}
	return &gemm8Impl{name: name, mr: mr, nr: nr, kg: 4, rows: rows}
}

// tail8 runs a panel of n < nr columns MR rows at a time through stack
// scratch: the kernel writes (and reads residuals of) whole NR-wide rows.
func tail8(id, mr, nr, m, n, k int, a []uint8, lda int, b []int8, c []uint8, ldc int, rq *Requant, row0 int, ep *gemm8Epi) {
	var cs, rs [8 * gemm8MaxNR]uint8
	for i0 := 0; i0 < m; i0 += mr {
		mm := min(mr, m-i0)
		var res *uint8
		if rq.Res != nil {
			for i := 0; i < mm; i++ {
				src := rq.Res[(row0+i0+i)*rq.LdRes:]
				copy(rs[i*nr:i*nr+n], src[:n])
			}
			res = &rs[0]
		}
		call8(id, mm, nr, k, &a[i0*lda], lda, &b[0], &cs[0], nr, res, nr, ep)
		for i := 0; i < mm; i++ {
			copy(c[(i0+i)*ldc:(i0+i)*ldc+n], cs[i*nr:i*nr+n])
		}
	}
}

func withNarrow(impl, narrow *gemm8Impl) *gemm8Impl {
	impl.narrow = narrow
	return impl
}

func withWinograd8(impl *gemm8Impl, prefers func(g *ConvGeom, narrow bool) bool) *gemm8Impl {
	impl.winograd8 = prefers
	return impl
}

func hasAVX512VNNI() bool { return hasAVX512() && cpuid.CPU.Supports(cpuid.AVX512VNNI) }
func hasAVXVNNI() bool    { return hasAVX2() && cpuid.CPU.Supports(cpuid.AVXVNNI) }

var (
	gemm8VNNI512 = withWinograd8(asm8Impl("gemmU8_14x32_AVX512VNNI", k8VNNI512, 14, 32, true), wino8VNNI)
	gemm8AVXVNNI = asm8Impl("gemmU8_6x16_AVXVNNI", k8AVXVNNI, 6, 16, false)
	// Inexact for full-range weights (see its stub): only the narrow
	// variant of gemm8AVX2, for 7-bit weights.
	gemm8AVX2UBSW = asm8Impl("gemmU8_5x16_AVX2UBSW", k8AVX2UBSW, 5, 16, false)
	gemm8AVX2     = withWinograd8(withNarrow(asm8Impl("gemmU8_6x8_AVX2", k8AVX2, 6, 8, false), gemm8AVX2UBSW), wino8UnlessNarrowBig)

	// The avx512 level keeps the exact int16 AVX2 kernel: VPDPBUSD belongs
	// to the VNNI levels.
	_ = gemm8Reg.add("avx2", hasAVX2, gemm8AVX2)
	_ = gemm8Reg.add("avxvnni", hasAVXVNNI, gemm8AVXVNNI)
	_ = gemm8Reg.add("avx512vnni", hasAVX512VNNI, gemm8VNNI512)
)
