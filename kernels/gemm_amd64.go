//go:build gc && !purego

package kernels

import (
	"strings"
	"unsafe"

	"github.com/klauspost/cpuid/v2"
)

// The assembly kernels take plain arguments rather than a params struct
// read through go_asm.h: avo cannot emit symbolic field offsets, while go
// vet's asmdecl checks every argument offset and size against these
// declarations, so the frame cannot drift from the Go side either.
//
// Each computes, for i < m and j < n,
//
//	c[i*ldc+j] = relu?(sum over kk < k of a[i*lda+kk]*b[kk*NR+j] + bias[j] + res[i*ldres+j])
//
// with the sum in increasing kk order (one FMA per term), bias added if
// flags&gemmFlagBias, res if flags&gemmFlagRes, max(x, 0) if
// flags&gemmFlagRelu (NaN passes through). b is one packed panel (k*NR
// values). Rows are done in MR-row tiles; a partial last tile reads only its
// rows of a. Nothing outside c's m x n region is written, nothing past
// column n of bias/res and row m of a/res is read. 1 <= n <= NR, m >= 1,
// k >= 0; lda, ldc, ldres are in elements.

// gemmF32_6x16_AVX2FMA is the kernel above with MR=6, NR=16 (12 ymm
// accumulators). Requires AVX2 and FMA3.
//
//go:noescape
func gemmF32_6x16_AVX2FMA(m, n, k int, a *float32, lda int, b *float32, c *float32, ldc int, bias *float32, res *float32, ldres int, flags int)

// gemmF32_14x32_AVX512 is the kernel above with MR=14, NR=32 (28 zmm
// accumulators, A elements broadcast by VBROADCASTSS). Requires AVX512F.
//
//go:noescape
func gemmF32_14x32_AVX512(m, n, k int, a *float32, lda int, b *float32, c *float32, ldc int, bias *float32, res *float32, ldres int, flags int)

// gemmF32_28x16_AVX512 is the kernel above with MR=28, NR=16 (28 zmm
// accumulators, A elements as embedded-broadcast FMA operands): the
// narrow variant of gemmF32_14x32_AVX512 for N <= 16. Requires AVX512F.
//
//go:noescape
func gemmF32_28x16_AVX512(m, n, k int, a *float32, lda int, b *float32, c *float32, ldc int, bias *float32, res *float32, ldres int, flags int)

// maxWindowAVX2 sets dst[j] to the maximum of src[y*rowStride+x*pixStride+j]
// over y < kh, x < kw, for j < n; n is a positive multiple of 8, kh, kw >= 1,
// strides in elements. Where a value is NaN the result is unspecified.
// Requires AVX2.
//
//go:noescape
func maxWindowAVX2(dst, src *float32, n, kh, kw, rowStride, pixStride int)

// maxWindowAVX512 is maxWindowAVX2 with n a multiple of 16. Requires AVX512F.
//
//go:noescape
func maxWindowAVX512(dst, src *float32, n, kh, kw, rowStride, pixStride int)

// epilogueAVX2 sets v[i] = relu?(v[i] + bias[i] + res[i]) for i < n, adding
// bias if flags&gemmFlagBias, res if flags&gemmFlagRes and applying ReLU
// (NaN kept) if flags&gemmFlagRelu, in that order. n is a positive multiple
// of 8. Requires AVX2.
//
//go:noescape
func epilogueAVX2(v, bias, res *float32, n, flags int)

// epilogueAVX512 is epilogueAVX2 with n a multiple of 16. Requires AVX512F.
//
//go:noescape
func epilogueAVX512(v, bias, res *float32, n, flags int)

// clampRowsAVX2 clamps rows x n values of src at stride ld (elements)
// into dst: x < lo becomes lo, then x > hi becomes hi, NaN passing (the
// vector part of Clamp). n is a positive multiple of 8, rows >= 1; dst may
// be src. Requires AVX2.
//
//go:noescape
func clampRowsAVX2(dst, src *float32, rows, n, ld int, lo, hi float32)

// clampRowsAVX512 is clampRowsAVX2 with n a multiple of 16. Requires
// AVX512F.
//
//go:noescape
func clampRowsAVX512(dst, src *float32, rows, n, ld int, lo, hi float32)

var (
	clampAVX2   = clampReg.add("avx2", hasAVX2, &clampImpl{lanes: 8, rows: clampRowsAVX2})
	clampAVX512 = clampReg.add("avx512", hasAVX512, &clampImpl{lanes: 16, rows: clampRowsAVX512})
)

type gemmAsmFunc func(m, n, k int, a *float32, lda int, b *float32, c *float32, ldc int, bias *float32, res *float32, ldres int, flags int)

// asmRows adapts an assembly kernel to gemmImpl.rows; Gemm has checked
// every length.
// The epilogue is passed by value so that it does not escape: Session.Run
// allocates nothing.
func asmRows(f gemmAsmFunc) func(m, n, k int, a []float32, lda int, b []float32, c []float32, ldc int, ep Epilogue) {
	return func(m, n, k int, a []float32, lda int, b []float32, c []float32, ldc int, ep Epilogue) {
		flags := 0
		if ep.Bias != nil {
			flags |= gemmFlagBias
		}
		if ep.Res != nil {
			flags |= gemmFlagRes
		}
		if ep.Relu {
			flags |= gemmFlagRelu
		}
		f(m, n, k, unsafe.SliceData(a), lda, unsafe.SliceData(b), unsafe.SliceData(c), ldc,
			unsafe.SliceData(ep.Bias), unsafe.SliceData(ep.Res), ep.LdRes, flags)
	}
}

