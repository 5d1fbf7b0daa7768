package kernels

import "math"

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

// Clamp stores clamp(in, lo, hi) into out (the Clip op).
func Clamp(in, out []float32, lo, hi float32) {
	in = in[:len(out)]
	for i, v := range in {
		out[i] = min(max(v, lo), hi)
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
