package grad

import (
	"math"
	"sync"

	"github.com/edge-resnet/edge-resnet/kernels"
)

// BatchNorm normalizes each channel over the N·H·W values of a batch, as
// PyTorch's BatchNorm2d: in training mode with the batch mean and the
// biased batch variance, updating RunningMean and RunningVar with
// Momentum (running = (1-Momentum)·running + Momentum·batch, the running
// variance taking the unbiased batch variance); in eval mode with the
// running statistics. Per-channel sums go in float64 in a fixed order.
// The passes run on the vector kernels of a kernels.Set, which give the
// Go code's results bit for bit.
type BatchNorm struct {
	C        int
	Momentum float64 // 0.1, PyTorch's default
	Eps      float64 // 1e-5

	// Relu fuses a ReLU after the layer: Forward returns max(BN(x), 0)
	// (as ReLU.Forward does) and Backward takes dy as zero where that
	// output was not positive (ReLU.Backward), recomputing the output from
	// x; dy itself is not changed.
	Relu bool
	Set  *kernels.Set // nil means kernels.Best()

	Gamma, Beta   []float32 // scale and shift, initially 1 and 0
	DGamma, DBeta []float32 // their gradients, added to by Backward

	RunningMean, RunningVar []float32 // initially 0 and 1

	// Threads splits the statistics over ranges of channels and the
	// elementwise passes over ranges of pixels; each channel's sums run
	// in the same order whatever the count, so results do not depend on
	// it. 0 means 1; more than 1 costs a goroutine per pass.
	Threads int

	shape  Shape
	train  bool      // the last Forward was in training mode
	x      []float32 // the input of the last Forward (not copied): Backward recomputes xhat from it
	invStd []float64 // per channel, 1/sqrt(var+eps) of the last Forward
	mean   []float64 // per channel scratch
	acc    []float64 // per channel scratch
	scale  []float64 // per channel, Gamma·invStd in Backward
	mdy    []float64 // per channel, Backward's Σdy, then its mean
	mdyh   []float64 // per channel, Backward's Σdy·xhat, then its mean
	y, dx  []float32
}

