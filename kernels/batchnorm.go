package kernels

import "fmt"

// The passes of a training-mode BatchNorm (internal/grad.BatchNorm) over
// NHWC data: rows of pixels, ld values apart, whose first k values are the
// channels a call works on (the caller offsets the slices to its first
// channel and pixel). Per-channel sums run in float64 over the pixels in
// order, one channel per vector lane, so a channel's sum is the same
// whatever the vector width, the channel split or the thread count: the
// vector kernels and the Go code below give bit-identical results. Each
// product whose rounding matters is converted explicitly, which keeps the
// Go compiler from fusing it into an FMA on arm64 (the vector kernels do
// not fuse either).

// batchNormImpl holds the vector kernels of one ISA level; each does the
// first k channels of its call, k a multiple of lanes, and the Go code
// does the rest.
type batchNormImpl struct {
	lanes     int // channels per vector (float64 lanes)
	moments   func(x *float32, pixels, k, ld int, sum, sumSq *float64)
	apply     func(x, y *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int)
	gradSums  func(dy, x *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int, sumDy, sumDyH *float64)
	gradInput func(dy, x, dx *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int, mdy, mdyh, scale *float64)
}

// batchNormReg holds the vector kernels of the BatchNorm passes.
var batchNormReg = registry[*batchNormImpl]{primitive: "batchnorm (training)"}

// bnVec returns the channels of k that the Set's vector kernel does (a
// multiple of its lanes; 0 without one) for rows of pixels values.
func (s *Set) bnVec(k, pixels int) int {
	if s.batchnorm == nil || pixels <= 0 {
		return 0
	}
	return k / s.batchnorm.lanes * s.batchnorm.lanes
}

// checkRows panics unless every slice holds pixels rows of k values ld
// apart (the last row only k).
func checkRows(op string, pixels, k, ld int, rows ...[]float32) {
	if pixels <= 0 || k <= 0 {
		return
	}
	need := (pixels-1)*ld + k
	for _, r := range rows {
		if r != nil && (ld < k || len(r) < need) {
			panic(fmt.Sprintf("kernels.%s: %d pixels of %d channels at stride %d in %d values", op, pixels, k, ld, len(r)))
		}
	}
}

// ChannelMoments adds x[p*ld+j] to sum[j] and its square to sumSq[j] for
// every pixel p < pixels, in pixel order, for the len(sum) channels j: one
// pass over x for a batch's mean and variance. The squares are exact in
// float64, and float64 sums keep the variance Σx²/n - mean² accurate
// unless a channel's mean exceeds its deviation by about 10⁵ (2⁻⁵³·n
// relative error on Σx², n the pixels).
func (s *Set) ChannelMoments(x []float32, ld, pixels int, sum, sumSq []float64) {
	k := len(sum)
	checkRows("ChannelMoments", pixels, k, ld, x)
	sumSq = sumSq[:k]
	vec := s.bnVec(k, pixels)
	if vec > 0 {
		s.batchnorm.moments(&x[0], pixels, vec, ld, &sum[0], &sumSq[0])
	}
	for p := range max(pixels, 0) {
		row := x[p*ld+vec : p*ld+k]
		for j, v := range row {
			sum[vec+j] += float64(v)
			sumSq[vec+j] += float64(float64(v) * float64(v))
		}
	}
}

// Normalized returns xhat = float32((x - mean)·invStd), the normalized
// value of one input, as every pass computes it: the backward passes
// recompute it from the forward's input rather than keep it.
func Normalized(x float32, mean, invStd float64) float32 {
	return float32((float64(x) - mean) * invStd)
}

// BatchNormApply writes, for pixels rows of the len(mean) channels j,
// y = gamma[j]·xhat + beta[j] (in float32, the product rounded), xhat =
// Normalized(x, mean[j], invStd[j]), then with relu y = max(y, 0): +0 for
// y <= 0 (so -0 too), NaN kept, as internal/grad.ReLU.
func (s *Set) BatchNormApply(x, y []float32, ld, pixels int, mean, invStd []float64, gamma, beta []float32, relu bool) {
	k := len(mean)
	checkRows("BatchNormApply", pixels, k, ld, x, y)
	invStd, gamma, beta = invStd[:k], gamma[:k], beta[:k]
	vec := s.bnVec(k, pixels)
	if vec > 0 {
		s.batchnorm.apply(&x[0], &y[0], pixels, vec, ld, &mean[0], &invStd[0], &gamma[0], &beta[0], flag(relu))
	}
	for p := range max(pixels, 0) {
		o := p*ld + vec
		xs, ys := x[o:p*ld+k], y[o:p*ld+k]
		for j, v := range xs {
			c := vec + j
			out := bnOutput(gamma[c], Normalized(v, mean[c], invStd[c]), beta[c])
			if relu && out <= 0 { // false for NaN
				out = 0
			}
			ys[j] = out
		}
	}
}

// bnOutput is BatchNormApply's output before the ReLU, gamma·xhat + beta
// in float32 with the product rounded; the backward passes recompute it
// for the ReLU's gradient.
func bnOutput(gamma, xhat, beta float32) float32 {
	return float32(gamma*xhat) + beta
}