// asmImpl registers an assembly kernel; tile is rows restricted to one
// tile, for callers of the tile contract.
func asmImpl(name string, mr, nr, blockBytes int, f gemmAsmFunc) *gemmImpl {
	rows := asmRows(f)
	return &gemmImpl{
		name: name, mr: mr, nr: nr, rows: rows, blockBytes: blockBytes,
		tile: rows, // rows with m <= MR is one tile
	}
}

// cpuSummary names the CPU and the features the amd64 paths look at.
func cpuSummary() string {
	var have []string
	for _, f := range []struct {
		name string
		id   cpuid.FeatureID
	}{
		{"AVX2", cpuid.AVX2}, {"FMA3", cpuid.FMA3}, {"AVX512F", cpuid.AVX512F}, {"AVX512BW", cpuid.AVX512BW},
		{"AVX512VL", cpuid.AVX512VL}, {"AVX512VNNI", cpuid.AVX512VNNI}, {"AVXVNNI", cpuid.AVXVNNI},
		{"AMXTILE", cpuid.AMXTILE}, {"AMXINT8", cpuid.AMXINT8}, {"AMXBF16", cpuid.AMXBF16},
	} {
		if cpuid.CPU.Supports(f.id) {
			have = append(have, f.name)
		}
	}
	return cpuid.CPU.BrandName + " [" + strings.Join(have, " ") + "]"
}

// l2BlockBytes is the A row block of the GEMMs (gemmImpl.blockBytes):
// half the L2 cache cpuid reports (a panel streams through the other
// half), 512 KiB when it reports none. Chosen on two CPUs
// (BenchmarkGemmBlockBytes): 512 KiB was measured best on the AMD Zen 5
// (1 MiB L2); on the Intel Xeon family 6 model 167 (2 MiB L2) 1 MiB took
// ResNet-50's m49 n512 k4608 layer from 77% to 86% of the FMA peak and
// left the others at 93-97%.
func l2BlockBytes() int {
	if l2 := cpuid.CPU.Cache.L2; l2 > 0 {
		return max(128<<10, l2/2)
	}
	return 512 << 10
}

func hasAVX2() bool   { return cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3) }
func hasAVX512() bool { return cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL) }

var (
	gemmAVX2   = asmImpl("gemmF32_6x16_AVX2FMA", 6, 16, l2BlockBytes(), gemmF32_6x16_AVX2FMA)
	gemmAVX512 = withNarrowGemm(asmImpl("gemmF32_14x32_AVX512", 14, 32, l2BlockBytes(), gemmF32_14x32_AVX512),
		asmImpl("gemmF32_28x16_AVX512", 28, 16, l2BlockBytes(), gemmF32_28x16_AVX512))

	// The amd64 paths, best last. The VNNI paths differ from the path below
	// them only where a VNNI implementation is registered (the int8 GEMM,
	// int8 Winograd and depthwise); CPUs without VNNI run the exact int16
	// int8 kernel (gemm8_amd64.go).
	_ = definePath("avx2", 10, hasAVX2, "avx2", levelGeneric)
	_ = definePath("avxvnni", 15, hasAVXVNNI, "avxvnni", "avx2", levelGeneric)
	_ = definePath("avx512", 20, hasAVX512, "avx512", "avx2", levelGeneric)
	_ = definePath("avx512vnni", 30, hasAVX512VNNI, "avx512vnni", "avx512", "avx2", levelGeneric)

	_ = gemmReg.add("avx2", hasAVX2, gemmAVX2)
	_ = gemmReg.add("avx512", hasAVX512, gemmAVX512)
	_ = maxPoolReg.add("avx2", hasAVX2, maxPoolImpl{maxWindowAVX2, 8})
	_ = maxPoolReg.add("avx512", hasAVX512, maxPoolImpl{maxWindowAVX512, 16})
	_ = epilogueReg.add("avx2", hasAVX2, epilogueImpl{apply: epilogueAVX2, lanes: 8})
	_ = epilogueReg.add("avx512", hasAVX512, epilogueImpl{apply: epilogueAVX512, lanes: 16})
	_ = maxPool8Reg.add("avx2", hasAVX2, maxPool8Impl{maxWindow8AVX2, 32})
	_ = maxPool8Reg.add("avx512", hasAVX512, maxPool8Impl{maxWindow8AVX512, 64})
	_ = quantReg.add("avx2", hasAVX2, quantImpl{quantizeAVX2, dequantizeAVX2, 32})
	_ = quantReg.add("avx512", hasAVX512, quantImpl{quantizeAVX512, dequantizeAVX512, 64})
	_ = add8Reg.add("avx2", hasAVX2, add8Impl{add8Call(add8AVX2), 32})
	_ = add8Reg.add("avx512", hasAVX512, add8Impl{add8Call(add8AVX512), 64})
)
