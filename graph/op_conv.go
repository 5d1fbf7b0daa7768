package graph

import "fmt"

// Conv is a 2-D convolution, grouped when Group > 1: input and output
// channels are split into Group parts, and output channel co (in part
// co/(Cout/Group)) sees only its part's Cin/Group input channels. Group =
// Cin = Cout is a depthwise convolution.
type Conv struct {
	KH, KW           int
	StrideH, StrideW int
	DilH, DilW       int
	Pad              Pads
	Cin, Cout        int
	Group            int       // 0 or 1: every output sees every input
	Weight           []float32 // HWIO with I = Cin/Group, len KH*KW*(Cin/Group)*Cout; nil when only Quant is present
	Bias             []float32 // len Cout, or nil
	Quant            *QWeights // int8 weights (same HWIO layout), or nil
}

// FloatWeight returns the float weights, dequantizing them when the layer
// carries only int8 weights.
func (c *Conv) FloatWeight() []float32 {
	if c.Weight == nil && c.Quant != nil {
		return c.Quant.Dequantize()
	}
	return c.Weight
}

// Groups is the number of groups, at least 1.
func (c *Conv) Groups() int { return max(c.Group, 1) }

// GroupIn is the number of input channels each output sees, Cin/Groups().
func (c *Conv) GroupIn() int { return c.Cin / c.Groups() }

// weights is the number of weights.
func (c *Conv) weights() int64 { return int64(c.KH) * int64(c.KW) * int64(c.GroupIn()) * int64(c.Cout) }

func init() {
	// Every grouping has an int8 form: ungrouped convolutions on the int8
	// GEMM, depthwise ones on the int8 depthwise kernel, the others on one
	// int8 GEMM per group.
	register(OpConv, opDef{name: "Conv", infer: inferConv, eval: evalConv, fuse: fuseConv, int8: int8Form(Int8Weights),
		macs: func(n *Node) int64 {
			c := n.Conv
			return int64(n.Shape.H) * int64(n.Shape.W) * int64(c.Cout) * int64(c.KH*c.KW*c.GroupIn())
		},
		params: func(n *Node) int64 { return n.Conv.weights() + int64(len(n.Conv.Bias)) },

		attrKey: "conv", encode: encodeConv, decode: decodeConv, weights: convWeights, describe: describeConv,
		feature: func(n *Node) string {
			if n.Conv != nil && n.Conv.Groups() > 1 {
				return FeatureGroupedConv
			}
			return ""
		},
	})
}

// encodeConv writes the "conv" object: kh, kw, stride_h, stride_w, dil_h,
// dil_w, pad, cin, cout and the weights (docs/FORMAT.md §2.3).
func encodeConv(n *Node, w AttrWriter) {
	c := n.Conv
	writeWindow(w, c.KH, c.KW, c.StrideH, c.StrideW)
	w.Int("dil_h", c.DilH)
	w.Int("dil_w", c.DilW)
	writePads(w, "pad", c.Pad)
	w.Int("cin", c.Cin)
	w.Int("cout", c.Cout)
	if c.Groups() > 1 {
		w.Int("group", c.Group) // absent in ungrouped convs, so their bytes stay those of format 1.1
	}
	writeWeights(w, c.Weight, c.Bias, c.Quant, c.KH, c.KW, c.GroupIn(), c.Cout)
}

func decodeConv(n *Node, r AttrReader) {
	c := &Conv{}
	c.KH, c.KW, c.StrideH, c.StrideW = readWindow(r)
	c.DilH, c.DilW = r.Int("dil_h"), r.Int("dil_w")
	c.Pad = readPads(r, "pad")
	c.Cin, c.Cout, c.Group = r.Int("cin"), r.Int("cout"), r.Int("group")
	if c.Group < 0 || c.Groups() > 1 && c.Cin%c.Groups() != 0 {
		r.Failf("group", "%d does not divide cin %d", c.Group, c.Cin)
		return
	}
	c.Weight, c.Bias, c.Quant = readWeights(r, c.KH, c.KW, c.GroupIn(), c.Cout)
	n.Conv = c
}

func convWeights(n *Node) ([]float32, *QWeights) {
	if n.Conv == nil {
		return nil, nil
	}
	return n.Conv.Weight, n.Conv.Quant
}

