package graph

import (
	"fmt"
	"math"
)

// QParams is the 8-bit quantization of one activation tensor: a stored
// q in [0, 255] stands for the real value Scale*(q-Zero). Tensors that
// follow a ReLU have Zero = 0.
type QParams struct {
	Scale float32 // > 0
	Zero  int32   // in [0, 255]
}

// QWeights are conv or dense weights quantized symmetrically per output
// channel: the real weight at index i with output channel o is
// Q[i]*Scale[o], Q[i] in [-127, 127]. Q has the layout of the float
// weights (HWIO for conv, [In][Out] for dense).
type QWeights struct {
	Q     []int8
	Scale []float32 // len = number of output channels, each > 0
}

// Dequantize returns the real weights Q[i]*Scale[i%out].
func (q *QWeights) Dequantize() []float32 {
	out := len(q.Scale)
	w := make([]float32, len(q.Q))
	for i, v := range q.Q {
		w[i] = float32(v) * q.Scale[i%out]
	}
	return w
}

// check validates q for n weights and out output channels.
func (q *QWeights) check(n int64, out int) error {
	if int64(len(q.Q)) != n || len(q.Scale) != out {
		return fmt.Errorf("int8 weights: %d values and %d scales, want %d and %d", len(q.Q), len(q.Scale), n, out)
	}
	for o, s := range q.Scale {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("int8 weights: scale of output channel %d is %v, want a finite positive number", o, s)
		}
	}
	for i, v := range q.Q {
		if v == -128 {
			return fmt.Errorf("int8 weights: value %d is -128, outside the symmetric range [-127, 127]", i)
		}
	}
	return nil
}

func (q *QParams) check() error {
	if !(q.Scale > 0) || math.IsInf(float64(q.Scale), 0) || q.Zero < 0 || q.Zero > 255 {
		return fmt.Errorf("activation quantization scale %v zero point %d: want scale > 0 and zero in [0, 255]", q.Scale, q.Zero)
	}
	return nil
}

// checkWeights checks a conv or dense layer's parameters: out output
// channels (at most maxOut), n weights in float32 and/or int8, a bias of
// out values or none.
func checkWeights(out, maxOut int, n int64, w, bias []float32, q *QWeights) error {
	if out < 1 || out > maxOut {
		return fmt.Errorf("%d outputs", out)
	}
	if int64(len(w)) != n && (w != nil || q == nil) {
		return fmt.Errorf("weight has %d values, want %d", len(w), n)
	}
	if q != nil {
		if err := q.check(n, out); err != nil {
			return err
		}
	}
	if bias != nil && len(bias) != out {
		return fmt.Errorf("bias has %d values, want %d", len(bias), out)
	}
	return nil
}
