//go:build gc && !purego

package kernels

// The grouped convolution kernels of kernels/groupconv_amd64.s
// (asm/amd64/groupconv.go): gcRowKernel and gcTileKernel (see
// groupconv.go) on 8-lane (AVX2, FMA3) and 16-lane (AVX512F) vectors of
// output channels, one VFMADD231PS per tap and input channel in the order
// of the Go code, so bit-identical with it. Strides are in elements; the Go
// side has checked every bound.

// gcPerm1s1AVX2 is gcRowKernel for 1 channel per group and stride 1,
// n a multiple of 8 (no permutation, 12 outputs per chunk). Requires AVX2, FMA3.
//
//go:noescape
func gcPerm1s1AVX2(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm1s2AVX2 is gcRowKernel for 1 channel per group and stride 2,
// n a multiple of 8 (no permutation, 12 outputs per chunk). Requires AVX2, FMA3.
//
//go:noescape
func gcPerm1s2AVX2(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm2s1AVX2 is gcRowKernel for 2 channels per group and stride 1,
// n a multiple of 8 (VPERMILPS, 12 outputs per chunk). Requires AVX2, FMA3.
//
//go:noescape
func gcPerm2s1AVX2(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm2s2AVX2 is gcRowKernel for 2 channels per group and stride 2,
// n a multiple of 8 (VPERMILPS, 12 outputs per chunk). Requires AVX2, FMA3.
//
//go:noescape
func gcPerm2s2AVX2(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm4s1AVX2 is gcRowKernel for 4 channels per group and stride 1,
// n a multiple of 8 (VPERMILPS, 12 outputs per chunk). Requires AVX2, FMA3.
//
//go:noescape
func gcPerm4s1AVX2(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm4s2AVX2 is gcRowKernel for 4 channels per group and stride 2,
// n a multiple of 8 (VPERMILPS, 12 outputs per chunk). Requires AVX2, FMA3.
//
//go:noescape
func gcPerm4s2AVX2(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcBc1AVX2 is gcTileKernel with 1 8-lane vector per group, npix <= 12.
// Requires AVX2, FMA3.
//
//go:noescape
func gcBc1AVX2(dst, src, w, bias, res *float32, npix, pixStride, kh, kw, srcRow, srcTap, cig, groups, gW, cog, dstPix, nLast, flags int, lo, hi float32)

// gcBc2AVX2 is gcTileKernel with 2 8-lane vectors per group, npix <= 6.
// Requires AVX2, FMA3.
//
//go:noescape
func gcBc2AVX2(dst, src, w, bias, res *float32, npix, pixStride, kh, kw, srcRow, srcTap, cig, groups, gW, cog, dstPix, nLast, flags int, lo, hi float32)

// gcPerm1s1AVX512 is gcRowKernel for 1 channel per group and stride 1,
// n a multiple of 16 (no permutation, 12 outputs per chunk). Requires AVX512F.
//
//go:noescape
func gcPerm1s1AVX512(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm1s2AVX512 is gcRowKernel for 1 channel per group and stride 2,
// n a multiple of 16 (no permutation, 12 outputs per chunk). Requires AVX512F.
//
//go:noescape
func gcPerm1s2AVX512(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm2s1AVX512 is gcRowKernel for 2 channels per group and stride 1,
// n a multiple of 16 (VPERMILPS, 12 outputs per chunk). Requires AVX512F.
//
//go:noescape
func gcPerm2s1AVX512(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm2s2AVX512 is gcRowKernel for 2 channels per group and stride 2,
// n a multiple of 16 (VPERMILPS, 12 outputs per chunk). Requires AVX512F.
//
//go:noescape
func gcPerm2s2AVX512(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm4s1AVX512 is gcRowKernel for 4 channels per group and stride 1,
// n a multiple of 16 (VPERMILPS, 12 outputs per chunk). Requires AVX512F.
//
//go:noescape
func gcPerm4s1AVX512(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm4s2AVX512 is gcRowKernel for 4 channels per group and stride 2,
// n a multiple of 16 (VPERMILPS, 12 outputs per chunk). Requires AVX512F.
//
//go:noescape
func gcPerm4s2AVX512(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm8s1AVX512 is gcRowKernel for 8 channels per group and stride 1,
// n a multiple of 16 (VPERMPS, 12 outputs per chunk). Requires AVX512F.
//
//go:noescape
func gcPerm8s1AVX512(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcPerm8s2AVX512 is gcRowKernel for 8 channels per group and stride 2,
// n a multiple of 16 (VPERMPS, 12 outputs per chunk). Requires AVX512F.
//
//go:noescape
func gcPerm8s2AVX512(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// gcBc1AVX512 is gcTileKernel with 1 16-lane vector per group, npix <= 14.
// Requires AVX512F.
//
//go:noescape
func gcBc1AVX512(dst, src, w, bias, res *float32, npix, pixStride, kh, kw, srcRow, srcTap, cig, groups, gW, cog, dstPix, nLast, flags int, lo, hi float32)

// gcBc2AVX512 is gcTileKernel with 2 16-lane vectors per group, npix <= 14.
// Requires AVX512F.
//
//go:noescape
func gcBc2AVX512(dst, src, w, bias, res *float32, npix, pixStride, kh, kw, srcRow, srcTap, cig, groups, gW, cog, dstPix, nLast, flags int, lo, hi float32)

var (
	groupConvAVX2 = &groupConvImpl{name: "avx2", lanes: 8,
		perm: [9][3]gcRowKernel{
			1: {1: gcPerm1s1AVX2, 2: gcPerm1s2AVX2},
			2: {1: gcPerm2s1AVX2, 2: gcPerm2s2AVX2},
			4: {1: gcPerm4s1AVX2, 2: gcPerm4s2AVX2}},
		permP: 12,
		bc:    [3]gcTileKernel{1: gcBc1AVX2, 2: gcBc2AVX2}, bcP: [3]int{1: 12, 2: 6}, maxCog: 48}
	groupConvAVX512 = &groupConvImpl{name: "avx512", lanes: 16,
		perm: [9][3]gcRowKernel{
			1: {1: gcPerm1s1AVX512, 2: gcPerm1s2AVX512},
			2: {1: gcPerm2s1AVX512, 2: gcPerm2s2AVX512},
			4: {1: gcPerm4s1AVX512, 2: gcPerm4s2AVX512},
			8: {1: gcPerm8s1AVX512, 2: gcPerm8s2AVX512}},
		permP: 12,
		bc:    [3]gcTileKernel{1: gcBc1AVX512, 2: gcBc2AVX512}, bcP: [3]int{1: 14, 2: 14}, maxCog: 128}

	_ = groupConvReg.add("avx2", hasAVX2, groupConvAVX2)
	_ = groupConvReg.add("avx512", hasAVX512, groupConvAVX512)
)
