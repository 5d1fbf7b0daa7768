//go:build gc && !purego

package kernels

// The grouped convolution kernels of kernels/groupconv_arm64.s
// (asm/arm64/groupconv.go): gcTileKernel (see groupconv.go) on 4-lane
// vectors of output channels for groups of a multiple of 4 output
// channels, one FMLA per tap and input channel in the order of the Go
// code, so bit-identical with it. Strides are in elements; the Go side
// has checked every bound. ASIMD is part of every ARMv8-A CPU.

// gcBc1NEON is gcTileKernel with one 4-lane vector per group (cog = 4,
// nLast = 4), npix <= 12. Requires ASIMD.
//
//go:noescape
func gcBc1NEON(dst, src, w, bias, res *float32, npix, pixStride, kh, kw, srcRow, srcTap, cig, groups, gW, cog, dstPix, nLast, flags int, lo, hi float32)

// gcBc2NEON is gcTileKernel with two 4-lane vectors per group (nLast = 4),
// npix <= 6. Requires ASIMD.
//
//go:noescape
func gcBc2NEON(dst, src, w, bias, res *float32, npix, pixStride, kh, kw, srcRow, srcTap, cig, groups, gW, cog, dstPix, nLast, flags int, lo, hi float32)

// groupConvNEON: no permute-family kernels (FMLA by element reads a lane
// of the input vector directly, so one group per vector is as good), and
// maxCog is an estimate from instruction counts (GroupConvGemm's panels
// are 16 wide), not a measurement.
var groupConvNEON = groupConvReg.add("neon", hasASIMD, &groupConvImpl{name: "neon", lanes: 4,
	bc: [3]gcTileKernel{1: gcBc1NEON, 2: gcBc2NEON}, bcP: [3]int{1: 12, 2: 6}, bcFull: true, maxCog: 32})
