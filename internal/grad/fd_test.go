package grad

import (
	"math"
	"math/rand/v2"
	"testing"
)

// numericGrad returns the central finite-difference gradient of loss with
// respect to every value of x: for each x[i] it evaluates loss at
// float32(x[i]+h) and float32(x[i]-h) and divides the difference by the
// actual (rounded) distance between the two points, then restores x[i].
// loss must read x afresh on every call and return a float64, so that the
// difference is not drowned in float32 rounding.
func numericGrad(x []float32, h float64, loss func() float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		g[i] = numericalDerivative(loss, x, i, h)
	}
	return g
}

// fdRandom returns n values uniform in [lo, hi) from a seeded generator.
func fdRandom(seed uint64, n int, lo, hi float64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return v
}

// fdCompare fails t where an analytic gradient differs from the numeric
// one by more than atol + rtol·|numeric|.
func fdCompare(t *testing.T, what string, analytic []float32, numeric []float64, atol, rtol float64) {
	t.Helper()
	if len(analytic) != len(numeric) {
		t.Fatalf("%s: %d analytic values, %d numeric", what, len(analytic), len(numeric))
	}
	bad := 0
	for i, n := range numeric {
		a := float64(analytic[i])
		if d := math.Abs(a - n); !(d <= atol+rtol*math.Abs(n)) {
			if bad++; bad <= 5 {
				t.Errorf("%s[%d]: analytic %.6g, numeric %.6g (diff %.3g)", what, i, a, n, d)
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d values off", what, bad, len(numeric))
	}
}

// fdSameBits fails t unless a and b are bit-identical.
func fdSameBits(t *testing.T, what string, a, b []float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: lengths %d and %d", what, len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("%s[%d]: %v then %v", what, i, a[i], b[i])
		}
	}
}

// fdDistinct returns n distinct values spaced by step, in a seeded random
// order and centred on zero: inputs for max pooling whose maxima do not
// change under a finite-difference step smaller than step/2.
func fdDistinct(seed uint64, n int, step float64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0xd157))
	v := make([]float32, n)
	for i, p := range rng.Perm(n) {
		v[i] = float32((float64(p) - float64(n)/2) * step)
	}
	return v
}
