package grad

import "math"

// BatchNorm normalizes each channel over the N·H·W values of a batch, as
// PyTorch's BatchNorm2d: in training mode with the batch mean and the
// biased batch variance, updating RunningMean and RunningVar with
// Momentum (running = (1-Momentum)·running + Momentum·batch, the running
// variance taking the unbiased batch variance); in eval mode with the
// running statistics. Per-channel sums go in float64 in a fixed order.
type BatchNorm struct {
	C        int
	Momentum float64 // 0.1, PyTorch's default
	Eps      float64 // 1e-5

	Gamma, Beta   []float32 // scale and shift, initially 1 and 0
	DGamma, DBeta []float32 // their gradients, added to by Backward

	RunningMean, RunningVar []float32 // initially 0 and 1

	shape  Shape
	train  bool      // the last Forward was in training mode
	xhat   []float32 // the normalized input, kept for Backward
	invStd []float64 // per channel, 1/sqrt(var+eps) of the last Forward
	mean   []float64 // per channel scratch
	acc    []float64 // per channel scratch
	y, dx  []float32
}

// NewBatchNorm returns a BatchNorm over c channels with PyTorch's defaults.
func NewBatchNorm(c int) *BatchNorm {
	b := &BatchNorm{
		C: c, Momentum: 0.1, Eps: 1e-5,
		Gamma: make([]float32, c), Beta: make([]float32, c),
		DGamma: make([]float32, c), DBeta: make([]float32, c),
		RunningMean: make([]float32, c), RunningVar: make([]float32, c),
		invStd: make([]float64, c), mean: make([]float64, c), acc: make([]float64, c),
	}
	for i := range c {
		b.Gamma[i] = 1
		b.RunningVar[i] = 1
	}
	return b
}

// ZeroGrad clears DGamma and DBeta.
func (b *BatchNorm) ZeroGrad() {
	clear(b.DGamma)
	clear(b.DBeta)
}

// Forward normalizes x (shape s, s.C == b.C) with the batch statistics,
// updates the running statistics and returns the output, a buffer of the
// layer's that the next Forward overwrites.
func (b *BatchNorm) Forward(x []float32, s Shape) []float32 {
	b.begin(x, s, true)
	c := b.C
	m := s.N * s.Pixels()
	clear(b.mean)
	for p := 0; p < m; p++ {
		for j, v := range x[p*c : p*c+c] {
			b.mean[j] += float64(v)
		}
	}
	for j := range b.mean {
		b.mean[j] /= float64(m)
	}
	clear(b.acc)
	for p := 0; p < m; p++ {
		for j, v := range x[p*c : p*c+c] {
			d := float64(v) - b.mean[j]
			b.acc[j] += d * d
		}
	}
	for j := range c {
		variance := b.acc[j] / float64(m)
		b.invStd[j] = 1 / math.Sqrt(variance+b.Eps)
		unbiased := variance // a single value per channel has no unbiased variance
		if m > 1 {
			unbiased = b.acc[j] / float64(m-1)
		}
		b.RunningMean[j] = float32((1-b.Momentum)*float64(b.RunningMean[j]) + b.Momentum*b.mean[j])
		b.RunningVar[j] = float32((1-b.Momentum)*float64(b.RunningVar[j]) + b.Momentum*unbiased)
	}
	b.normalize(x)
	return b.y
}

// ForwardEval normalizes x with the running statistics, as inference does;
// a Backward after it treats the statistics as constants (a frozen BN).
func (b *BatchNorm) ForwardEval(x []float32, s Shape) []float32 {
	b.begin(x, s, false)
	for j := range b.C {
		b.mean[j] = float64(b.RunningMean[j])
		b.invStd[j] = 1 / math.Sqrt(float64(b.RunningVar[j])+b.Eps)
	}
	b.normalize(x)
	return b.y
}

