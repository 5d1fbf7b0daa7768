//go:build gc && !purego

package kernels

// The BatchNorm training passes of batchnorm_amd64.s (asm/amd64's
// batchnorm.go): the contracts of batchNormImpl's fields, k a multiple of
// 4 (AVX2: float64 ymm) or 8 (AVX-512: float64 zmm) and pixels >= 1.

//go:noescape
func channelMomentsAVX2(x *float32, pixels, k, ld int, sum, sumSq *float64)

//go:noescape
func batchNormApplyAVX2(x, y *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int)

//go:noescape
func batchNormGradSumsAVX2(dy, x *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int, sumDy, sumDyH *float64)

//go:noescape
func batchNormGradInputAVX2(dy, x, dx *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int, mdy, mdyh, scale *float64)

//go:noescape
func channelMomentsAVX512(x *float32, pixels, k, ld int, sum, sumSq *float64)

//go:noescape
func batchNormApplyAVX512(x, y *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int)

//go:noescape
func batchNormGradSumsAVX512(dy, x *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int, sumDy, sumDyH *float64)

//go:noescape
func batchNormGradInputAVX512(dy, x, dx *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int, mdy, mdyh, scale *float64)

//go:noescape
func reluMaskAVX2(dy, y *float32, n int)

//go:noescape
func reluMaskAVX512(dy, y *float32, n int)

var (
	_ = reluMaskReg.add("avx2", hasAVX2, &reluMaskImpl{lanes: 8, mask: reluMaskAVX2})
	_ = reluMaskReg.add("avx512", hasAVX512, &reluMaskImpl{lanes: 16, mask: reluMaskAVX512})
	_ = batchNormReg.add("avx2", hasAVX2, &batchNormImpl{lanes: 4, moments: channelMomentsAVX2,
		apply: batchNormApplyAVX2, gradSums: batchNormGradSumsAVX2, gradInput: batchNormGradInputAVX2})
	_ = batchNormReg.add("avx512", hasAVX512, &batchNormImpl{lanes: 8, moments: channelMomentsAVX512,
		apply: batchNormApplyAVX512, gradSums: batchNormGradSumsAVX512, gradInput: batchNormGradInputAVX512})
)
