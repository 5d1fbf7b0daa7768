package grad

// poolGeom is the geometry shared by MaxPool and AvgPool: a square K x K
// window moved by Stride over the input padded by Pad on every side, with
// PyTorch's floor rounding of the output size.
type poolGeom struct{ K, Stride, Pad int }

// out returns the output shape for input shape s.
func (g poolGeom) out(s Shape) Shape {
	if g.K < 1 || g.Stride < 1 || g.Pad < 0 || 2*g.Pad > g.K {
		panic("grad: pool needs K >= 1, Stride >= 1 and 0 <= Pad <= K/2")
	}
	oh := (s.H+2*g.Pad-g.K)/g.Stride + 1
	ow := (s.W+2*g.Pad-g.K)/g.Stride + 1
	if oh < 1 || ow < 1 {
		panic("grad: pool window larger than the padded input")
	}
	return Shape{s.N, oh, ow, s.C}
}

// window returns the input rows [h0, h1) and columns [w0, w1) that output
// position (oy, ox) covers, clipped to the input.
func (g poolGeom) window(s Shape, oy, ox int) (h0, h1, w0, w1 int) {
	h0, w0 = oy*g.Stride-g.Pad, ox*g.Stride-g.Pad
	h1, w1 = min(h0+g.K, s.H), min(w0+g.K, s.W)
	return max(h0, 0), h1, max(w0, 0), w1
}

// MaxPool is max pooling. Padding never wins (it is -Inf), and Backward
// routes each output's gradient to the first maximum of its window in scan
// order (row, then column), as PyTorch does; a NaN is a maximum.
type MaxPool struct {
	K, Stride, Pad int

	in, outS Shape
	arg      []int32 // per output value, the index of its input value
	y, dx    []float32
}

// Forward returns the pooled x and its shape; the output is a buffer of
// the layer's that the next Forward overwrites.
func (p *MaxPool) Forward(x []float32, s Shape) ([]float32, Shape) {
	if len(x) != s.Size() {
		panic("grad: MaxPool input does not match its shape")
	}
	g := poolGeom{p.K, p.Stride, p.Pad}
	o := g.out(s)
	p.in, p.outS = s, o
	p.y = ensure32(p.y, o.Size())
	if cap(p.arg) < o.Size() {
		p.arg = make([]int32, o.Size())
	}
	p.arg = p.arg[:o.Size()]
	i := 0
	for n := range s.N {
		for oy := range o.H {
			for ox := range o.W {
				h0, h1, w0, w1 := g.window(s, oy, ox)
				for c := range s.C {
					best := int32(((n*s.H+h0)*s.W+w0)*s.C + c)
					for h := h0; h < h1; h++ {
						for w := w0; w < w1; w++ {
							j := int32(((n*s.H+h)*s.W+w)*s.C + c)
							if v := x[j]; v > x[best] || (v != v && x[best] == x[best]) {
								best = j
							}
						}
					}
					p.arg[i], p.y[i] = best, x[best]
					i++
				}
			}
		}
	}
	return p.y, o
}

// Backward returns dx: each output gradient added at its window's maximum.
func (p *MaxPool) Backward(dy []float32) []float32 {
	if len(dy) != p.outS.Size() {
		panic("grad: MaxPool.Backward: dy does not match the last Forward")
	}
	p.dx = ensure32(p.dx, p.in.Size())
	clear(p.dx)
	for i, g := range dy {
		p.dx[p.arg[i]] += g
	}
	return p.dx
}

// AvgPool is average pooling. With CountIncludePad the divisor is always
// K·K (PyTorch's default); without it, the number of input values in the
// window.
type AvgPool struct {
	K, Stride, Pad  int
	CountIncludePad bool

	in, outS Shape
	y, dx    []float32
}

// divisor returns the divisor of a window clipped to [h0,h1) x [w0,w1).
func (p *AvgPool) divisor(h0, h1, w0, w1 int) float32 {
	if p.CountIncludePad {
		return float32(p.K * p.K)
	}
	return float32((h1 - h0) * (w1 - w0))
}

