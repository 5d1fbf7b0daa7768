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

// AVX-512 twins of the same transforms: 16 channels a step.

//go:noescape
func winoIn4AVX512(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoOut2AVX512(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoIn6AVX512(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoOut4AVX512(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoIn8AVX512(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoOut6AVX512(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

// winoVec wraps an asm transform of rows x cols: it checks the last vector
// of each side of the last rep once, runs the multiple-of-8 channels of
// every rep in asm and the rest in the Go twin.
func winoVec(rows, cols int, asm func(*float32, int, *float32, int, int, int, int, int), twin winoFunc1) winoFunc {
	return winoLanes(rows, cols, 8, asm, winoReps(twin))
}

var winoAVX2 = &winoImpl{name: "avx2", xf: map[int][2]winoFunc{
	2: {winoVec(4, 4, winoIn4AVX2, winoIn4), winoVec(2, 4, winoOut2AVX2, winoOut2)},
	4: {winoVec(6, 6, winoIn6AVX2, winoIn6), winoVec(4, 6, winoOut4AVX2, winoOut4)},
	6: {winoVec(8, 8, winoIn8AVX2, winoIn8), winoVec(6, 8, winoOut6AVX2, winoOut6)},
}}

// winoAVX512 runs 16 channels a step in zmm and a remaining 8 in ymm
// (ResNets' channel counts are multiples of 16; a multiple of 8 costs
// one AVX2 step more).
var winoAVX512 = &winoImpl{name: "avx512", xf: map[int][2]winoFunc{
	2: {winoLanes(4, 4, 16, winoIn4AVX512, winoAVX2.xf[2][0]), winoLanes(2, 4, 16, winoOut2AVX512, winoAVX2.xf[2][1])},
	4: {winoLanes(6, 6, 16, winoIn6AVX512, winoAVX2.xf[4][0]), winoLanes(4, 6, 16, winoOut4AVX512, winoAVX2.xf[4][1])},
	6: {winoLanes(8, 8, 16, winoIn8AVX512, winoAVX2.xf[6][0]), winoLanes(6, 8, 16, winoOut6AVX512, winoAVX2.xf[6][1])},
}}

var (
	_ = winoReg.add("avx2", func() bool { return cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3) }, winoAVX2)
	_ = winoReg.add("avx512", hasAVX512, winoAVX512)
)
