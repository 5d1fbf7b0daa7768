//go:build gc && !purego

package kernels

// The depthwise kernels of kernels/depthwise_arm64.s
// (asm/arm64/depthwise.go): dwWindowKernel and dwRowKernel (see
// depthwise.go) on 4-lane channel vectors, one FMLA per tap in the order
// of the Go code and the clamp by FCMGT + BIT, so bit-identical with it.
// Strides are in elements; the Go side has checked every bound. ASIMD is
// part of every ARMv8-A CPU.

// dwWindowNEON is dwWindowKernel with n a multiple of 4. Requires ASIMD.
//
//go:noescape
func dwWindowNEON(dst, src, w, bias, res *float32, n, kh, kw, srcRow, srcTap, wRow, wTap, flags int, lo, hi float32)

// dw3x3s1NEON is dwRowKernel for stride 1, n a multiple of 4 (eight outputs
// per chunk). Requires ASIMD.
//
//go:noescape
func dw3x3s1NEON(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

// dw3x3s2NEON is dwRowKernel for stride 2, n a multiple of 4. Requires
// ASIMD.
//
//go:noescape
func dw3x3s2NEON(dst, src, w, bias, res *float32, n, rows, npix, c, srcRow, flags int, lo, hi float32)

var depthwiseNEON = depthwiseReg.add("neon", hasASIMD, &depthwiseImpl{name: "neon", lanes: 4, window: dwWindowNEON,
	row3x3: [3]dwRowKernel{1: dw3x3s1NEON, 2: dw3x3s2NEON},
	row8:   [3]dw8Kind{1: dw8S1NEON, 2: dw8S2NEON}, lanes8: 8}) // int8: depthwise8_arm64.go
