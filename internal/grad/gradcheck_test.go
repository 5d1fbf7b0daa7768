package grad

import (
	"math"
	"math/rand/v2"
	"testing"
)

// checkGradients compares analytic gradients with central finite
// differences, for any layer or composition of layers.
//
// wrt are the float32 slices the loss depends on (inputs, weights, biases),
// grad[i] the analytic dL/dwrt[i] (same length). loss recomputes the
// float64 loss from the current contents of wrt (typically a Forward then
// L = Σ r·y with a fixed random r, so that dy = r); it must not change wrt.
// Each checked value v of wrt[i] is set to v+eps and v-eps in turn (then
// restored), and the numerical derivative (L(v+eps) - L(v-eps)) / (2 eps),
// with the float32 perturbations as actually stored, is compared with the
// analytic one: |a - num| <= tol * max(|a|, |num|, floor), floor being
// 1e-2 times the largest |grad[i]| (the gradient's scale), so that values
// near zero are judged against float32 noise rather than themselves. At
// most maxPer values of each slice are checked (evenly spaced, always
// the first and last; maxPer <= 0 checks all).
func checkGradients(t testing.TB, name string, loss func() float64, wrt, grad [][]float32, eps, tol float64, maxPer int) {
	t.Helper()
	if len(wrt) != len(grad) {
		t.Fatalf("%s: %d slices, %d gradients", name, len(wrt), len(grad))
	}
	for i, v := range wrt {
		g := grad[i]
		if len(g) != len(v) {
			t.Fatalf("%s: slice %d has %d values, its gradient %d", name, i, len(v), len(g))
		}
		scale := 0.0
		for _, x := range g {
			scale = max(scale, math.Abs(float64(x)))
		}
		step := 1
		if maxPer > 0 && len(v) > maxPer {
			step = (len(v) + maxPer - 1) / maxPer
		}
		bad := 0
		for j := 0; j < len(v); j += step {
			if j+step >= len(v) {
				j = len(v) - 1
			}
			num := numericalDerivative(loss, v, j, eps)
			a := float64(g[j])
			den := max(math.Abs(a), math.Abs(num), 1e-2*scale, 1e-30)
			if math.Abs(a-num) > tol*den {
				if bad++; bad <= 5 {
					t.Errorf("%s: slice %d [%d]: analytic %.7g, numerical %.7g (scale %.3g)", name, i, j, a, num, scale)
				}
			}
		}
		if bad > 5 {
			t.Errorf("%s: slice %d: %d mismatches in all", name, i, bad)
		}
	}
}

// numericalDerivative is the central difference of loss in v[j].
func numericalDerivative(loss func() float64, v []float32, j int, eps float64) float64 {
	old := v[j]
	hi, lo := float32(float64(old)+eps), float32(float64(old)-eps)
	v[j] = hi
	lp := loss()
	v[j] = lo
	lm := loss()
	v[j] = old
	return (lp - lm) / (float64(hi) - float64(lo))
}

// dotLoss is L = Σ r[i]·y[i] in float64: its gradient in y is r.
func dotLoss(r, y []float32) float64 {
	s := 0.0
	for i, v := range y {
		s += float64(r[i]) * float64(v)
	}
	return s
}

// randSlice is n values uniform in [-1, 1) from rng.
func randSlice(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.Float64()*2 - 1)
	}
	return v
}