// begin checks the input and sizes the buffers for shape s.
func (b *BatchNorm) begin(x []float32, s Shape, train bool) {
	if s.C != b.C || len(x) != s.Size() {
		panic("grad: BatchNorm input does not match its shape or channel count")
	}
	b.shape, b.train = s, train
	b.xhat = ensure32(b.xhat, s.Size())
	b.y = ensure32(b.y, s.Size())
}

// normalize writes xhat = (x-mean)·invStd and y = Gamma·xhat + Beta.
func (b *BatchNorm) normalize(x []float32) {
	c := b.C
	for p := 0; p < len(x); p += c {
		xs, hs, ys := x[p:p+c], b.xhat[p:p+c], b.y[p:p+c]
		for j, v := range xs {
			h := float32((float64(v) - b.mean[j]) * b.invStd[j])
			hs[j] = h
			ys[j] = b.Gamma[j]*h + b.Beta[j]
		}
	}
}

// Backward returns dx for the output gradient dy of the last Forward and
// adds Σdy·xhat to DGamma and Σdy to DBeta. After a training Forward,
// dx = Gamma·invStd·(dy - mean(dy) - xhat·mean(dy·xhat)); after
// ForwardEval, dx = Gamma·invStd·dy. dx is a buffer of the layer's.
func (b *BatchNorm) Backward(dy []float32) []float32 {
	c := b.C
	if len(dy) != b.shape.Size() {
		panic("grad: BatchNorm.Backward: dy does not match the last Forward")
	}
	b.dx = ensure32(b.dx, len(dy))
	sumDy, sumDyH := b.mean, b.acc // the statistics are no longer needed
	clear(sumDy)
	clear(sumDyH)
	for p := 0; p < len(dy); p += c {
		for j, g := range dy[p : p+c] {
			sumDy[j] += float64(g)
			sumDyH[j] += float64(g) * float64(b.xhat[p+j])
		}
	}
	m := float64(len(dy) / c)
	for j := range c {
		b.DBeta[j] += float32(sumDy[j])
		b.DGamma[j] += float32(sumDyH[j])
		if b.train {
			sumDy[j] /= m
			sumDyH[j] /= m
		} else {
			sumDy[j], sumDyH[j] = 0, 0
		}
	}
	for p := 0; p < len(dy); p += c {
		for j, g := range dy[p : p+c] {
			k := float64(b.Gamma[j]) * b.invStd[j]
			b.dx[p+j] = float32(k * (float64(g) - sumDy[j] - float64(b.xhat[p+j])*sumDyH[j]))
		}
	}
	return b.dx
}

// Fold returns the inference form of the layer, y = scale·x + shift per
// channel, from the running statistics.
func (b *BatchNorm) Fold() (scale, shift []float32) {
	scale = make([]float32, b.C)
	shift = make([]float32, b.C)
	for j := range b.C {
		k := float64(b.Gamma[j]) / math.Sqrt(float64(b.RunningVar[j])+b.Eps)
		scale[j] = float32(k)
		shift[j] = float32(float64(b.Beta[j]) - float64(b.RunningMean[j])*k)
	}
	return scale, shift
}

// FoldInto folds the layer's inference form into the preceding
// convolution or dense layer: w holds its weights with the cout output
// channels innermost (HWIO, or In x Out), bias its cout biases (zeros for
// a layer without them). Afterwards the layer alone computes BN(conv(x)).
func (b *BatchNorm) FoldInto(w, bias []float32, cout int) {
	if cout != b.C || len(bias) != cout || len(w)%cout != 0 {
		panic("grad: BatchNorm.FoldInto: weights or bias do not have the layer's channel count")
	}
	scale, shift := b.Fold()
	for i := 0; i < len(w); i += cout {
		for j, k := range scale {
			w[i+j] *= k
		}
	}
	for j, k := range scale {
		bias[j] = float32(float64(bias[j])*float64(k) + float64(shift[j]))
	}
}

// ensure32 returns buf resized to n values, reusing its storage when it is
// large enough; the contents are not cleared.
func ensure32(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}
