package grad

import (
	"fmt"
	"testing"
)

// shaped is the common face of the layers whose output shape differs from
// their input's: the pools and ShortcutA.
type shaped interface {
	Forward(x []float32, s Shape) ([]float32, Shape)
	Backward(dy []float32) []float32
}

// checkShapedGradient checks l's dx on input x of shape s against finite
// differences of Σ r·y (step h).
func checkShapedGradient(t *testing.T, l shaped, x []float32, s Shape, h float64) {
	t.Helper()
	_, o := l.Forward(x, s)
	r := fdRandom(7, o.Size(), -1, 1)
	dy := append([]float32(nil), r...)
	dx := append([]float32(nil), l.Backward(dy)...)
	num := numericGrad(x, h, func() float64 {
		y, _ := l.Forward(x, s)
		return dotLoss(r, y)
	})
	fdCompare(t, "dx", dx, num, 1e-4, 1e-3)
}

// checkShapedRepeatable checks that l's Forward+Backward give bit-identical
// results on a fresh layer and allocate nothing once warmed up.
func checkShapedRepeatable(t *testing.T, mk func() shaped, x []float32, s Shape) {
	t.Helper()
	run := func(l shaped) (y, dx []float32) {
		out, o := l.Forward(x, s)
		y = append([]float32(nil), out...)
		dx = append([]float32(nil), l.Backward(fdRandom(8, o.Size(), -1, 1))...)
		return y, dx
	}
	l := mk()
	y1, dx1 := run(l)
	y2, dx2 := run(mk())
	fdSameBits(t, "y", y1, y2)
	fdSameBits(t, "dx", dx1, dx2)
	_, o := l.Forward(x, s)
	dy := fdRandom(9, o.Size(), -1, 1)
	if n := testing.AllocsPerRun(10, func() { l.Forward(x, s); l.Backward(dy) }); n != 0 {
		t.Errorf("Forward+Backward allocate %v times per run", n)
	}
}

var poolCases = []struct {
	k, stride, pad int
	s              Shape
}{
	{3, 2, 1, Shape{2, 5, 5, 3}}, // ResNet's stem pool, odd size
	{3, 2, 1, Shape{1, 6, 7, 2}},
	{2, 2, 0, Shape{1, 4, 6, 3}},
	{3, 1, 1, Shape{2, 4, 3, 1}},
	{2, 3, 1, Shape{1, 7, 5, 2}}, // stride beyond the kernel: skipped inputs
}

func TestMaxPoolGradient(t *testing.T) {
	for _, tc := range poolCases {
		t.Run(fmt.Sprintf("k%d_s%d_p%d_%dx%dx%dx%d", tc.k, tc.stride, tc.pad, tc.s.N, tc.s.H, tc.s.W, tc.s.C), func(t *testing.T) {
			mk := func() shaped { return &MaxPool{K: tc.k, Stride: tc.stride, Pad: tc.pad} }
			x := fdDistinct(uint64(tc.s.Size()), tc.s.Size(), 0.05)
			checkShapedGradient(t, mk(), x, tc.s, 1e-2)
			checkShapedRepeatable(t, mk, x, tc.s)
		})
	}
}

func TestAvgPoolGradient(t *testing.T) {
	for _, tc := range poolCases {
		for _, inc := range []bool{true, false} {
			t.Run(fmt.Sprintf("k%d_s%d_p%d_inc%v_%dx%dx%dx%d", tc.k, tc.stride, tc.pad, inc, tc.s.N, tc.s.H, tc.s.W, tc.s.C), func(t *testing.T) {
				mk := func() shaped { return &AvgPool{K: tc.k, Stride: tc.stride, Pad: tc.pad, CountIncludePad: inc} }
				x := fdRandom(uint64(tc.s.Size()), tc.s.Size(), -2, 2)
				checkShapedGradient(t, mk(), x, tc.s, 1e-2)
				checkShapedRepeatable(t, mk, x, tc.s)
			})
		}
	}
}

func TestGlobalAvgPoolGradient(t *testing.T) {
	for _, s := range []Shape{{1, 1, 1, 3}, {2, 3, 5, 3}, {4, 7, 7, 5}} {
		t.Run(fmt.Sprintf("%dx%dx%dx%d", s.N, s.H, s.W, s.C), func(t *testing.T) {
			mk := func() shaped { return &GlobalAvgPool{} }
			x := fdRandom(uint64(s.Size()), s.Size(), -2, 2)
			checkShapedGradient(t, mk(), x, s, 1e-2)
			checkShapedRepeatable(t, mk, x, s)
		})
	}
}

// TestPoolValues checks outputs and routing against values worked out by
// hand.
func TestPoolValues(t *testing.T) {
	// A 2x3 image, one channel, with ties: 2x2 windows at stride 1.
	x := []float32{5, 5, 5, 0, 0, 9}
	mp := &MaxPool{K: 2, Stride: 1}
	y, o := mp.Forward(x, Shape{1, 2, 3, 1})
	fdSameBits(t, "maxpool shape", []float32{float32(o.H), float32(o.W)}, []float32{1, 2})
	fdSameBits(t, "maxpool y", y, []float32{5, 9})
	fdSameBits(t, "maxpool ties go to the first max", mp.Backward([]float32{1, 2}), []float32{1, 0, 0, 0, 0, 2})
	// All equal in one window: the first in scan order.
	mp2 := &MaxPool{K: 2, Stride: 2}
	mp2.Forward([]float32{1, 1, 1, 1}, Shape{1, 2, 2, 1})
	fdSameBits(t, "maxpool all equal", mp2.Backward([]float32{3}), []float32{3, 0, 0, 0})
	// Padding is -Inf, never a maximum, even over negative inputs.
	mp3 := &MaxPool{K: 3, Stride: 2, Pad: 1}
	y, _ = mp3.Forward([]float32{-4, -3, -2, -1}, Shape{1, 2, 2, 1})
	fdSameBits(t, "maxpool padded", y, []float32{-1})
	// 3x3 windows with padding 1 over a 2x2 image cover all 4 values.
	four := []float32{1, 2, 3, 4}
	inc := &AvgPool{K: 3, Stride: 1, Pad: 1, CountIncludePad: true}
	y, _ = inc.Forward(four, Shape{1, 2, 2, 1})
	fdSameBits(t, "avgpool include pad", y, []float32{10.0 / 9, 10.0 / 9, 10.0 / 9, 10.0 / 9})
	fdSameBits(t, "avgpool include pad dx", inc.Backward([]float32{9, 0, 0, 0}), []float32{1, 1, 1, 1})
	exc := &AvgPool{K: 3, Stride: 1, Pad: 1}
	y, _ = exc.Forward(four, Shape{1, 2, 2, 1})
	fdSameBits(t, "avgpool exclude pad", y, []float32{2.5, 2.5, 2.5, 2.5})
	gp := &GlobalAvgPool{}
	y, o = gp.Forward([]float32{1, 10, 2, 20, 3, 30, 6, 60}, Shape{2, 1, 2, 2})
	if o != (Shape{2, 1, 1, 2}) {
		t.Errorf("global pool shape %v", o)
	}
	fdSameBits(t, "global pool", y, []float32{1.5, 15, 4.5, 45})
	fdSameBits(t, "global pool dx", gp.Backward([]float32{2, 4, 6, 8}), []float32{1, 2, 1, 2, 3, 4, 3, 4})
}
