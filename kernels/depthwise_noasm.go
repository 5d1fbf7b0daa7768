//go:build purego || !gc || !(amd64 || arm64)

package kernels

// dw8Row: builds without assembly have no int8 depthwise kernel.
func dw8Row(k dw8Kind, dst, src *uint8, w *int8, bias *int32, scale *float32, res *uint8,
	n, rows, npix, c, srcRow, wTap, flags int, zeroA, zeroOut, lo, hi, resZero int32, resScale float32) {
	panic("kernels: no int8 depthwise kernel")
}
