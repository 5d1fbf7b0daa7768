package graph

import (
	"fmt"
	"math"
)

// Eval runs the graph with plain loops straight from the definitions of the
// operators, in float64 accumulation. It is slow and allocates; it is the
// oracle that the planned, fused, kernel-driven execution is tested against,
// and it runs graphs before and after Fuse alike. input is NHWC.
func (g *Graph) Eval(input []float32) ([]float32, error) {
	if err := g.InferShapes(); err != nil {
		return nil, err
	}
	if len(input) != g.Input().Size() {
		return nil, fmt.Errorf("%w: input has %d values, want %d (%v)", ErrInvalid, len(input), g.Input().Size(), g.Input())
	}
	vals := make([][]float32, len(g.Nodes))
	vals[0] = append([]float32(nil), input...)
	for i := 1; i < len(g.Nodes); i++ {
		n := g.Nodes[i]
		x := vals[n.Inputs[0]]
		xs := g.Nodes[n.Inputs[0]].Shape
		s := n.Shape
		out := make([]float32, s.Size())
		switch n.Op {
		case OpConv:
			evalConv(n.Conv, x, xs, out, s)
			if len(n.Inputs) == 2 {
				addInto(out, vals[n.Inputs[1]])
			}
		case OpAffine:
			for p := 0; p < xs.H*xs.W; p++ {
				for c := 0; c < xs.C; c++ {
					out[p*xs.C+c] = x[p*xs.C+c]*n.Affine.Scale[c] + n.Affine.Shift[c]
				}
			}
		case OpRelu:
			for j, v := range x {
				out[j] = max(v, 0)
			}
		case OpAdd:
			copy(out, x)
			addInto(out, vals[n.Inputs[1]])
		case OpMaxPool, OpAvgPool:
			evalPool(n.Op == OpMaxPool, n.Pool, x, xs, out, s)
		case OpGlobalAvgPool:
			for c := 0; c < xs.C; c++ {
				var sum float64
				for p := 0; p < xs.H*xs.W; p++ {
					sum += float64(x[p*xs.C+c])
				}
				out[c] = float32(sum / float64(xs.H*xs.W))
			}
		case OpDense:
			d := n.Dense
			dw := d.FloatWeight()
			for o := 0; o < d.Out; o++ {
				var sum float64
				if d.Bias != nil {
					sum = float64(d.Bias[o])
				}
				for k := 0; k < d.In; k++ {
					sum += float64(x[k]) * float64(dw[k*d.Out+o])
				}
				out[o] = float32(sum)
			}
		case OpPad:
			p := n.Pad
			for h := 0; h < s.H; h++ {
				for w := 0; w < s.W; w++ {
					for c := 0; c < s.C; c++ {
						ih, iw, ic := h-p.Before[AxisH], w-p.Before[AxisW], c-p.Before[AxisC]
						v := p.Value
						if ih >= 0 && ih < xs.H && iw >= 0 && iw < xs.W && ic >= 0 && ic < xs.C {
							v = x[(ih*xs.W+iw)*xs.C+ic]
						}
						out[(h*s.W+w)*s.C+c] = v
					}
				}
			}
		case OpSlice:
			sl := n.Slice
			for h := 0; h < s.H; h++ {
				for w := 0; w < s.W; w++ {
					for c := 0; c < s.C; c++ {
						ih := sl.Start[AxisH] + h*sl.Step[AxisH]
						iw := sl.Start[AxisW] + w*sl.Step[AxisW]
						ic := sl.Start[AxisC] + c*sl.Step[AxisC]
						out[(h*s.W+w)*s.C+c] = x[(ih*xs.W+iw)*xs.C+ic]
					}
				}
			}
		case OpConcat:
			off := 0
			for _, k := range n.Inputs {
				v, vs := vals[k], g.Nodes[k].Shape
				for h := 0; h < vs.H; h++ {
					for w := 0; w < vs.W; w++ {
						for c := 0; c < vs.C; c++ {
							oh, ow, oc := h, w, c
							switch n.Axis {
							case AxisH:
								oh += off
							case AxisW:
								ow += off
							default:
								oc += off
							}
							out[(oh*s.W+ow)*s.C+oc] = v[(h*vs.W+w)*vs.C+c]
						}
					}
				}
				off += [3]int{vs.H, vs.W, vs.C}[n.Axis]
			}
		case OpFlatten:
			// NCHW order: index c*H*W + h*W + w.
			for h := 0; h < xs.H; h++ {
				for w := 0; w < xs.W; w++ {
					for c := 0; c < xs.C; c++ {
						out[(c*xs.H+h)*xs.W+w] = x[(h*xs.W+w)*xs.C+c]
					}
				}
			}
		case OpSoftmax:
			m := math.Inf(-1)
			for _, v := range x {
				m = math.Max(m, float64(v))
			}
			var sum float64
			for _, v := range x {
				sum += math.Exp(float64(v) - m)
			}
			for j, v := range x {
				out[j] = float32(math.Exp(float64(v)-m) / sum)
			}
		default:
			return nil, g.Errorf(i, "Eval: unsupported op")
		}
		if n.Relu {
			for j, v := range out {
				if v < 0 {
					out[j] = 0
				}
			}
		}
		vals[i] = out
	}
	return vals[g.Output], nil
}

