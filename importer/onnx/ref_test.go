package onnx

import (
	"math"
	"math/rand/v2"
)

// An NCHW reference for the operators the op tests use, written from the
// ONNX operator definitions with direct loops. It shares no code with the
// importer or with resnet.Eval, so layout mistakes (HWIO transposition,
// axis mapping, pad order) show up as mismatches.

// fmap is a batch-1 NCHW tensor; a vector of K values is C=K, H=W=1.
type fmap struct {
	C, H, W int
	v       []float64
}

func newFmap(c, h, w int) fmap { return fmap{c, h, w, make([]float64, c*h*w)} }

func (m fmap) at(c, h, w int) float64     { return m.v[(c*m.H+h)*m.W+w] }
func (m fmap) set(c, h, w int, v float64) { m.v[(c*m.H+h)*m.W+w] = v }

// vec makes a vector fmap.
func vec(v []float64) fmap { return fmap{len(v), 1, 1, v} }

// rnd returns n deterministic pseudo-random values in [-1, 1).
func rnd(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]float32, n)
	for k := range out {
		out[k] = float32(r.Float64()*2 - 1)
	}
	return out
}

// positive returns n deterministic values in [0.5, 1.5).
func positive(seed uint64, n int) []float32 {
	v := rnd(seed, n)
	for k := range v {
		v[k] = v[k]/2 + 1
	}
	return v
}

func (m fmap) nhwc() []float32 {
	out := make([]float32, len(m.v))
	for c := range m.C {
		for h := range m.H {
			for w := range m.W {
				out[(h*m.W+w)*m.C+c] = float32(m.at(c, h, w))
			}
		}
	}
	return out
}

func fromNHWC(v []float32, c, h, w int) fmap {
	m := newFmap(c, h, w)
	for cc := range c {
		for hh := range h {
			for ww := range w {
				m.set(cc, hh, ww, float64(v[(hh*w+ww)*c+cc]))
			}
		}
	}
	return m
}

// refConv is ONNX Conv with group 1; w is OIHW, p is [top,left,bottom,right].
func refConv(x fmap, w []float32, M, kh, kw int, bias []float32, s, d [2]int, p [4]int) fmap {
	oh := (x.H+p[0]+p[2]-d[0]*(kh-1)-1)/s[0] + 1
	ow := (x.W+p[1]+p[3]-d[1]*(kw-1)-1)/s[1] + 1
	out := newFmap(M, oh, ow)
	for m := range M {
		for y := range oh {
			for z := range ow {
				var sum float64
				if bias != nil {
					sum = float64(bias[m])
				}
				for c := range x.C {
					for i := range kh {
						for j := range kw {
							ih, iw := y*s[0]-p[0]+i*d[0], z*s[1]-p[1]+j*d[1]
							if ih >= 0 && ih < x.H && iw >= 0 && iw < x.W {
								sum += x.at(c, ih, iw) * float64(w[((m*x.C+c)*kh+i)*kw+j])
							}
						}
					}
				}
				out.set(m, y, z, sum)
			}
		}
	}
	return out
}

// refPool is MaxPool/AveragePool. In ceil mode a window must start inside
// the input or its leading padding, and count_include_pad counts the
// padding but not the overhang past it (the PyTorch rules).
func refPool(x fmap, isMax bool, k, s [2]int, p [4]int, ceil, includePad bool) fmap {
	outLen := func(in, k, s, pb, pa int) int {
		n := in + pb + pa - k
		if ceil {
			o := (n+s-1)/s + 1
			if (o-1)*s >= in+pb {
				o--
			}
			return o
		}
		return n/s + 1
	}
	oh, ow := outLen(x.H, k[0], s[0], p[0], p[2]), outLen(x.W, k[1], s[1], p[1], p[3])
	out := newFmap(x.C, oh, ow)
	for c := range x.C {
		for y := range oh {
			for z := range ow {
				h0, w0 := y*s[0]-p[0], z*s[1]-p[1]
				m, sum, n := math.Inf(-1), 0.0, 0
				for ih := max(h0, 0); ih < min(h0+k[0], x.H); ih++ {
					for iw := max(w0, 0); iw < min(w0+k[1], x.W); iw++ {
						v := x.at(c, ih, iw)
						m = math.Max(m, v)
						sum += v
						n++
					}
				}
				switch {
				case isMax:
					out.set(c, y, z, m)
				case includePad:
					area := (min(h0+k[0], x.H+p[2]) - h0) * (min(w0+k[1], x.W+p[3]) - w0)
					out.set(c, y, z, sum/float64(area))
				default:
					out.set(c, y, z, sum/float64(n))
				}
			}
		}
	}
	return out
}

