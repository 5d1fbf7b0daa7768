package grad

import (
	"math"
	"sync"
)

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

	// Threads splits the statistics over ranges of channels and the
	// elementwise passes over ranges of pixels; each channel's sums run
	// in the same order whatever the count, so results do not depend on
	// it. 0 means 1; more than 1 costs a goroutine per pass.
	Threads int

	shape  Shape
	train  bool      // the last Forward was in training mode
	xhat   []float32 // the normalized input, kept for Backward
	invStd []float64 // per channel, 1/sqrt(var+eps) of the last Forward
	mean   []float64 // per channel scratch
	acc    []float64 // per channel scratch
	scale  []float64 // per channel, Gamma·invStd in Backward
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
	k := len(mean)
	clear(mean)
	p := 0
	for ; p+2 <= m; p += 2 { // two pixels a pass, still added in order
		x0, x1 := x[p*c+j0:][:k], x[(p+1)*c+j0:][:k]
		for j := range mean {
			mean[j] = mean[j] + float64(x0[j]) + float64(x1[j])
		}
	}
	for ; p < m; p++ {
		xs := x[p*c+j0:][:k]
		for j := range mean {
			mean[j] += float64(xs[j])
		}
	}
	for j := range mean {
		mean[j] /= float64(m)
	}
	clear(acc)
	acc = acc[:k]
	for p = 0; p+2 <= m; p += 2 {
		x0, x1 := x[p*c+j0:][:k], x[(p+1)*c+j0:][:k]
		for j := range acc {
			d0 := float64(x0[j]) - mean[j]
			d1 := float64(x1[j]) - mean[j]
			acc[j] = acc[j] + d0*d0 + d1*d1
		}
	}
	for ; p < m; p++ {
		xs := x[p*c+j0:][:k]
		for j := range acc {
			d := float64(xs[j]) - mean[j]
			acc[j] += d * d
		}
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

// normalize writes xhat = (x-mean)·invStd and y = Gamma·xhat + Beta, over
// ranges of pixels in parallel.
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
	mean, invStd := b.mean[:c], b.invStd[:c]
	gamma, beta := b.Gamma[:c], b.Beta[:c]
	for p := p0 * c; p < p1*c; p += c {
		xs, hs, ys := x[p:p+c], b.xhat[p:p+c], b.y[p:p+c]
		for j := range c {
			h := float32((float64(xs[j]) - mean[j]) * invStd[j])
			hs[j] = h
			ys[j] = gamma[j]*h + beta[j]
		}
	}
}

// Backward returns dx for the output gradient dy of the last Forward and
// adds Σdy·xhat to DGamma and Σdy to DBeta. After a training Forward,
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
// and leaves in mean and acc their means over the batch (zeros after
// ForwardEval), and in scale Gamma·invStd, for dxRange.
func (b *BatchNorm) sumsRange(dy []float32, j0, j1 int) {
	c := b.C
	m := len(dy) / c
	sumDy, sumDyH := b.mean[j0:j1], b.acc[j0:j1] // the statistics are no longer needed
	clear(sumDy)
	clear(sumDyH)
	k := len(sumDy)
	sumDyH = sumDyH[:k]
	p := 0
	for ; p+2 <= m; p += 2 { // two pixels a pass, still added in order
		g0s, h0s := dy[p*c+j0:][:k], b.xhat[p*c+j0:][:k]
		g1s, h1s := dy[(p+1)*c+j0:][:k], b.xhat[(p+1)*c+j0:][:k]
		for j := range sumDy {
			g0, g1 := float64(g0s[j]), float64(g1s[j])
			sumDy[j] = sumDy[j] + g0 + g1
			sumDyH[j] = sumDyH[j] + g0*float64(h0s[j]) + g1*float64(h1s[j])
		}
	}
	for ; p < m; p++ {
		gs, hs := dy[p*c+j0:][:k], b.xhat[p*c+j0:][:k]
		for j := range sumDy {
			g := float64(gs[j])
			sumDy[j] += g
			sumDyH[j] += g * float64(hs[j])
		}
	}
	for j := j0; j < j1; j++ {
		b.DBeta[j] += float32(b.mean[j])
		b.DGamma[j] += float32(b.acc[j])
		if b.train {
			b.mean[j] /= float64(m)
			b.acc[j] /= float64(m)
		} else {
			b.mean[j], b.acc[j] = 0, 0
		}
		b.scale[j] = float64(b.Gamma[j]) * b.invStd[j]
	}
}

// dxRange writes dx on pixels [p0, p1) from sumsRange's results.
func (b *BatchNorm) dxRange(dy []float32, p0, p1 int) {
	c := b.C
	sumDy, sumDyH, scale := b.mean[:c], b.acc[:c], b.scale[:c]
	for p := p0 * c; p < p1*c; p += c {
		gs, hs, dx := dy[p:p+c], b.xhat[p:p+c], b.dx[p:p+c]
		for j := range c {
			dx[j] = float32(scale[j] * (float64(gs[j]) - sumDy[j] - float64(hs[j])*sumDyH[j]))
		}
	}
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
