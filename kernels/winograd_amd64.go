//go:build gc && !purego

package kernels

import "github.com/klauspost/cpuid/v2"

// AVX2+FMA twins of the 1-D Winograd transforms (winograd_amd64.s), used
// by the paths that imply those features.

//go:noescape
func winoIn4AVX2(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoOut2AVX2(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoIn6AVX2(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoOut4AVX2(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoIn8AVX2(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoOut6AVX2(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

// winoVec wraps an asm transform of rows x cols: it checks the last vector
// of each side of the last rep once, runs the multiple-of-8 channels of
// every rep in asm and the rest in the Go twin.
func winoVec(rows, cols int, asm func(*float32, int, *float32, int, int, int, int, int), twin winoFunc1) winoFunc {
	return func(dst []float32, ds int, src []float32, ss, n, reps, dstep, sstep int) {
		if reps <= 0 {
			return
		}
		n8 := n &^ 7
		if n8 > 0 {
			_ = src[(reps-1)*sstep+(cols-1)*ss+n8-1]
			_ = dst[(reps-1)*dstep+(rows-1)*ds+n8-1]
			asm(&dst[0], ds, &src[0], ss, n8, reps, dstep, sstep)
		}
		for r := 0; n8 < n && r < reps; r++ {
			twin(dst[r*dstep+n8:], ds, src[r*sstep+n8:], ss, n-n8)
		}
	}
}

var winoAVX2 = &winoImpl{name: "avx2", xf: map[int][2]winoFunc{
	2: {winoVec(4, 4, winoIn4AVX2, winoIn4), winoVec(2, 4, winoOut2AVX2, winoOut2)},
	4: {winoVec(6, 6, winoIn6AVX2, winoIn6), winoVec(4, 6, winoOut4AVX2, winoOut4)},
	6: {winoVec(8, 8, winoIn8AVX2, winoIn8), winoVec(6, 8, winoOut6AVX2, winoOut6)},
}}

// The AVX-512 paths use these too: every path above avx2 has AVX2+FMA.
var _ = winoReg.add("avx2", func() bool { return cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3) }, winoAVX2)
