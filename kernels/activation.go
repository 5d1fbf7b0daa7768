package kernels

import (
	"fmt"
	"math"
)

// Element-wise activations and products beyond ReLU. in and out may be the
// same slice; out's length is the element count.

// Sigmoid stores 1/(1+exp(-in)) into out.
func Sigmoid(in, out []float32) {
	in = in[:len(out)]
	for i, v := range in {
		out[i] = float32(1 / (1 + math.Exp(-float64(v))))
	}
}

// HardSigmoid stores clamp(alpha*in + beta, 0, 1) into out, the product and
// sum rounded once (float64), as the reference evaluator computes it.
func HardSigmoid(in, out []float32, alpha, beta float32) {
	in = in[:len(out)]
	for i, v := range in {
		out[i] = float32(min(max(float64(alpha)*float64(v)+float64(beta), 0), 1))
	}
}

// Clamp stores clamp(in, lo, hi) into out (the Clip op): Go's
// min(max(x, lo), hi), NaN passing. Whole vectors go through the Set's
// clamp kernel; on amd64 its comparisons let a zero equal to a bound of
// zero keep its sign (Go's max(-0, +0) is +0).
func (s *Set) Clamp(in, out []float32, lo, hi float32) {
	clampRows(s.clamp, out, in[:len(out)], 1, len(out), len(out), lo, hi)
}

// AddInPlace sets v[i] += res[i] and then, with relu, v[i] = 0 where it is
// negative (NaN and -0 kept), on the Set's epilogue kernel (the one after
// Winograd's output transform): a residual sum and its ReLU in one pass.
func (s *Set) AddInPlace(v, res []float32, relu bool) {
	s.epilogue.run(v, nil, res[:len(v)], relu)
}

// clampImpl is a vector kernel of Clamp: rows x n values of src at stride
// ld (in elements) clamped into dst, the same layout (dst may be src), for
// n a positive multiple of lanes and rows >= 1.
type clampImpl struct {
	lanes int
	rows  func(dst, src *float32, rows, n, ld int, lo, hi float32)
}

// clampRows is Clamp of rows x n values of src at stride ld into dst (the
// same layout; dst may be src), whole vectors by k (nil: Go).
func clampRows(k *clampImpl, dst, src []float32, rows, n, ld int, lo, hi float32) {
	if rows <= 0 || n <= 0 {
		return
	}
	if need := (rows-1)*ld + n; ld < n || len(dst) < need || len(src) < need {
		panic(fmt.Sprintf("kernels.Clamp: %d rows of %d at stride %d in %d and %d values", rows, n, ld, len(src), len(dst)))
	}
	vec := 0
	if k != nil {
		if vec = n / k.lanes * k.lanes; vec > 0 {
			k.rows(&dst[0], &src[0], rows, vec, ld, lo, hi)
		}
	}
	for r := 0; r < rows && vec < n; r++ {
		d, s := dst[r*ld+vec:r*ld+n], src[r*ld+vec:r*ld+n]
		for i, v := range s {
			d[i] = min(max(v, lo), hi)
		}
	}
}

// Mul stores a*b into out, where b has len(out) values or one value per
// channel of NHWC data with len(b) channels (broadcast over pixels).
func Mul(a, b, out []float32) {
	a = a[:len(out)]
	if len(b) == len(out) {
		b = b[:len(out)]
		for i := range out {
			out[i] = a[i] * b[i]
		}
		return
	}
	c := len(b)
	if c == 0 || len(out)%c != 0 {
		panic("kernels.Mul: b is neither the same size nor a channel vector")
	}
	for p := 0; p < len(out); p += c {
		src, dst := a[p:p+c], out[p:p+c]
		for i := range dst {
			dst[i] = src[i] * b[i]
		}
	}
}
