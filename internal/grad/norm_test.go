package grad

import (
	"fmt"
	"math"
	"testing"

	"github.com/edge-resnet/edge-resnet/kernels"
)

var bnShapes = []struct {
	name string
	s    Shape
}{
	{"batch1_c3", Shape{1, 3, 3, 3}},
	{"batch1_c5_wide", Shape{1, 2, 5, 5}},
	{"batch4_c3", Shape{4, 2, 3, 3}},
	{"batch4_c7_1x1", Shape{4, 1, 1, 7}},
}

// newTestBN returns a BatchNorm with non-trivial Gamma and Beta.
func newTestBN(c int, seed uint64) *BatchNorm {
	b := NewBatchNorm(c)
	copy(b.Gamma, fdRandom(seed, c, 0.5, 1.5))
	copy(b.Beta, fdRandom(seed+1, c, -0.5, 0.5))
	return b
}

func TestBatchNormGradient(t *testing.T) {
	for _, tc := range bnShapes {
		for _, eval := range []bool{false, true} {
			name := tc.name
			if eval {
				name += "_eval"
			}
			t.Run(name, func(t *testing.T) { checkBNGradient(t, tc.s, eval) })
		}
	}
}

// checkBNGradient checks dx, dGamma and dBeta of BatchNorm on shape s in
// training mode or, with eval, after ForwardEval.
func checkBNGradient(t *testing.T, s Shape, eval bool) {
	b := newTestBN(s.C, 3)
	copy(b.RunningMean, fdRandom(9, s.C, -0.3, 0.3))
	copy(b.RunningVar, fdRandom(10, s.C, 0.5, 2))
	x := fdRandom(4, s.Size(), -2, 2)
	r := fdRandom(5, s.Size(), -1, 1)
	fwd := func() []float32 {
		if eval {
			return b.ForwardEval(x, s)
		}
		return b.Forward(x, s)
	}
	loss := func() float64 { return dotLoss(r, fwd()) }
	fwd()
	dy := append([]float32(nil), r...)
	dx := append([]float32(nil), b.Backward(dy)...)
	fdCompare(t, "dx", dx, numericGrad(x, 1e-2, loss), 2e-3, 1e-2)
	fdCompare(t, "dGamma", b.DGamma, numericGrad(b.Gamma, 1e-2, loss), 2e-3, 1e-2)
	fdCompare(t, "dBeta", b.DBeta, numericGrad(b.Beta, 1e-2, loss), 2e-3, 1e-2)
}

// TestBatchNormStatistics checks a training Forward, the running-statistics
// update and an eval Forward against values worked out by hand: channel 0
// sees 1, 2, 3, 4 (mean 2.5, biased variance 1.25, unbiased 5/3), channel
// 1 sees -2, 0, 2, 4 (mean 1, biased variance 5, unbiased 20/3).
func TestBatchNormStatistics(t *testing.T) {
	b := NewBatchNorm(2)
	b.Gamma[0], b.Gamma[1] = 2, 0.5
	b.Beta[0], b.Beta[1] = 0.5, -1
	s := Shape{2, 1, 2, 2}
	x := []float32{1, -2, 2, 0, 3, 2, 4, 4}
	y := b.Forward(x, s)
	mean := []float64{2.5, 1}
	bvar := []float64{1.25, 5}
	uvar := []float64{5.0 / 3, 20.0 / 3}
	for i, v := range x {
		c := i % 2
		want := float64(b.Gamma[c])*(float64(v)-mean[c])/math.Sqrt(bvar[c]+1e-5) + float64(b.Beta[c])
		fdNear(t, "train y", i, float64(y[i]), want, 1e-6)
	}
	for c := range 2 {
		fdNear(t, "running mean", c, float64(b.RunningMean[c]), 0.1*mean[c], 1e-7)
		fdNear(t, "running var", c, float64(b.RunningVar[c]), 0.9+0.1*uvar[c], 1e-6)
	}
	b.Forward(x, s) // a second step moves the running statistics again
	for c := range 2 {
		fdNear(t, "running mean 2", c, float64(b.RunningMean[c]), 0.9*0.1*mean[c]+0.1*mean[c], 1e-6)
		fdNear(t, "running var 2", c, float64(b.RunningVar[c]), 0.9*(0.9+0.1*uvar[c])+0.1*uvar[c], 1e-6)
	}
	rm := []float64{0.19 * 2.5, 0.19 * 1}
	rv := []float64{0.81 + 0.19*5.0/3, 0.81 + 0.19*20.0/3}
	before := [2][]float32{append([]float32(nil), b.RunningMean...), append([]float32(nil), b.RunningVar...)}
	ye := b.ForwardEval(x, s)
	for i, v := range x {
		c := i % 2
		want := float64(b.Gamma[c])*(float64(v)-rm[c])/math.Sqrt(rv[c]+1e-5) + float64(b.Beta[c])
		fdNear(t, "eval y", i, float64(ye[i]), want, 1e-5)
	}
	fdSameBits(t, "running mean after ForwardEval", b.RunningMean, before[0])
	fdSameBits(t, "running var after ForwardEval", b.RunningVar, before[1])
}

