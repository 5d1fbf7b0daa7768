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
	sums      func(x *float32, pixels, k, ld int, sum *float64)
	sqDevs    func(x *float32, pixels, k, ld int, mean, acc *float64)
	apply     func(x, y *float32, pixels, k, ld int, mean, invStd *float64, gamma, beta *float32, relu int)
	gradSums  func(dy, x, y *float32, pixels, k, ld int, mean, invStd, sumDy, sumDyH *float64, mask int)
	gradInput func(dy, x, dx *float32, pixels, k, ld int, mean, invStd, mdy, mdyh, scale *float64)
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

// ChannelSums adds x[p*ld+j] to sum[j] for every pixel p < pixels, in
// pixel order, for the len(sum) channels j.
func (s *Set) ChannelSums(x []float32, ld, pixels int, sum []float64) {
	k := len(sum)
	checkRows("ChannelSums", pixels, k, ld, x)
	vec := s.bnVec(k, pixels)
	if vec > 0 {
		s.batchnorm.sums(&x[0], pixels, vec, ld, &sum[0])
	}
	for p := range max(pixels, 0) {
		row := x[p*ld+vec : p*ld+k]
		for j, v := range row {
			sum[vec+j] += float64(v)
		}
	}
}

// ChannelSqDevs adds (x[p*ld+j] - mean[j])² to acc[j] for every pixel p <
// pixels, in pixel order, for the len(acc) channels j.
func (s *Set) ChannelSqDevs(x []float32, ld, pixels int, mean, acc []float64) {
	k := len(acc)
	checkRows("ChannelSqDevs", pixels, k, ld, x)
	mean = mean[:k]
	vec := s.bnVec(k, pixels)
	if vec > 0 {
		s.batchnorm.sqDevs(&x[0], pixels, vec, ld, &mean[0], &acc[0])
	}
	for p := range max(pixels, 0) {
		row := x[p*ld+vec : p*ld+k]
		for j, v := range row {
			d := float64(v) - mean[vec+j]
			acc[vec+j] += float64(d * d)
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
			out := float32(gamma[c]*Normalized(v, mean[c], invStd[c])) + beta[c]
			if relu && out <= 0 { // false for NaN
				out = 0
			}
			ys[j] = out
		}
	}
}

// BatchNormGradSums adds, for pixels rows of the len(sumDy) channels j,
// g = dy to sumDy[j] and g·xhat to sumDyH[j] (float64, pixel order), xhat
// = Normalized(x, mean[j], invStd[j]). With y (the forward output of a
// BatchNorm fused with a ReLU) it first zeroes dy in place where y is not
// positive (y <= 0 or NaN), the ReLU's gradient, and sums that.
func (s *Set) BatchNormGradSums(dy, x, y []float32, ld, pixels int, mean, invStd, sumDy, sumDyH []float64) {
	k := len(sumDy)
	checkRows("BatchNormGradSums", pixels, k, ld, dy, x, y)
	mean, invStd, sumDyH = mean[:k], invStd[:k], sumDyH[:k]
	vec := s.bnVec(k, pixels)
	if vec > 0 {
		yp := &x[0] // any valid pointer when there is no mask
		if y != nil {
			yp = &y[0]
		}
		s.batchnorm.gradSums(&dy[0], &x[0], yp, pixels, vec, ld, &mean[0], &invStd[0], &sumDy[0], &sumDyH[0], flag(y != nil))
	}
	for p := range max(pixels, 0) {
		o := p*ld + vec
		gs, xs := dy[o:p*ld+k], x[o:p*ld+k]
		for j, g := range gs {
			c := vec + j
			if y != nil && !(y[o+j] > 0) {
				g = 0
				gs[j] = 0
			}
			h := Normalized(xs[j], mean[c], invStd[c])
			sumDy[c] += float64(g)
			sumDyH[c] += float64(g) * float64(h) // exact: a float32 product fits a float64
		}
	}
}

// BatchNormGradInput writes, for pixels rows of the len(scale) channels j,
// dx = float32(scale[j]·((dy - mdy[j]) - xhat·mdyh[j])), xhat =
// Normalized(x, mean[j], invStd[j]), the product xhat·mdyh rounded to
// float64 before the subtraction.
func (s *Set) BatchNormGradInput(dy, x, dx []float32, ld, pixels int, mean, invStd, mdy, mdyh, scale []float64) {
	k := len(scale)
	checkRows("BatchNormGradInput", pixels, k, ld, dy, x, dx)
	mean, invStd, mdy, mdyh = mean[:k], invStd[:k], mdy[:k], mdyh[:k]
	vec := s.bnVec(k, pixels)
	if vec > 0 {
		s.batchnorm.gradInput(&dy[0], &x[0], &dx[0], pixels, vec, ld, &mean[0], &invStd[0], &mdy[0], &mdyh[0], &scale[0])
	}
	for p := range max(pixels, 0) {
		o := p*ld + vec
		gs, xs, ds := dy[o:p*ld+k], x[o:p*ld+k], dx[o:p*ld+k]
		for j, g := range gs {
			c := vec + j
			h := Normalized(xs[j], mean[c], invStd[c])
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
