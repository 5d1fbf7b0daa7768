// Package quant is the int8 arithmetic of edge-resnet that does not run
// per inference: symmetric per-channel weight quantization, activation
// observers (histograms collected over calibration inputs), the choice of
// a calibration range by one of several methods, and the mapping of a
// range to a uint8 scale and zero point.
//
// Conventions: a quantized weight q in [-127, 127] (or a narrower
// symmetric range, see WeightsBits) stands for q*scale; a
// quantized activation q in [0, 255] stands for scale*(q - zero).
package quant

import (
	"fmt"
	"math"
)

// Weights quantizes w, whose output channel is i%out (HWIO conv weights and
// [In][Out] dense weights both have this layout), symmetrically per output
// channel: scale[o] = max|w[.., o]|/127 and q = round-half-even(w/scale),
// in [-127, 127]. An all-zero (or non-finite-free empty) channel gets
// scale 1 so that every scale stays positive.
func Weights(w []float32, out int) (q []int8, scale []float32) {
	return WeightsBits(w, out, 8)
}

// WeightsBits is Weights with bits-bit weights (2 <= bits <= 8): q in
// [-qmax, qmax], qmax = 2^(bits-1) - 1, scale[o] = max|w[.., o]|/qmax.
// 7-bit weights ([-63, 63]) let x86 CPUs without VNNI use VPMADDUBSW,
// whose int16 pair sums cannot saturate then (see kernels.NarrowLo).
func WeightsBits(w []float32, out, bits int) (q []int8, scale []float32) {
	if out < 1 || len(w)%out != 0 || bits < 2 || bits > 8 {
		panic(fmt.Sprintf("quant.Weights: %d weights for %d output channels, %d bits", len(w), out, bits))
	}
	qmax := float64(int(1)<<(bits-1) - 1)
	amax := make([]float64, out)
	for i, v := range w {
		amax[i%out] = max(amax[i%out], math.Abs(float64(v)))
	}
	scale = make([]float32, out)
	for o, a := range amax {
		s := float32(a / qmax)
		if !(s > 0) || math.IsInf(float64(s), 0) {
			s = 1
		}
		scale[o] = s
	}
	q = make([]int8, len(w))
	for i, v := range w {
		r := math.RoundToEven(float64(v) / float64(scale[i%out]))
		q[i] = int8(min(max(r, -qmax), qmax))
	}
	return q, scale
}

// Params maps a calibration range to a uint8 scale and zero point. The
// range is first widened to contain 0 (so that real zero, the padding and
// ReLU floor, is exact); a range that starts at 0 gets zero point 0. An
// empty or degenerate range gets scale 1.
func Params(lo, hi float64) (scale float32, zero int32) {
	lo, hi = min(lo, 0), max(hi, 0)
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return 1, 0
	}
	s := float32((hi - lo) / 255)
	if !(s > 0) || math.IsInf(float64(s), 0) {
		return 1, 0
	}
	if lo == 0 {
		return s, 0
	}
	z := math.RoundToEven(-lo / float64(s))
	return s, int32(min(max(z, 0), 255))
}
