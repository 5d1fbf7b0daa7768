package grad

import (
	"fmt"
	"math"
	"testing"
)

// refSoftmaxCE is the float64 reference: softmax by the textbook formula
// (no maximum subtracted, so only for moderate logits), the smoothed
// target, the mean loss and dloss/dlogits = (p - target)/N.
func refSoftmaxCE(logits []float32, n, k int, labels []int, eps float64) (float64, []float64) {
	var loss float64
	grad := make([]float64, n*k)
	for i := range n {
		var sum float64
		for _, v := range logits[i*k : i*k+k] {
			sum += math.Exp(float64(v))
		}
		for j, v := range logits[i*k : i*k+k] {
			p := math.Exp(float64(v)) / sum
			t := eps / float64(k)
			if j == labels[i] {
				t += 1 - eps
			}
			loss -= t * math.Log(p)
			grad[i*k+j] = (p - t) / float64(n)
		}
	}
	return loss / float64(n), grad
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	for _, n := range []int{1, 5} {
		for _, k := range []int{2, 3, 10} {
			for _, eps := range []float64{0, 0.1, 0.3} {
				t.Run(fmt.Sprintf("n%d_k%d_eps%g", n, k, eps), func(t *testing.T) {
					checkSoftmaxCE(t, n, k, eps)
				})
			}
		}
	}
}

// checkSoftmaxCE compares loss and dlogits with the float64 reference and
// dlogits with finite differences of the loss itself.
func checkSoftmaxCE(t *testing.T, n, k int, eps float64) {
	logits := fdRandom(uint64(n*k), n*k, -4, 4)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = (3*i + 1) % k
	}
	s := Shape{n, 1, 1, k}
	l := &SoftmaxCrossEntropy{Smoothing: eps}
	loss, _ := l.Forward(logits, s, labels)
	dl := append([]float32(nil), l.Backward()...)
	want, wantGrad := refSoftmaxCE(logits, n, k, labels, eps)
	fdNear(t, "loss", 0, loss, want, 1e-12*math.Max(1, want))
	fdCompare(t, "dlogits vs reference", dl, wantGrad, 1e-8, 1e-6)
	num := numericGrad(logits, 1e-3, func() float64 {
		v, _ := l.Forward(logits, s, labels)
		return v
	})
	fdCompare(t, "dlogits vs finite differences", dl, num, 1e-6, 1e-4)
}

// TestSoftmaxCrossEntropyValues checks hand-computed losses, the accuracy
// count (ties go to the first class) and stability with huge logits.
func TestSoftmaxCrossEntropyValues(t *testing.T) {
	l := &SoftmaxCrossEntropy{}
	loss, correct := l.Forward([]float32{0, 0, 2, 1, 1, 3}, Shape{3, 1, 1, 2}, []int{0, 0, 1})
	want := (math.Log(2) + (math.Log(math.Exp(2)+math.E) - 2) + (math.Log(math.E+math.Exp(3)) - 3)) / 3
	fdNear(t, "loss", 0, loss, want, 1e-15)
	if correct != 3 {
		t.Errorf("correct = %d, want 3 (a tie counts for the first class)", correct)
	}
	l.Smoothing = 0.2 // target (0.9, 0.1) on equal logits is still ln 2
	loss, _ = l.Forward([]float32{5, 5}, Shape{1, 1, 1, 2}, []int{1})
	fdNear(t, "smoothed loss", 0, loss, math.Log(2), 1e-15)
	fdSameBits(t, "smoothed dlogits", l.Backward(), []float32{0.4, -0.4})

	base := []float32{0, 1, 3, -2}
	small, _ := l.Forward(base, Shape{1, 1, 1, 4}, []int{2})
	for _, off := range []float32{1e4, -1e4, 3e37} {
		shifted := make([]float32, len(base))
		for i, v := range base {
			shifted[i] = v + off
		}
		big, _ := l.Forward(shifted, Shape{1, 1, 1, 4}, []int{2})
		if math.IsNaN(big) || math.IsInf(big, 0) {
			t.Errorf("offset %g: loss %v", off, big)
		}
		if off != 3e37 && big != small {
			t.Errorf("offset %g: loss %v, want %v", off, big, small)
		}
	}
}

func TestSoftmaxCrossEntropyRepeatable(t *testing.T) {
	s := Shape{8, 1, 1, 10}
	logits := fdRandom(1, s.Size(), -5, 5)
	labels := []int{0, 1, 2, 3, 4, 5, 6, 7}
	run := func() (float64, []float32) {
		l := &SoftmaxCrossEntropy{Smoothing: 0.1}
		loss, _ := l.Forward(logits, s, labels)
		return loss, append([]float32(nil), l.Backward()...)
	}
	l1, d1 := run()
	l2, d2 := run()
	if math.Float64bits(l1) != math.Float64bits(l2) {
		t.Errorf("loss %v then %v", l1, l2)
	}
	fdSameBits(t, "dlogits", d1, d2)
	l := &SoftmaxCrossEntropy{Smoothing: 0.1}
	l.Forward(logits, s, labels)
	if n := testing.AllocsPerRun(10, func() { l.Forward(logits, s, labels); l.Backward() }); n != 0 {
		t.Errorf("Forward+Backward allocate %v times per run", n)
	}
}
