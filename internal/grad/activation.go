package grad

import (
	"math"

	"github.com/edge-resnet/edge-resnet/kernels"
)

// ReLU is max(0, x). Its gradient is 1 where x > 0 and 0 elsewhere,
// including x == 0, as PyTorch's.
type ReLU struct {
	// Threads splits Forward and Backward over ranges of values (0 means
	// 1; more costs a goroutine per call on large tensors).
	Threads int

	y []float32 // the output, kept for Backward: y > 0 exactly where x > 0
}

// Forward returns max(0, x), a buffer of the layer's that the next Forward
// overwrites; the shape is unchanged.
func (r *ReLU) Forward(x []float32, s Shape) []float32 {
	if len(x) != s.Size() {
		panic("grad: ReLU input does not match its shape")
	}
	r.y = ensure32(r.y, len(x))
	if t := elementThreads(r.Threads, len(x)); t > 1 {
		parallel(t, len(x), func(i0, i1 int) { reluForward(r.y[i0:i1], x[i0:i1]) })
	} else {
		reluForward(r.y, x)
	}
	return r.y
}

// reluForward sets y to max(0, x), NaN propagating (as in PyTorch) and
// -0 becoming +0. It selects on the bits, which the compiler turns into a
// conditional move: the sign of activations is random, and a branch on it
// mispredicted half the time.
func reluForward(y, x []float32) {
	y = y[:len(x)]
	for i, v := range x {
		b := math.Float32bits(v)
		if v <= 0 { // false for NaN
			b = 0
		}
		y[i] = math.Float32frombits(b)
	}
}

// reluBackward zeroes dy where y is not positive (y <= 0 or NaN), on
// set's vector mask.
func reluBackward(set *kernels.Set, dy, y []float32) {
	set.ReLUMask(dy, y[:len(dy)])
}

// Backward zeroes dy in place where the input was not positive and returns
// it as dx.
func (r *ReLU) Backward(dy []float32) []float32 {
	if len(dy) != len(r.y) {
		panic("grad: ReLU.Backward: dy does not match the last Forward")
	}
	if t := elementThreads(r.Threads, len(dy)); t > 1 {
		parallel(t, len(dy), func(i0, i1 int) { reluBackward(kernels.Best(), dy[i0:i1], r.y[i0:i1]) })
	} else {
		reluBackward(kernels.Best(), dy, r.y)
	}
	return dy
}

// ReLU6 is min(max(0, x), 6), the Clip 0..6 of the inference graph. Its
// gradient is 1 only strictly inside, where 0 < x < 6, and 0 at and
// beyond both bounds, as PyTorch's hardtanh.
type ReLU6 struct {
	y []float32 // the output: 0 < y < 6 exactly where 0 < x < 6
}

// Forward returns min(max(0, x), 6), a buffer of the layer's that the next
// Forward overwrites; the shape is unchanged.
func (r *ReLU6) Forward(x []float32, s Shape) []float32 {
	if len(x) != s.Size() {
		panic("grad: ReLU6 input does not match its shape")
	}
	r.y = ensure32(r.y, len(x))
	for i, v := range x {
		switch {
		case v != v: // NaN propagates, as in PyTorch
			r.y[i] = v
		case v >= 6:
			r.y[i] = 6
		case v > 0:
			r.y[i] = v
		default:
			r.y[i] = 0
		}
	}
	return r.y
}

// Backward zeroes dy in place outside 0 < x < 6 and returns it as dx.
func (r *ReLU6) Backward(dy []float32) []float32 {
	if len(dy) != len(r.y) {
		panic("grad: ReLU6.Backward: dy does not match the last Forward")
	}
	for i, v := range r.y {
		if !(v > 0 && v < 6) {
			dy[i] = 0
		}
	}
	return dy
}
