//go:build gc && !purego

package kernels

// The int8 depthwise kernels of kernels/depthwise8_arm64.s
// (asm/arm64/depthwise8.go): dw8RowKernel (depthwise8.go) on NEON, 8
// channels at a time as int16 lanes: USUBL (input minus the zero point),
// SXTL (weights), SMLAL/SMLAL2 into int32 accumulators, exact; then the
// float32 steps of Requantize one instruction each, in its order, so the
// outputs are bit-identical with the Go code's. ASIMD is part of every
// ARMv8-A CPU.

// dw8s1NEON is dw8RowKernel for stride 1, n a multiple of 8 (eight
// outputs per chunk), with dw8FlagClamp. Requires ASIMD.
//
//go:noescape
func dw8s1NEON(dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8, n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32)

// dw8s2NEON is dw8RowKernel for stride 2, n a multiple of 8, with
// dw8FlagClamp. Requires ASIMD.
//
//go:noescape
func dw8s2NEON(dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8, n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32)

const (
	dw8S1NEON dw8Kind = 1 + iota
	dw8S2NEON
)

// dw8FlagClamp asks the NEON kernels for Requantize's clamp of t to
// ±65536 before rounding. Without it they rely on the saturation of
// FCVTNS and SQADD, which ends in the same byte unless the zero point is
// below 255-65536 or above 65536 (then t beyond ±65536 could land
// elsewhere in [lo, hi]).
const dw8FlagClamp = 16

// dw8Row runs the int8 row kernel k (see dw8Kind).
func dw8Row(k dw8Kind, dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8,
	n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32) {
	if zeroOut < 255-65536 || zeroOut > 65536 {
		flags |= dw8FlagClamp
	}
	switch k {
	case dw8S1NEON:
		dw8s1NEON(dst, src, w, bias, scale, res, n, rows, npix, c, srcRow, wTap, flags, zeroA, zeroOut, lo, hi, resZero, resScale)
	case dw8S2NEON:
		dw8s2NEON(dst, src, w, bias, scale, res, n, rows, npix, c, srcRow, wTap, flags, zeroA, zeroOut, lo, hi, resZero, resScale)
	default:
		panic("kernels: no int8 depthwise kernel")
	}
}