func describeConv(g *Graph, n *Node) string {
	c := n.Conv
	s := fmt.Sprintf(" %dx%d/%d", c.KH, c.KW, c.StrideH)
	if c.StrideW != c.StrideH {
		s += fmt.Sprintf("x%d", c.StrideW)
	}
	if c.Groups() > 1 {
		s += fmt.Sprintf(" g%d", c.Groups())
	}
	if c.Bias != nil {
		s += " +bias"
	}
	if len(n.Inputs) == 2 {
		s += fmt.Sprintf(" +residual(%s)", g.Nodes[n.Inputs[1]].Name)
	}
	return s
}

// inferConv: inputs [x] or [x, residual]; the residual has the output's shape.
func inferConv(g *Graph, i int) (Shape, error) {
	n := g.Nodes[i]
	c := n.Conv
	if c == nil || (len(n.Inputs) != 1 && len(n.Inputs) != 2) {
		return Shape{}, g.Errorf(i, "want 1 or 2 inputs and conv attributes")
	}
	x := g.Nodes[n.Inputs[0]].Shape
	if c.KH < 1 || c.KW < 1 || c.StrideH < 1 || c.StrideW < 1 || c.DilH < 1 || c.DilW < 1 ||
		c.KH > MaxConvWindow || c.KW > MaxConvWindow || c.StrideH > MaxConvWindow || c.StrideW > MaxConvWindow || c.DilH > MaxConvWindow || c.DilW > MaxConvWindow {
		return Shape{}, g.Errorf(i, "kernel %dx%d stride %dx%d dilation %dx%d out of range", c.KH, c.KW, c.StrideH, c.StrideW, c.DilH, c.DilW)
	}
	if err := checkPads(c.Pad); err != nil {
		return Shape{}, g.Errorf(i, "%w", err)
	}
	if c.Cin != x.C {
		return Shape{}, g.Errorf(i, "weights take %d channels, input has %d", c.Cin, x.C)
	}
	if c.Group < 0 || c.Cin%c.Groups() != 0 || c.Cout%c.Groups() != 0 {
		return Shape{}, g.Errorf(i, "%d groups do not divide %d input and %d output channels", c.Group, c.Cin, c.Cout)
	}
	if err := checkWeights(c.Cout, MaxDim, c.weights(), c.Weight, c.Bias, c.Quant); err != nil {
		return Shape{}, g.Errorf(i, "%v (%dx%dx%dx%d)", err, c.KH, c.KW, c.Cin, c.Cout)
	}
	out := Shape{
		H: WindowOut(x.H, c.KH, c.StrideH, c.DilH, c.Pad.Top, c.Pad.Bottom, false),
		W: WindowOut(x.W, c.KW, c.StrideW, c.DilW, c.Pad.Left, c.Pad.Right, false),
		C: c.Cout,
	}
	if len(n.Inputs) == 2 && g.Nodes[n.Inputs[1]].Shape != out {
		return Shape{}, g.Errorf(i, "residual shape %v differs from output %v", g.Nodes[n.Inputs[1]].Shape, out)
	}
	return out, nil
}

func evalConv(g *Graph, n *Node, in [][]float32, out []float32) {
	c, x, xs, s := n.Conv, in[0], g.Nodes[n.Inputs[0]].Shape, n.Shape
	cw := c.FloatWeight()
	cig, cog := c.GroupIn(), c.Cout/c.Groups()
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
						for ci := 0; ci < cig; ci++ {
							sum += float64(x[(ih*xs.W+iw)*xs.C+co/cog*cig+ci]) * float64(cw[((kh*c.KW+kw)*cig+ci)*c.Cout+co])
						}
					}
				}
				out[(oh*s.W+ow)*s.C+co] = float32(sum)
			}
		}
	}
	if len(in) == 2 {
		addInto(out, in[1])
	}
}

// fuseConv absorbs a zero Pad of H and W used only by this conv into its
// padding (exporters emit them for asymmetric "same" padding).
func fuseConv(f *fuser, i int) int {
	n := f.nodes[i]
	p := n.Inputs[0]
	if pd := f.nodes[p].Pad; f.nodes[p].Op == OpPad && f.uses[p] == 1 && pd.Value == 0 &&
		pd.Before[AxisC] == 0 && pd.After[AxisC] == 0 {
		c := n.Conv
		c.Pad.Top += pd.Before[AxisH]
		c.Pad.Bottom += pd.After[AxisH]
		c.Pad.Left += pd.Before[AxisW]
		c.Pad.Right += pd.After[AxisW]
		n.Inputs[0] = f.nodes[p].Inputs[0]
		f.uses[p] = 0
	}
	return -1
}
