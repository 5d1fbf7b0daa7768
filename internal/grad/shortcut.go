package grad

import "math"

// AddReLU is a residual block's merge and activation, y = max(a + b, 0),
// in one pass (ReLU's rule: +0 where the sum is <= 0, NaN kept). Its
// Backward zeroes dy in place where y is not positive and returns it as
// the gradient of both inputs: the same slice, so neither consumer may
// change it in place.
type AddReLU struct {
	// Threads splits Forward and Backward over ranges of values (0 means
	// 1; more costs a goroutine per call on large tensors).
	Threads int

	y []float32
}

// Forward returns max(a + b, 0) (both of shape s), a buffer of the
// layer's that the next Forward overwrites.
func (l *AddReLU) Forward(a, b []float32, s Shape) []float32 {
	if len(a) != s.Size() || len(b) != s.Size() {
		panic("grad: AddReLU inputs do not match their shape")
	}
	l.y = ensure32(l.y, len(a))
	if t := elementThreads(l.Threads, len(a)); t > 1 {
		parallel(t, len(a), func(i0, i1 int) { addReLUInto(l.y[i0:i1], a[i0:i1], b[i0:i1]) })
	} else {
		addReLUInto(l.y, a, b)
	}
	return l.y
}

// addReLUInto sets y to max(a + b, 0), branch-free as reluForward.
func addReLUInto(y, a, b []float32) {
	y, b = y[:len(a)], b[:len(a)]
	for i, v := range a {
		sum := v + b[i]
		bits := math.Float32bits(sum)
		if sum <= 0 { // false for NaN
			bits = 0
		}
		y[i] = math.Float32frombits(bits)
	}
}

// Backward zeroes dy in place where the output was not positive and
// returns it as the gradient of a and of b.
func (l *AddReLU) Backward(dy []float32) (da, db []float32) {
	if len(dy) != len(l.y) {
		panic("grad: AddReLU.Backward: dy does not match the last Forward")
	}
	if t := elementThreads(l.Threads, len(dy)); t > 1 {
		parallel(t, len(dy), func(i0, i1 int) { reluBackward(dy[i0:i1], l.y[i0:i1]) })
	} else {
		reluBackward(dy, l.y)
	}
	return dy, dy
}

// AddTo adds src to dst element by element: the gradient of a tensor that
// feeds two layers (a residual block's input) is the sum of theirs.
func AddTo(dst, src []float32) { AddToThreads(dst, src, 1) }

// AddToThreads is AddTo split over ranges of values on threads.
func AddToThreads(dst, src []float32, threads int) {
	if len(dst) != len(src) {
		panic("grad: AddTo of different lengths")
	}
	if t := elementThreads(threads, len(dst)); t > 1 {
		parallel(t, len(dst), func(i0, i1 int) { addTo(dst[i0:i1], src[i0:i1]) })
	} else {
		addTo(dst, src)
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
