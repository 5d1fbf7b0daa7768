//go:build gc && !purego

package kernels

// The depthwise kernels of kernels/depthwise_amd64.s (asm/amd64/depthwise.go,
// depthwise8.go): dwWindowKernel and dwRowKernel (see depthwise.go) on
// 8-lane (AVX2, FMA3) and 16-lane (AVX512F) channel vectors, one
// VFMADD231PS per tap in the order of the Go code, so bit-identical with
// it; and the int8 dw8RowKernel (depthwise8.go), exact. Strides are in
// elements; the Go side has checked every bound.

// dwWindowAVX2 is dwWindowKernel with n a multiple of 8. Requires AVX2, FMA3.
//
//go:noescape
func dwWindowAVX2(dst, src, w, bias, res *float32, n, kh, kw, srcRow, srcTap, wRow, wTap, flags int, lo, hi float32)

// dwWindowAVX512 is dwWindowKernel with n a multiple of 16. Requires AVX512F.
//
//go:noescape
func dwWindowAVX512(dst, src, w, bias, res *float32, n, kh, kw, srcRow, srcTap, wRow, wTap, flags int, lo, hi float32)

// dw3x3s1AVX2 is dwRowKernel for stride 1, n a multiple of 8 (six outputs
// per chunk). Requires AVX2, FMA3.
//
//go:noescape
func dw3x3s1AVX2(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// dw3x3s2AVX2 is dwRowKernel for stride 2, n a multiple of 8. Requires
// AVX2, FMA3.
//
//go:noescape
func dw3x3s2AVX2(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// dw3x3s1AVX512 is dwRowKernel for stride 1, n a multiple of 16 (eight
// outputs per chunk). Requires AVX512F.
//
//go:noescape
func dw3x3s1AVX512(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// dw3x3s2AVX512 is dwRowKernel for stride 2, n a multiple of 16. Requires
// AVX512F.
//
//go:noescape
func dw3x3s2AVX512(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// dw8s1AVX512 is dw8RowKernel for stride 1, n a multiple of 16 (VPMADDWD
// and VPADDD per tap, eight outputs per chunk). Requires AVX512F, AVX512BW.
//
//go:noescape
func dw8s1AVX512(dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8, n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32)

// dw8s2AVX512 is dw8RowKernel for stride 2, n a multiple of 16. Requires
// AVX512F, AVX512BW.
//
//go:noescape
func dw8s2AVX512(dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8, n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32)

// dw8s1AVX512VNNI is dw8s1AVX512 with VPDPWSSD per tap. Requires AVX512F,
// AVX512BW, AVX512VNNI.
//
//go:noescape
func dw8s1AVX512VNNI(dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8, n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32)

// dw8s2AVX512VNNI is dw8s2AVX512 with VPDPWSSD per tap. Requires AVX512F,
// AVX512BW, AVX512VNNI.
//
//go:noescape
func dw8s2AVX512VNNI(dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8, n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32)

// dw8s1AVX2 is dw8RowKernel for stride 1, n a multiple of 8 (four outputs
// per chunk). Requires AVX2.
//
//go:noescape
func dw8s1AVX2(dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8, n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32)

// dw8s2AVX2 is dw8RowKernel for stride 2, n a multiple of 8. Requires AVX2.
//
//go:noescape
func dw8s2AVX2(dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8, n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32)

const (
	dw8S1AVX2 dw8Kind = 1 + iota
	dw8S2AVX2
	dw8S1AVX512
	dw8S2AVX512
	dw8S1AVX512VNNI
	dw8S2AVX512VNNI
)

var (
	depthwiseAVX2 = &depthwiseImpl{name: "avx2", lanes: 8, window: dwWindowAVX2,
		row3x3: [3]dwRowKernel{1: dw3x3s1AVX2, 2: dw3x3s2AVX2},
		row8:   [3]dw8Kind{1: dw8S1AVX2, 2: dw8S2AVX2}, lanes8: 8}
	depthwiseAVX512 = &depthwiseImpl{name: "avx512", lanes: 16, window: dwWindowAVX512,
		row3x3: [3]dwRowKernel{1: dw3x3s1AVX512, 2: dw3x3s2AVX512},
		row8:   [3]dw8Kind{1: dw8S1AVX512, 2: dw8S2AVX512}, lanes8: 16, tail: avx2Tail()}
	depthwiseAVX512VNNI = &depthwiseImpl{name: "avx512vnni", lanes: 16, window: dwWindowAVX512,
		row3x3: [3]dwRowKernel{1: dw3x3s1AVX512, 2: dw3x3s2AVX512},
		row8:   [3]dw8Kind{1: dw8S1AVX512VNNI, 2: dw8S2AVX512VNNI}, lanes8: 16, tail: avx2Tail()}

	_ = depthwiseReg.add("avx2", hasAVX2, depthwiseAVX2)
	_ = depthwiseReg.add("avx512", hasAVX512, depthwiseAVX512)
	_ = depthwiseReg.add("avx512vnni", hasAVX512VNNI, depthwiseAVX512VNNI)
)

// avx2Tail is the tail of the 16-lane implementations: the AVX2 kernels
// take 8 of the C % 16 channels they leave (fp32 and int8), bit-identical
// like every path (AVX-512 CPUs have AVX2 and FMA3; a VM that shows
// AVX-512 but hides them gets no tail).
func avx2Tail() *depthwiseImpl {
	if !hasAVX2() {
		return nil
	}
	return depthwiseAVX2
}

// dw8Row runs the int8 row kernel k (see dw8Kind).
func dw8Row(k dw8Kind, dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8,
	n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32) {
	switch k {
	case dw8S1AVX2:
		dw8s1AVX2(dst, src, w, bias, scale, res, n, rows, npix, c, srcRow, wTap, flags, zeroA, zeroOut, lo, hi, resZero, resScale)
	case dw8S2AVX2:
		dw8s2AVX2(dst, src, w, bias, scale, res, n, rows, npix, c, srcRow, wTap, flags, zeroA, zeroOut, lo, hi, resZero, resScale)
	case dw8S1AVX512:
		dw8s1AVX512(dst, src, w, bias, scale, res, n, rows, npix, c, srcRow, wTap, flags, zeroA, zeroOut, lo, hi, resZero, resScale)
	case dw8S2AVX512:
		dw8s2AVX512(dst, src, w, bias, scale, res, n, rows, npix, c, srcRow, wTap, flags, zeroA, zeroOut, lo, hi, resZero, resScale)
	case dw8S1AVX512VNNI:
		dw8s1AVX512VNNI(dst, src, w, bias, scale, res, n, rows, npix, c, srcRow, wTap, flags, zeroA, zeroOut, lo, hi, resZero, resScale)
	case dw8S2AVX512VNNI:
		dw8s2AVX512VNNI(dst, src, w, bias, scale, res, n, rows, npix, c, srcRow, wTap, flags, zeroA, zeroOut, lo, hi, resZero, resScale)
	default:
		panic("kernels: no int8 depthwise kernel")
	}
}