// Forward returns the pooled x and its shape; the output is a buffer of
// the layer's that the next Forward overwrites.
func (p *AvgPool) Forward(x []float32, s Shape) ([]float32, Shape) {
	if len(x) != s.Size() {
		panic("grad: AvgPool input does not match its shape")
	}
	g := poolGeom{p.K, p.Stride, p.Pad}
	o := g.out(s)
	p.in, p.outS = s, o
	p.y = ensure32(p.y, o.Size())
	for n := range s.N {
		for oy := range o.H {
			for ox := range o.W {
				h0, h1, w0, w1 := g.window(s, oy, ox)
				ys := p.y[((n*o.H+oy)*o.W+ox)*s.C:][:s.C]
				clear(ys)
				for h := h0; h < h1; h++ {
					for w := w0; w < w1; w++ {
						for c, v := range x[((n*s.H+h)*s.W+w)*s.C:][:s.C] {
							ys[c] += v
						}
					}
				}
				d := p.divisor(h0, h1, w0, w1)
				for c := range ys {
					ys[c] /= d
				}
			}
		}
	}
	return p.y, o
}

// Backward returns dx: each output gradient divided by its window's
// divisor and added to every input value of the window.
func (p *AvgPool) Backward(dy []float32) []float32 {
	if len(dy) != p.outS.Size() {
		panic("grad: AvgPool.Backward: dy does not match the last Forward")
	}
	s, o := p.in, p.outS
	g := poolGeom{p.K, p.Stride, p.Pad}
	p.dx = ensure32(p.dx, s.Size())
	clear(p.dx)
	for n := range s.N {
		for oy := range o.H {
			for ox := range o.W {
				h0, h1, w0, w1 := g.window(s, oy, ox)
				gs := dy[((n*o.H+oy)*o.W+ox)*s.C:][:s.C]
				d := p.divisor(h0, h1, w0, w1)
				for h := h0; h < h1; h++ {
					for w := w0; w < w1; w++ {
						for c, v := range gs {
							p.dx[((n*s.H+h)*s.W+w)*s.C+c] += v / d
						}
					}
				}
			}
		}
	}
	return p.dx
}

// GlobalAvgPool averages each channel over the image: [N,H,W,C] to
// [N,1,1,C]. The sums go in float64, pixel by pixel.
type GlobalAvgPool struct {
	in    Shape
	acc   []float64
	y, dx []float32
}

// Forward returns the per-image channel means and their shape; the output
// is a buffer of the layer's that the next Forward overwrites.
func (p *GlobalAvgPool) Forward(x []float32, s Shape) ([]float32, Shape) {
	if len(x) != s.Size() || s.Pixels() == 0 {
		panic("grad: GlobalAvgPool input does not match its shape")
	}
	p.in = s
	o := Shape{s.N, 1, 1, s.C}
	p.y = ensure32(p.y, o.Size())
	if cap(p.acc) < s.C {
		p.acc = make([]float64, s.C)
	}
	acc := p.acc[:s.C]
	hw := s.Pixels()
	for n := range s.N {
		clear(acc)
		for q := range hw {
			for c, v := range x[(n*hw+q)*s.C:][:s.C] {
				acc[c] += float64(v)
			}
		}
		for c, a := range acc {
			p.y[n*s.C+c] = float32(a / float64(hw))
		}
	}
	return p.y, o
}

// Backward returns dx: each image's dy divided by H·W at every pixel.
func (p *GlobalAvgPool) Backward(dy []float32) []float32 {
	s := p.in
	if len(dy) != s.N*s.C {
		panic("grad: GlobalAvgPool.Backward: dy does not match the last Forward")
	}
	hw := s.Pixels()
	p.dx = ensure32(p.dx, s.Size())
	d32 := float32(hw)
	for n := range s.N {
		g := dy[n*s.C:][:s.C]
		for q := range hw {
			d := p.dx[(n*hw+q)*s.C:][:s.C]
			for c, v := range g {
				d[c] = v / d32
			}
		}
	}
	return p.dx
}
