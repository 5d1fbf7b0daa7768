package grad

import "github.com/edge-resnet/edge-resnet/kernels"

// AddReLU is a residual block's merge and activation, y = max(a + b, 0),
// in one pass on the kernels' epilogue (negative sums to 0; NaN and -0
// kept, as the inference engine's fused ReLU), written over a: y is a's
// storage. Its Backward zeroes dy in place where y is not positive and
// returns it as the gradient of both inputs: the same slice, so neither
// consumer may change it in place.
type AddReLU struct {
	// Threads splits Forward and Backward over ranges of values (0 means
	// 1; more costs a goroutine per call on large tensors).
	Threads int
	Set     *kernels.Set // nil means kernels.Best()

	y []float32
}

// set returns the kernels the layer runs on.
func (l *AddReLU) set() *kernels.Set {
	if l.Set != nil {
		return l.Set
	}
	return kernels.Best()
}

// Forward sets a to max(a + b, 0) (both of shape s) and returns it.
func (l *AddReLU) Forward(a, b []float32, s Shape) []float32 {
	if len(a) != s.Size() || len(b) != s.Size() {
		panic("grad: AddReLU inputs do not match their shape")
	}
	set := l.set()
	l.y = a
	if t := elementThreads(l.Threads, len(a)); t > 1 {
		parallel(t, len(a), func(i0, i1 int) { set.AddInPlace(a[i0:i1], b[i0:i1], true) })
	} else {
		set.AddInPlace(a, b, true)
	}
	return a
}

// Backward zeroes dy in place where the output was not positive and
// returns it as the gradient of a and of b.
func (l *AddReLU) Backward(dy []float32) (da, db []float32) {
	if len(dy) != len(l.y) {
		panic("grad: AddReLU.Backward: dy does not match the last Forward")
	}
	if t := elementThreads(l.Threads, len(dy)); t > 1 {
		parallel(t, len(dy), func(i0, i1 int) { reluBackward(l.set(), dy[i0:i1], l.y[i0:i1]) })
	} else {
		reluBackward(l.set(), dy, l.y)
	}
	return dy, dy
}

// AddTo adds src to dst element by element: the gradient of a tensor that
// feeds two layers (a residual block's input) is the sum of theirs.
func AddTo(dst, src []float32) { AddToThreads(dst, src, 1) }

// AddToThreads is AddTo split over ranges of values on threads, on the
// best kernels' epilogue (an exact float32 sum, as Go's).
func AddToThreads(dst, src []float32, threads int) {
	if len(dst) != len(src) {
		panic("grad: AddTo of different lengths")
	}
	set := kernels.Best()
	if t := elementThreads(threads, len(dst)); t > 1 {
		parallel(t, len(dst), func(i0, i1 int) { set.AddInPlace(dst[i0:i1], src[i0:i1], false) })
	} else {
		set.AddInPlace(dst, src, false)
	}
}

// ShortcutA is the parameter-free "option A" shortcut of He et al.'s CIFAR
// ResNets: keep every Stride-th row and column (x[:, ::2, ::2, :] for the
// default 2), then pad the channels with zeros from Cin to Cout,
// (Cout-Cin)/2 before and the rest after, as the common CIFAR ResNet code's
// F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes//4, planes//4)). With
// PadEnd every zero channel comes after the kept ones (TensorFlow-style
// tf.pad code, resnet.ShortcutAEnd).
type ShortcutA struct {
	Cout, Stride int
	PadEnd       bool

	in, outS Shape
	y, dx    []float32
}

// NewShortcutA returns the option-A shortcut to cout channels with stride 2.
func NewShortcutA(cout int) *ShortcutA { return &ShortcutA{Cout: cout, Stride: 2} }

// OutShape is the output shape for input shape s: H and W become
// ceil(H/Stride) and ceil(W/Stride), C becomes Cout.
func (l *ShortcutA) OutShape(s Shape) Shape {
	if l.Stride < 1 || l.Cout < s.C {
		panic("grad: ShortcutA needs Stride >= 1 and Cout >= Cin")
	}
	return Shape{s.N, (s.H + l.Stride - 1) / l.Stride, (s.W + l.Stride - 1) / l.Stride, l.Cout}
}

// before is the number of zero channels before the kept ones, for input
// shape s and output shape o.
func (l *ShortcutA) before(s, o Shape) int {
	if l.PadEnd {
		return 0
	}
	return (o.C - s.C) / 2
}

// Forward returns the shortcut of x and its shape; the output is a buffer
// of the layer's that the next Forward overwrites.
func (l *ShortcutA) Forward(x []float32, s Shape) ([]float32, Shape) {
	if len(x) != s.Size() {
		panic("grad: ShortcutA input does not match its shape")
	}
	o := l.OutShape(s)
	l.in, l.outS = s, o
	l.y = ensure32(l.y, o.Size())
	lo := l.before(s, o)
	for n := range s.N {
		for oy := range o.H {
			for ox := range o.W {
				ys := l.y[((n*o.H+oy)*o.W+ox)*o.C:][:o.C]
				clear(ys[:lo])
				copy(ys[lo:lo+s.C], x[((n*s.H+oy*l.Stride)*s.W+ox*l.Stride)*s.C:][:s.C])
				clear(ys[lo+s.C:])
			}
		}
	}
	return l.y, o
}

// Backward returns dx: the gradient of the kept channels at the kept
// pixels, zero at the pixels the subsampling skipped.
func (l *ShortcutA) Backward(dy []float32) []float32 {
	s, o := l.in, l.outS
	if len(dy) != o.Size() {
		panic("grad: ShortcutA.Backward: dy does not match the last Forward")
	}
	l.dx = ensure32(l.dx, s.Size())
	clear(l.dx)
	lo := l.before(s, o)
	for n := range s.N {
		for oy := range o.H {
			for ox := range o.W {
				g := dy[((n*o.H+oy)*o.W+ox)*o.C+lo:][:s.C]
				copy(l.dx[((n*s.H+oy*l.Stride)*s.W+ox*l.Stride)*s.C:][:s.C], g)
			}
		}
	}
	return l.dx
}
