package grad

import (
	"math"
	"testing"
)

// activation is the common face of ReLU and ReLU6.
type activation interface {
	Forward(x []float32, s Shape) []float32
	Backward(dy []float32) []float32
}

// fdAwayFrom returns values in [-2, 8) at least 0.05 from each of the
// kinks, so that a finite-difference step of 0.01 never crosses one.
func fdAwayFrom(seed uint64, n int, kinks ...float32) []float32 {
	x := fdRandom(seed, n, -2, 8)
	for i, v := range x {
		for _, k := range kinks {
			if d := v - k; d > -0.05 && d < 0.05 {
				x[i] = k + 0.1
			}
		}
	}
	return x
}

func TestActivationGradient(t *testing.T) {
	cases := []struct {
		name string
		a    activation
		s    Shape
	}{
		{"relu", &ReLU{}, Shape{2, 3, 3, 5}},
		{"relu6", &ReLU6{}, Shape{3, 2, 3, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := fdAwayFrom(1, tc.s.Size(), 0, 6)
			r := fdRandom(2, tc.s.Size(), -1, 1)
			tc.a.Forward(x, tc.s)
			dy := append([]float32(nil), r...)
			dx := tc.a.Backward(dy)
			if &dx[0] != &dy[0] {
				t.Error("Backward did not work in place on dy")
			}
			num := numericGrad(x, 1e-2, func() float64 { return dotLoss(r, tc.a.Forward(x, tc.s)) })
			fdCompare(t, "dx", dx, num, 1e-4, 1e-3)
		})
	}
}

// TestActivationBounds checks outputs and gradients at and around the
// bounds: PyTorch's ReLU has gradient 0 at x = 0, its hardtanh (ReLU6)
// gradient 1 only strictly inside (0, 6); NaN propagates forward.
func TestActivationBounds(t *testing.T) {
	nan := float32(math.NaN())
	x := []float32{-1, 0, 1e-7, 3, 6 - 1e-6, 6, 7, nan}
	cases := []struct {
		name  string
		a     activation
		y, dx []float32
	}{
		{"relu", &ReLU{}, []float32{0, 0, 1e-7, 3, 6 - 1e-6, 6, 7, nan}, []float32{0, 0, 1, 1, 1, 1, 1, 0}},
		{"relu6", &ReLU6{}, []float32{0, 0, 1e-7, 3, 6 - 1e-6, 6, 6, nan}, []float32{0, 0, 1, 1, 1, 0, 0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := Shape{1, 1, 1, len(x)}
			y := tc.a.Forward(x, s)
			for i := range x {
				same := y[i] == tc.y[i] || (y[i] != y[i] && tc.y[i] != tc.y[i])
				if !same {
					t.Errorf("y(%v) = %v, want %v", x[i], y[i], tc.y[i])
				}
			}
			dy := []float32{1, 1, 1, 1, 1, 1, 1, 1}
			dx := tc.a.Backward(dy)
			for i := range x {
				if dx[i] != tc.dx[i] {
					t.Errorf("dx at x = %v: %v, want %v", x[i], dx[i], tc.dx[i])
				}
			}
		})
	}
}

func TestActivationRepeatableNoAlloc(t *testing.T) {
	s := Shape{2, 4, 4, 8}
	x := fdRandom(3, s.Size(), -3, 9)
	dy := fdRandom(4, s.Size(), -1, 1)
	for name, a := range map[string]activation{"relu": &ReLU{}, "relu6": &ReLU6{}} {
		y1 := append([]float32(nil), a.Forward(x, s)...)
		dx1 := append([]float32(nil), a.Backward(append([]float32(nil), dy...))...)
		fdSameBits(t, name+" y rerun", a.Forward(x, s), y1)
		fdSameBits(t, name+" dx rerun", a.Backward(append([]float32(nil), dy...)), dx1)
		if n := testing.AllocsPerRun(10, func() { a.Forward(x, s); a.Backward(dy) }); n != 0 {
			t.Errorf("%s: Forward+Backward allocate %v times per run", name, n)
		}
	}
}