// fdNear fails t when got is further than tol from want.
func fdNear(t *testing.T, what string, i int, got, want, tol float64) {
	t.Helper()
	if !(math.Abs(got-want) <= tol) {
		t.Errorf("%s[%d] = %.8g, want %.8g", what, i, got, want)
	}
}

// TestBatchNormFold checks that Fold and FoldInto reproduce ForwardEval:
// a 1x1 convolution (a dense layer, weights In x Out) with a bias, then
// BN, against the folded layer alone.
func TestBatchNormFold(t *testing.T) {
	const cin, cout, pix = 3, 5, 4
	b := newTestBN(cout, 11)
	copy(b.RunningMean, fdRandom(12, cout, -1, 1))
	copy(b.RunningVar, fdRandom(13, cout, 0.2, 3))
	w := fdRandom(14, cin*cout, -1, 1)
	bias := fdRandom(15, cout, -0.5, 0.5)
	x := fdRandom(16, pix*cin, -2, 2)
	conv := func(w, bias []float32) []float32 {
		y := make([]float32, pix*cout)
		for p := range pix {
			for o := range cout {
				acc := bias[o]
				for i := range cin {
					acc += x[p*cin+i] * w[i*cout+o]
				}
				y[p*cout+o] = acc
			}
		}
		return y
	}
	want := append([]float32(nil), b.ForwardEval(conv(w, bias), Shape{1, 2, 2, cout})...)
	scale, shift := b.Fold()
	plain := conv(w, bias)
	for i, v := range plain {
		fdNear(t, "Fold", i, float64(scale[i%cout]*v+shift[i%cout]), float64(want[i]), 1e-5)
	}
	b.FoldInto(w, bias, cout)
	for i, v := range conv(w, bias) {
		fdNear(t, "FoldInto", i, float64(v), float64(want[i]), 1e-5)
	}
}

func TestBatchNormDeterministicNoAlloc(t *testing.T) {
	s := Shape{4, 3, 5, 7}
	x := fdRandom(20, s.Size(), -3, 3)
	dy := fdRandom(21, s.Size(), -1, 1)
	run := func() (y, dx, dg, db []float32) {
		b := newTestBN(s.C, 22)
		y = append([]float32(nil), b.Forward(x, s)...)
		dx = append([]float32(nil), b.Backward(dy)...)
		return y, dx, b.DGamma, b.DBeta
	}
	y1, dx1, dg1, db1 := run()
	y2, dx2, dg2, db2 := run()
	fdSameBits(t, "y", y1, y2)
	fdSameBits(t, "dx", dx1, dx2)
	fdSameBits(t, "dGamma", dg1, dg2)
	fdSameBits(t, "dBeta", db1, db2)
	b := newTestBN(s.C, 22)
	b.Forward(x, s)
	b.Backward(dy)
	if n := testing.AllocsPerRun(10, func() { b.Forward(x, s); b.Backward(dy) }); n != 0 {
		t.Errorf("Forward+Backward allocate %v times per run", n)
	}
	if n := testing.AllocsPerRun(10, func() { b.ForwardEval(x, s); b.Backward(dy) }); n != 0 {
		t.Errorf("ForwardEval+Backward allocate %v times per run", n)
	}
}