// reluArgs returns the pointers and flag the vector kernels take for an
// optional fused ReLU (any valid pointer when there is none).
func reluArgs(x, gamma, beta []float32) (*float32, *float32, int) {
	if gamma == nil {
		return &x[0], &x[0], 0
	}
	return &gamma[0], &beta[0], 1
}

// BatchNormGradSums adds, for pixels rows of the len(sumDy) channels j,
// g to sumDy[j] and g·xhat to sumDyH[j] (float64, pixel order), xhat =
// Normalized(x, mean[j], invStd[j]) and g = dy; for a BatchNorm fused
// with a ReLU (gamma and beta not nil) g = 0 where its output
// bnOutput(gamma, xhat, beta) was not positive (<= 0 or NaN): the ReLU's
// gradient, recomputed from x (which costs less than reading the output
// back). dy is not changed.
func (s *Set) BatchNormGradSums(dy, x []float32, ld, pixels int, mean, invStd []float64, gamma, beta []float32, sumDy, sumDyH []float64) {
	k := len(sumDy)
	checkRows("BatchNormGradSums", pixels, k, ld, dy, x)
	mean, invStd, sumDyH = mean[:k], invStd[:k], sumDyH[:k]
	if gamma != nil {
		gamma, beta = gamma[:k], beta[:k]
	}
	vec := s.bnVec(k, pixels)
	if vec > 0 {
		gp, bp, relu := reluArgs(x, gamma, beta)
		s.batchnorm.gradSums(&dy[0], &x[0], pixels, vec, ld, &mean[0], &invStd[0], gp, bp, relu, &sumDy[0], &sumDyH[0])
	}
	for p := range max(pixels, 0) {
		o := p*ld + vec
		gs, xs := dy[o:p*ld+k], x[o:p*ld+k]
		for j, g := range gs {
			c := vec + j
			h := Normalized(xs[j], mean[c], invStd[c])
			if gamma != nil && !(bnOutput(gamma[c], h, beta[c]) > 0) {
				g = 0
			}
			sumDy[c] += float64(g)
			sumDyH[c] += float64(g) * float64(h) // exact: a float32 product fits a float64
		}
	}
}

// BatchNormGradInput writes, for pixels rows of the len(scale) channels j,
// dx = float32(scale[j]·((g - mdy[j]) - xhat·mdyh[j])), xhat =
// Normalized(x, mean[j], invStd[j]), the product xhat·mdyh rounded to
// float64 before the subtraction, and g = dy gated by the fused ReLU as in
// BatchNormGradSums (gamma and beta nil when there is none).
func (s *Set) BatchNormGradInput(dy, x, dx []float32, ld, pixels int, mean, invStd []float64, gamma, beta []float32, mdy, mdyh, scale []float64) {
	k := len(scale)
	checkRows("BatchNormGradInput", pixels, k, ld, dy, x, dx)
	mean, invStd, mdy, mdyh = mean[:k], invStd[:k], mdy[:k], mdyh[:k]
	if gamma != nil {
		gamma, beta = gamma[:k], beta[:k]
	}
	vec := s.bnVec(k, pixels)
	if vec > 0 {
		gp, bp, relu := reluArgs(x, gamma, beta)
		s.batchnorm.gradInput(&dy[0], &x[0], &dx[0], pixels, vec, ld, &mean[0], &invStd[0], gp, bp, relu, &mdy[0], &mdyh[0], &scale[0])
	}
	for p := range max(pixels, 0) {
		o := p*ld + vec
		gs, xs, ds := dy[o:p*ld+k], x[o:p*ld+k], dx[o:p*ld+k]
		for j, g := range gs {
			c := vec + j
			h := Normalized(xs[j], mean[c], invStd[c])
			if gamma != nil && !(bnOutput(gamma[c], h, beta[c]) > 0) {
				g = 0
			}
			ds[j] = float32(scale[c] * ((float64(g) - mdy[c]) - float64(float64(h)*mdyh[c])))
		}
	}
}

// reluMaskImpl is the vector kernel of ReLUMask on n a multiple of lanes.
type reluMaskImpl struct {
	lanes int
	mask  func(dy, y *float32, n int)
}

// reluMaskReg holds the vector kernels of ReLUMask.
var reluMaskReg = registry[*reluMaskImpl]{primitive: "relu gradient (training)"}

// ReLUMask sets dy[i] = 0 where !(y[i] > 0) (y <= 0 or NaN): the gradient
// of a ReLU whose output was y, in place.
func (s *Set) ReLUMask(dy, y []float32) {
	y = y[:len(dy)]
	vec := 0
	if k := s.reluMask; k != nil {
		if vec = len(dy) / k.lanes * k.lanes; vec > 0 {
			k.mask(&dy[0], &y[0], vec)
		}
	}
	for i, v := range y[vec:] {
		if !(v > 0) {
			dy[vec+i] = 0
		}
	}
}

// flag is 1 for true, the vector kernels' form of a bool argument.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}