func addInto(dst, src []float32) {
	for i := range dst {
		dst[i] += src[i]
	}
}

func evalConv(c *Conv, x []float32, xs Shape, out []float32, s Shape) {
	cw := c.FloatWeight()
	for oh := 0; oh < s.H; oh++ {
		for ow := 0; ow < s.W; ow++ {
			for co := 0; co < c.Cout; co++ {
				var sum float64
				if c.Bias != nil {
					sum = float64(c.Bias[co])
				}
				for kh := 0; kh < c.KH; kh++ {
					ih := oh*c.StrideH - c.Pad.Top + kh*c.DilH
					if ih < 0 || ih >= xs.H {
						continue
					}
					for kw := 0; kw < c.KW; kw++ {
						iw := ow*c.StrideW - c.Pad.Left + kw*c.DilW
						if iw < 0 || iw >= xs.W {
							continue
						}
						for ci := 0; ci < c.Cin; ci++ {
							sum += float64(x[(ih*xs.W+iw)*xs.C+ci]) * float64(cw[((kh*c.KW+kw)*c.Cin+ci)*c.Cout+co])
						}
					}
				}
				out[(oh*s.W+ow)*s.C+co] = float32(sum)
			}
		}
	}
}

func evalPool(isMax bool, p *Pool, x []float32, xs Shape, out []float32, s Shape) {
	for oh := 0; oh < s.H; oh++ {
		for ow := 0; ow < s.W; ow++ {
			h0, w0 := oh*p.StrideH-p.Pad.Top, ow*p.StrideW-p.Pad.Left
			for c := 0; c < s.C; c++ {
				m := math.Inf(-1)
				var sum float64
				n := 0
				for kh := 0; kh < p.KH; kh++ {
					for kw := 0; kw < p.KW; kw++ {
						ih, iw := h0+kh, w0+kw
						if ih < 0 || ih >= xs.H || iw < 0 || iw >= xs.W {
							continue
						}
						v := float64(x[(ih*xs.W+iw)*xs.C+c])
						m = math.Max(m, v)
						sum += v
						n++
					}
				}
				if isMax {
					out[(oh*s.W+ow)*s.C+c] = float32(m)
					continue
				}
				div := n
				if p.CountIncludePad {
					// The window counts padding but not what lies past it (ceil mode overhang).
					hEnd := min(h0+p.KH, xs.H+p.Pad.Bottom)
					wEnd := min(w0+p.KW, xs.W+p.Pad.Right)
					div = (hEnd - h0) * (wEnd - w0)
				}
				out[(oh*s.W+ow)*s.C+c] = float32(sum / float64(div))
			}
		}
	}
}