// NewBatchNorm returns a BatchNorm over c channels with PyTorch's defaults.
func NewBatchNorm(c int) *BatchNorm {
	b := &BatchNorm{
		C: c, Momentum: 0.1, Eps: 1e-5,
		Gamma: make([]float32, c), Beta: make([]float32, c),
		DGamma: make([]float32, c), DBeta: make([]float32, c),
		RunningMean: make([]float32, c), RunningVar: make([]float32, c),
		invStd: make([]float64, c), mean: make([]float64, c), acc: make([]float64, c), scale: make([]float64, c),
		mdy: make([]float64, c), mdyh: make([]float64, c),
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
// layer's that the next Forward overwrites. It keeps x, not a copy:
// Backward recomputes the normalized input from it, so the caller leaves
// x unchanged until then (ForwardEval too).
func (b *BatchNorm) Forward(x []float32, s Shape) []float32 {
	b.begin(x, s, true)
	if b.threads() == 1 {
		b.statsRange(x, 0, b.C)
	} else {
		parallel(b.threads(), b.C, func(j0, j1 int) { b.statsRange(x, j0, j1) })
	}
	b.normalize(x)
	return b.y
}

// threads returns the threads the layer runs on, at least 1.
func (b *BatchNorm) threads() int { return max(1, b.Threads) }

// statsRange computes the batch mean and inverse standard deviation of
// channels [j0, j1) and updates their running statistics. Each channel's
// sums run over the pixels in order, whatever the range.
func (b *BatchNorm) statsRange(x []float32, j0, j1 int) {
	c := b.C
	m := len(x) / c
	mean, acc := b.mean[j0:j1], b.acc[j0:j1]
	clear(mean)
	clear(acc)
	b.set().ChannelMoments(x[j0:], c, m, mean, acc)
	for j := range mean {
		sum := mean[j]
		mean[j] = sum / float64(m)
		acc[j] = max(0, acc[j]-sum*mean[j]) // Σ(x-mean)², rounding kept from going negative
	}
	for j := j0; j < j1; j++ {
		variance := b.acc[j] / float64(m)
		b.invStd[j] = 1 / math.Sqrt(variance+b.Eps)
		unbiased := variance // a single value per channel has no unbiased variance
		if m > 1 {
			unbiased = b.acc[j] / float64(m-1)
		}
		b.RunningMean[j] = float32((1-b.Momentum)*float64(b.RunningMean[j]) + b.Momentum*b.mean[j])
		b.RunningVar[j] = float32((1-b.Momentum)*float64(b.RunningVar[j]) + b.Momentum*unbiased)
	}
}

// set returns the kernels the layer runs on.
func (b *BatchNorm) set() *kernels.Set {
	if b.Set != nil {
		return b.Set
	}
	return kernels.Best()
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
	b.x = x[:s.Size()]
	b.y = ensure32(b.y, s.Size())
}

// normalize writes y = Gamma·xhat + Beta (xhat = (x-mean)·invStd; with
// Relu, max(y, 0)), over ranges of pixels in parallel.
func (b *BatchNorm) normalize(x []float32) {
	if b.threads() == 1 {
		b.normalizeRange(x, 0, len(x)/b.C)
		return
	}
	parallel(b.threads(), len(x)/b.C, func(p0, p1 int) { b.normalizeRange(x, p0, p1) })
}

// normalizeRange is normalize on pixels [p0, p1).
func (b *BatchNorm) normalizeRange(x []float32, p0, p1 int) {
	c := b.C
	b.set().BatchNormApply(x[p0*c:p1*c], b.y[p0*c:p1*c], c, p1-p0, b.mean[:c], b.invStd[:c], b.Gamma, b.Beta, b.Relu)
}

// Backward returns dx for the output gradient dy of the last Forward and
// adds Σdy·xhat to DGamma and Σdy to DBeta (with Relu, dy counts as zero
// where the output was not positive; dy is not changed). After a training Forward,
// dx = Gamma·invStd·(dy - mean(dy) - xhat·mean(dy·xhat)); after
// ForwardEval, dx = Gamma·invStd·dy. dx is a buffer of the layer's.
func (b *BatchNorm) Backward(dy []float32) []float32 {
	if len(dy) != b.shape.Size() {
		panic("grad: BatchNorm.Backward: dy does not match the last Forward")
	}
	b.dx = ensure32(b.dx, len(dy))
	t, c, m := b.threads(), b.C, len(dy)/b.C
	if t == 1 {
		b.sumsRange(dy, 0, c)
		b.dxRange(dy, 0, m)
		return b.dx
	}
	parallel(t, c, func(j0, j1 int) { b.sumsRange(dy, j0, j1) })
	parallel(t, m, func(p0, p1 int) { b.dxRange(dy, p0, p1) })
	return b.dx
}

// sumsRange adds channels [j0, j1)'s Σdy and Σdy·xhat to DBeta and DGamma
// (with Relu, dy gated by where the output was positive) and
// leaves in mdy and mdyh their means over the batch (zeros after
// ForwardEval), and in scale Gamma·invStd, for dxRange.
func (b *BatchNorm) sumsRange(dy []float32, j0, j1 int) {
	c := b.C
	m := len(dy) / c
	sumDy, sumDyH := b.mdy[j0:j1], b.mdyh[j0:j1]
	clear(sumDy)
	clear(sumDyH)
	gamma, beta := b.reluGate(j0, j1)
	b.set().BatchNormGradSums(dy[j0:], b.x[j0:], c, m, b.mean[j0:j1], b.invStd[j0:j1], gamma, beta, sumDy, sumDyH)
	for j := j0; j < j1; j++ {
		b.DBeta[j] += float32(b.mdy[j])
		b.DGamma[j] += float32(b.mdyh[j])
		if b.train {
			b.mdy[j] /= float64(m)
			b.mdyh[j] /= float64(m)
		} else {
			b.mdy[j], b.mdyh[j] = 0, 0
		}
		b.scale[j] = float64(b.Gamma[j]) * b.invStd[j]
	}
}

// dxRange writes dx on pixels [p0, p1) from sumsRange's results.
func (b *BatchNorm) dxRange(dy []float32, p0, p1 int) {
	c := b.C
	gamma, beta := b.reluGate(0, c)
	b.set().BatchNormGradInput(dy[p0*c:p1*c], b.x[p0*c:p1*c], b.dx[p0*c:p1*c], c, p1-p0,
		b.mean[:c], b.invStd[:c], gamma, beta, b.mdy[:c], b.mdyh[:c], b.scale[:c])
}

// reluGate returns what the backward kernels take to recompute the fused
// ReLU's gradient on channels [j0, j1): Gamma and Beta, or nils without a
// ReLU.
func (b *BatchNorm) reluGate(j0, j1 int) (gamma, beta []float32) {
	if !b.Relu {
		return nil, nil
	}
	return b.Gamma[j0:j1], b.Beta[j0:j1]
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

// parallel splits [0, n) into up to threads contiguous ranges and runs fn
// on each, the first on this goroutine.
func parallel(threads, n int, fn func(i0, i1 int)) {
	t := min(threads, n)
	if t <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 1; i < t; i++ {
		wg.Add(1)
		go func(i0, i1 int) {
			defer wg.Done()
			fn(i0, i1)
		}(i*n/t, (i+1)*n/t)
	}
	fn(0, n/t)
	wg.Wait()
}

// elementGrain is the fewest values an elementwise pass gives a thread:
// below it a goroutine costs more than it saves.
const elementGrain = 1 << 15

// elementThreads returns the threads an elementwise pass over n values
// runs on: threads (0 meaning 1), fewer on small tensors.
func elementThreads(threads, n int) int {
	return max(1, min(threads, n/elementGrain))
}