// TestBatchNormFusedReLU checks a BatchNorm with Relu against a plain one
// followed by a ReLU layer, bit for bit (output, dx, dGamma, dBeta; dy
// left unchanged), in training and eval mode, on every kernel
// path of this CPU and with 1 and 3 threads.
func TestBatchNormFusedReLU(t *testing.T) {
	s := Shape{3, 4, 5, 19} // 19 channels: vector blocks and a Go tail
	x := fdRandom(30, s.Size(), -3, 3)
	x[7], x[8] = 0, float32(math.Copysign(0, -1))
	dy := fdRandom(31, s.Size(), -1, 1)
	for _, set := range kernels.Sets() {
		for _, threads := range []int{1, 3} {
			for _, eval := range []bool{false, true} {
				name := fmt.Sprintf("%s/threads=%d/eval=%v", set.Name(), threads, eval)
				plain, fused := newTestBN(s.C, 32), newTestBN(s.C, 32)
				plain.Set, fused.Set = set, set
				plain.Threads, fused.Threads = threads, threads
				fused.Relu = true
				relu := &ReLU{}
				fwd := func(b *BatchNorm) []float32 {
					if eval {
						return b.ForwardEval(x, s)
					}
					return b.Forward(x, s)
				}
				want := relu.Forward(fwd(plain), s)
				got := fwd(fused)
				fdSameBits(t, name+" y", got, want)
				dyWant, dyGot := append([]float32(nil), dy...), append([]float32(nil), dy...)
				dxWant := plain.Backward(relu.Backward(dyWant))
				dxGot := fused.Backward(dyGot)
				fdSameBits(t, name+" dx", dxGot, dxWant)
				fdSameBits(t, name+" dy unchanged", dyGot, dy)
				fdSameBits(t, name+" dGamma", fused.DGamma, plain.DGamma)
				fdSameBits(t, name+" dBeta", fused.DBeta, plain.DBeta)
				fdSameBits(t, name+" running mean", fused.RunningMean, plain.RunningMean)
				fdSameBits(t, name+" running var", fused.RunningVar, plain.RunningVar)
			}
		}
	}
}

// TestBatchNormSameOnEveryPath: the layer's results do not depend on the
// kernel path (the vector kernels equal the Go code bit for bit) nor on
// the thread count.
func TestBatchNormSameOnEveryPath(t *testing.T) {
	s := Shape{2, 6, 7, 40}
	x := fdRandom(40, s.Size(), -3, 3)
	dy := fdRandom(41, s.Size(), -1, 1)
	var ref [][]float32
	for _, set := range kernels.Sets() {
		for _, threads := range []int{1, 2, 5} {
			b := newTestBN(s.C, 42)
			b.Set, b.Threads, b.Relu = set, threads, true
			y := append([]float32(nil), b.Forward(x, s)...)
			dx := append([]float32(nil), b.Backward(append([]float32(nil), dy...))...)
			got := [][]float32{y, dx, b.DGamma, b.DBeta, b.RunningMean, b.RunningVar}
			if ref == nil {
				ref = got
				continue
			}
			for i := range got {
				fdSameBits(t, fmt.Sprintf("%s threads %d, result %d", set.Name(), threads, i), got[i], ref[i])
			}
		}
	}
}