func refGAP(x fmap) fmap {
	out := make([]float64, x.C)
	for c := range x.C {
		for h := range x.H {
			for w := range x.W {
				out[c] += x.at(c, h, w)
			}
		}
		out[c] /= float64(x.H * x.W)
	}
	return vec(out)
}

func refGMP(x fmap) fmap {
	out := make([]float64, x.C)
	for c := range x.C {
		out[c] = math.Inf(-1)
		for h := range x.H {
			for w := range x.W {
				out[c] = math.Max(out[c], x.at(c, h, w))
			}
		}
	}
	return vec(out)
}

// refMap applies f(c, v) to every element.
func refMap(x fmap, f func(c int, v float64) float64) fmap {
	out := newFmap(x.C, x.H, x.W)
	for c := range x.C {
		for h := range x.H {
			for w := range x.W {
				out.set(c, h, w, f(c, x.at(c, h, w)))
			}
		}
	}
	return out
}

func refRelu(x fmap) fmap { return refMap(x, func(_ int, v float64) float64 { return math.Max(v, 0) }) }

func refAdd(x, y fmap) fmap {
	out := newFmap(x.C, x.H, x.W)
	for k := range out.v {
		out.v[k] = x.v[k] + y.v[k]
	}
	return out
}

// refBN is BatchNormalization in inference mode, straight from its formula.
func refBN(x fmap, scale, bias, mean, variance []float32, eps float64) fmap {
	return refMap(x, func(c int, v float64) float64 {
		return (v-float64(mean[c]))/math.Sqrt(float64(variance[c])+eps)*float64(scale[c]) + float64(bias[c])
	})
}

// refPad pads (C, H, W) by before/after with value.
func refPad(x fmap, before, after [3]int, value float64) fmap {
	out := newFmap(x.C+before[0]+after[0], x.H+before[1]+after[1], x.W+before[2]+after[2])
	for c := range out.C {
		for h := range out.H {
			for w := range out.W {
				ic, ih, iw := c-before[0], h-before[1], w-before[2]
				v := value
				if ic >= 0 && ic < x.C && ih >= 0 && ih < x.H && iw >= 0 && iw < x.W {
					v = x.at(ic, ih, iw)
				}
				out.set(c, h, w, v)
			}
		}
	}
	return out
}

// refSlice keeps start, start+step, ... < end on each of (C, H, W).
func refSlice(x fmap, start, end, step [3]int) fmap {
	n := func(a int) int { return (end[a] - start[a] + step[a] - 1) / step[a] }
	out := newFmap(n(0), n(1), n(2))
	for c := range out.C {
		for h := range out.H {
			for w := range out.W {
				out.set(c, h, w, x.at(start[0]+c*step[0], start[1]+h*step[1], start[2]+w*step[2]))
			}
		}
	}
	return out
}

// refConcat concatenates along axis 0=C, 1=H, 2=W.
func refConcat(axis int, xs ...fmap) fmap {
	d := [3]int{xs[0].C, xs[0].H, xs[0].W}
	d[axis] = 0
	for _, x := range xs {
		d[axis] += [3]int{x.C, x.H, x.W}[axis]
	}
	out := newFmap(d[0], d[1], d[2])
	off := 0
	for _, x := range xs {
		for c := range x.C {
			for h := range x.H {
				for w := range x.W {
					o := [3]int{c, h, w}
					o[axis] += off
					out.set(o[0], o[1], o[2], x.at(c, h, w))
				}
			}
		}
		off += [3]int{x.C, x.H, x.W}[axis]
	}
	return out
}

// refGemm is y = alpha * x W + beta * b with W [K][N] (after any transpose).
func refGemm(x fmap, w func(k, o int) float32, N int, bias []float32, alpha, beta float64) fmap {
	out := make([]float64, N)
	for o := range N {
		for k := range x.v {
			out[o] += x.v[k] * float64(w(k, o))
		}
		out[o] *= alpha
		if bias != nil {
			out[o] += beta * float64(bias[o])
		}
	}
	return vec(out)
}

func refSoftmax(x fmap) fmap {
	m := math.Inf(-1)
	for _, v := range x.v {
		m = math.Max(m, v)
	}
	out := make([]float64, len(x.v))
	var sum float64
	for k, v := range x.v {
		out[k] = math.Exp(v - m)
		sum += out[k]
	}
	for k := range out {
		out[k] /= sum
	}
	return vec(out)
}

// flat turns a feature map into its NCHW-order vector.
func flat(x fmap) fmap { return vec(append([]float64(nil), x.v...)) }
