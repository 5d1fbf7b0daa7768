//go:build gc && !purego

package kernels

// NEON twins of the 1-D Winograd transforms (winograd_arm64.s, generated
// by asm/arm64/wino.go): the contract of the amd64 ones with n a positive
// multiple of 4 (8 channels a step, then 4), the same operations with the
// same multiply-adds fused, so they give the AVX2 kernels' bits. ASIMD is
// part of every ARMv8-A CPU.

//go:noescape
func winoIn4NEON(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoOut2NEON(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoIn6NEON(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoOut4NEON(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoIn8NEON(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

//go:noescape
func winoOut6NEON(dst *float32, ds int, src *float32, ss int, n int, reps, dstep, sstep int)

// epilogueNEON sets v[i] = relu?(v[i] + bias[i] + res[i]) for i < n, as
// epilogueGo (ReLU keeps NaN and -0), adding bias if flags&gemmFlagBias,
// res if flags&gemmFlagRes, ReLU if flags&gemmFlagRelu; n a positive
// multiple of 4.
//
//go:noescape
func epilogueNEON(v, bias, res *float32, n, flags int)

// epilogueRowsNEON is epilogueNEON on rows >= 1 runs of n values at
// v + r*ld and res + r*ld (ld in elements), with the same bias for each.
//
//go:noescape
func epilogueRowsNEON(v, bias, res *float32, n, rows, ld, flags int)

// winoNEON runs the multiple-of-4 channels in NEON and the rest (at most
// 3) in the Go twins.
var winoNEON = &winoImpl{name: "neon", xf: map[int][2]winoFunc{
	2: {winoLanes(4, 4, 4, winoIn4NEON, winoReps(winoIn4)), winoLanes(2, 4, 4, winoOut2NEON, winoReps(winoOut2))},
	4: {winoLanes(6, 6, 4, winoIn6NEON, winoReps(winoIn6)), winoLanes(4, 6, 4, winoOut4NEON, winoReps(winoOut4))},
	6: {winoLanes(8, 8, 4, winoIn8NEON, winoReps(winoIn8)), winoLanes(6, 8, 4, winoOut6NEON, winoReps(winoOut6))},
}}

var (
	_ = winoReg.add("neon", hasASIMD, winoNEON)
	_ = epilogueReg.add("neon", hasASIMD, epilogueImpl{apply: epilogueNEON, lanes: 4, rows: epilogueRowsNEON})
)
