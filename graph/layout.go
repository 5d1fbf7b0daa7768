package graph

import "math"

// BatchNorm turns BatchNorm parameters into a per-channel affine map, in
// float64: scale = gamma/sqrt(var+eps), shift = beta - mean*scale.
func BatchNorm(gamma, beta, mean, variance []float32, eps float64) *Affine {
	a := &Affine{Scale: make([]float32, len(gamma)), Shift: make([]float32, len(gamma))}
	for i := range gamma {
		s := float64(gamma[i]) / math.Sqrt(float64(variance[i])+eps)
		a.Scale[i] = float32(s)
		a.Shift[i] = float32(float64(beta[i]) - float64(mean[i])*s)
	}
	return a
}

// OIHWToHWIO reorders PyTorch/ONNX conv weights to the graph's layout.
func OIHWToHWIO(w []float32, o, i, kh, kw int) []float32 {
	out := make([]float32, len(w))
	for a := 0; a < o; a++ {
		for b := 0; b < i; b++ {
			for y := 0; y < kh; y++ {
				for x := 0; x < kw; x++ {
					out[((y*kw+x)*i+b)*o+a] = w[((a*i+b)*kh+y)*kw+x]
				}
			}
		}
	}
	return out
}
