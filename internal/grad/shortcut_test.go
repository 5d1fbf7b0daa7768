package grad

import (
	"fmt"
	"math"
	"testing"
)

func TestShortcutAGradient(t *testing.T) {
	cases := []struct {
		s            Shape
		cout, stride int
		end          bool
	}{
		{Shape{2, 5, 5, 3}, 6, 2, false},  // odd spatial size, odd padding split (1 before, 2 after)
		{Shape{1, 5, 7, 4}, 8, 2, false},  // CIFAR's 16 -> 32 in miniature
		{Shape{3, 3, 3, 2}, 7, 2, false},  // odd channel count out
		{Shape{1, 1, 1, 2}, 4, 2, false},  // a single pixel
		{Shape{2, 4, 6, 3}, 3, 2, false},  // no channel padding
		{Shape{1, 3, 3, 2}, 4, 1, false},  // channel padding only
		{Shape{1, 7, 4, 1}, 3, 3, false},  // stride 3
		{Shape{2, 6, 6, 8}, 16, 2, false}, // even everything
		{Shape{2, 5, 5, 3}, 6, 2, true},   // PadEnd: all 3 zero channels after
		{Shape{1, 3, 3, 2}, 8, 1, true},   // PadEnd, channel padding only (a bottleneck's first block)
		{Shape{2, 4, 6, 3}, 3, 2, true},   // PadEnd without channel padding
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%dx%dx%dx%d_to%d_s%d_end%v", tc.s.N, tc.s.H, tc.s.W, tc.s.C, tc.cout, tc.stride, tc.end), func(t *testing.T) {
			mk := func() shaped { return &ShortcutA{Cout: tc.cout, Stride: tc.stride, PadEnd: tc.end} }
			x := fdRandom(uint64(tc.s.Size()), tc.s.Size(), -2, 2)
			checkShapedGradient(t, mk(), x, tc.s, 1e-2)
			checkShapedRepeatable(t, mk, x, tc.s)
			checkShortcutReference(t, x, tc.s, tc.cout, tc.stride, tc.end)
		})
	}
}

// checkShortcutReference compares ShortcutA's forward with the definition
// written out index by index: y[n,i,j,c] = x[n,i·stride,j·stride,c-lo] for
// lo <= c < lo+Cin, 0 elsewhere, lo = (Cout-Cin)/2, or 0 with end.
func checkShortcutReference(t *testing.T, x []float32, s Shape, cout, stride int, end bool) {
	t.Helper()
	l := &ShortcutA{Cout: cout, Stride: stride, PadEnd: end}
	y, o := l.Forward(x, s)
	oh, ow := (s.H+stride-1)/stride, (s.W+stride-1)/stride
	if o != (Shape{s.N, oh, ow, cout}) {
		t.Fatalf("shape %v, want %v", o, Shape{s.N, oh, ow, cout})
	}
	lo := (cout - s.C) / 2
	if end {
		lo = 0
	}
	want := make([]float32, o.Size())
	for n := range s.N {
		for i := range oh {
			for j := range ow {
				for c := lo; c < lo+s.C; c++ {
					want[((n*oh+i)*ow+j)*cout+c] = x[((n*s.H+i*stride)*s.W+j*stride)*s.C+c-lo]
				}
			}
		}
	}
	fdSameBits(t, "y", y, want)
}

func TestNewShortcutA(t *testing.T) {
	l := NewShortcutA(32)
	if o := l.OutShape(Shape{128, 32, 32, 16}); o != (Shape{128, 16, 16, 32}) {
		t.Errorf("CIFAR stage 2 shortcut: %v", o)
	}
}

// TestAddReLU checks the fused merge against a plain sum and ReLU, its
// gradient against finite differences (the sums kept away from the kink)
// and that both inputs get the same gradient. Forward writes over a, so
// each call gets a copy.
func TestAddReLU(t *testing.T) {
	s := Shape{2, 3, 5, 3}
	a := fdRandom(1, s.Size(), -2, 2)
	b := fdRandom(2, s.Size(), -2, 2)
	for i := range a {
		if sum := a[i] + b[i]; sum > -0.1 && sum < 0.1 {
			a[i] += 0.5
		}
	}
	r := fdRandom(3, s.Size(), -1, 1)
	buf := make([]float32, len(a))
	for _, threads := range []int{1, 3} {
		l := &AddReLU{Threads: threads}
		fwd := func() []float32 { copy(buf, a); return l.Forward(buf, b, s) }
		y := fwd()
		for i := range y {
			if want := max(a[i]+b[i], 0); y[i] != want {
				t.Fatalf("y[%d] = %v, want %v", i, y[i], want)
			}
		}
		dy := append([]float32(nil), r...)
		da, db := l.Backward(dy)
		if &da[0] != &db[0] {
			t.Fatal("Backward: da and db are not the same slice")
		}
		loss := func() float64 { return dotLoss(r, fwd()) }
		fdCompare(t, "da", da, numericGrad(a, 1e-2, loss), 1e-4, 1e-3)
		fdCompare(t, "db", db, numericGrad(b, 1e-2, loss), 1e-4, 1e-3)
		sum := append([]float32(nil), a...)
		AddTo(sum, b)
		for i := range sum {
			sum[i] = max(sum[i], 0)
		}
		fdSameBits(t, "AddTo then max", sum, fwd())
		l.Backward(dy)
		if n := testing.AllocsPerRun(10, func() { fwd(); l.Backward(dy) }); n != 0 {
			t.Errorf("Forward+Backward allocate %v times per run", n)
		}
	}
	// The ReLU's edges: 0 for a negative sum, NaN kept.
	nan := float32(math.NaN())
	l := &AddReLU{}
	y := l.Forward([]float32{-1, float32(math.Copysign(0, -1)), nan, 2, -3}, []float32{1, 0, 1, -1, 1}, Shape{1, 1, 1, 5})
	if math.Float32bits(y[0]) != 0 || math.Float32bits(y[1]) != 0 || y[2] == y[2] || y[3] != 1 || y[4] != 0 {
		t.Errorf("AddReLU edges: %v", y)
	}
}
