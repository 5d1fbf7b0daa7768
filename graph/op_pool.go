package graph

import (
	"fmt"
	"math"
)

// Pool is a max or average pooling window.
type Pool struct {
	KH, KW           int
	StrideH, StrideW int
	Pad              Pads
	CeilMode         bool // output size rounds up (ONNX ceil_mode=1)
	CountIncludePad  bool // average pooling divides by the full window (ONNX count_include_pad=1)
}

func init() {
	register(OpMaxPool, opDef{name: "MaxPool", infer: inferPool, eval: evalPool, describe: describePool, int8: int8Form(Int8Move),
		attrKey: "pool", encode: encodePool, decode: decodePool})
	register(OpAvgPool, opDef{name: "AvgPool", infer: inferPool, eval: evalPool, describe: describePool,
		attrKey: "pool", encode: encodePool, decode: decodePool})
	register(OpGlobalAvgPool, opDef{name: "GlobalAvgPool", infer: inferGlobalAvgPool, eval: evalGlobalAvgPool, int8: int8Form(Int8Requant)})
}

// encodePool writes the "pool" object of MaxPool and AvgPool: kh, kw,
// stride_h, stride_w, pad, and ceil_mode and count_include_pad when true.
func encodePool(n *Node, w AttrWriter) {
	p := n.Pool
	writeWindow(w, p.KH, p.KW, p.StrideH, p.StrideW)
	writePads(w, "pad", p.Pad)
	w.Bool("ceil_mode", p.CeilMode)
	w.Bool("count_include_pad", p.CountIncludePad)
}

func decodePool(n *Node, r AttrReader) {
	p := &Pool{}
	p.KH, p.KW, p.StrideH, p.StrideW = readWindow(r)
	p.Pad = readPads(r, "pad")
	p.CeilMode, p.CountIncludePad = r.Bool("ceil_mode"), r.Bool("count_include_pad")
	n.Pool = p
}

func describePool(_ *Graph, n *Node) string {
	return fmt.Sprintf(" %dx%d/%d", n.Pool.KH, n.Pool.KW, n.Pool.StrideH)
}

func inferPool(g *Graph, i int) (Shape, error) {
	n := g.Nodes[i]
	if err := g.want(i, 1, n.Pool != nil); err != nil {
		return Shape{}, err
	}
	p, x := n.Pool, g.Nodes[n.Inputs[0]].Shape
	if p.KH < 1 || p.KW < 1 || p.StrideH < 1 || p.StrideW < 1 || p.KH > MaxPoolWindow || p.KW > MaxPoolWindow || p.StrideH > MaxPoolWindow || p.StrideW > MaxPoolWindow {
		return Shape{}, g.Errorf(i, "window %dx%d stride %dx%d out of range", p.KH, p.KW, p.StrideH, p.StrideW)
	}
	if err := checkPads(p.Pad); err != nil {
		return Shape{}, g.Errorf(i, "%w", err)
	}
	if p.Pad.Top >= p.KH || p.Pad.Bottom >= p.KH || p.Pad.Left >= p.KW || p.Pad.Right >= p.KW {
		return Shape{}, g.Errorf(i, "padding %+v not smaller than the window %dx%d", p.Pad, p.KH, p.KW)
	}
	return Shape{
		H: WindowOut(x.H, p.KH, p.StrideH, 1, p.Pad.Top, p.Pad.Bottom, p.CeilMode),
		W: WindowOut(x.W, p.KW, p.StrideW, 1, p.Pad.Left, p.Pad.Right, p.CeilMode),
		C: x.C,
	}, nil
}

func evalPool(g *Graph, nd *Node, in [][]float32, out []float32) {
	isMax, p, x, xs, s := nd.Op == OpMaxPool, nd.Pool, in[0], g.Nodes[nd.Inputs[0]].Shape, nd.Shape
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

func inferGlobalAvgPool(g *Graph, i int) (Shape, error) {
	if err := g.want(i, 1, true); err != nil {
		return Shape{}, err
	}
	return Shape{H: 1, W: 1, C: g.Nodes[g.Nodes[i].Inputs[0]].Shape.C}, nil
}

func evalGlobalAvgPool(g *Graph, n *Node, in [][]float32, out []float32) {
	x, xs := in[0], g.Nodes[n.Inputs[0]].Shape
	for c := 0; c < xs.C; c++ {
		var sum float64
		for p := 0; p < xs.H*xs.W; p++ {
			sum += float64(x[p*xs.C+c])
		}
		out[c] = float32(sum / float64(xs.H*xs.W))
	}
}
