package grad

import "math"

// SoftmaxCrossEntropy is the mean over the batch of the cross-entropy
// between softmax(logits) and the target distribution, with PyTorch's
// label smoothing: target = (1-Smoothing)·onehot(label) +
// Smoothing/classes. It is computed in float64 with the row maximum
// subtracted before exponentiating, so large logits do not overflow.
type SoftmaxCrossEntropy struct {
	Smoothing float64 // ε in [0, 1]; 0 is the plain cross-entropy

	dlogits []float32
}

// Forward takes logits of shape s ([N, 1, 1, classes]: each image's
// s.H·s.W·s.C values are its class scores) and the N labels, and returns
// the mean loss and the number of images whose first largest logit is
// their label. It keeps dloss/dlogits for Backward.
func (l *SoftmaxCrossEntropy) Forward(logits []float32, s Shape, labels []int) (loss float64, correct int) {
	k := s.Pixels() * s.C
	if len(logits) != s.Size() || len(labels) != s.N || k == 0 {
		panic("grad: SoftmaxCrossEntropy logits or labels do not match the shape")
	}
	l.dlogits = ensure32(l.dlogits, len(logits))
	eps := l.Smoothing
	off := eps / float64(k)
	on := 1 - eps + off
	scale := 1 / float64(s.N)
	for n, label := range labels {
		if label < 0 || label >= k {
			panic("grad: SoftmaxCrossEntropy label out of range")
		}
		z, d := logits[n*k:][:k], l.dlogits[n*k:][:k]
		top := 0
		for i, v := range z {
			if v > z[top] {
				top = i
			}
		}
		if top == label {
			correct++
		}
		m := float64(z[top])
		var sum float64
		for _, v := range z {
			sum += math.Exp(float64(v) - m)
		}
		logSum := math.Log(sum) // the loss is logSum + Σ t·(m - z), as Σ t = 1
		row := logSum
		for i, v := range z {
			t := off
			if i == label {
				t = on
			}
			shifted := float64(v) - m // exact for float32 inputs within 2^29 of each other
			row -= t * shifted
			d[i] = float32((math.Exp(shifted-logSum) - t) * scale)
		}
		loss += row
	}
	return loss * scale, correct
}

// Backward returns dloss/dlogits of the last Forward, a buffer of the
// layer's that the next Forward overwrites.
func (l *SoftmaxCrossEntropy) Backward() []float32 { return l.dlogits }
