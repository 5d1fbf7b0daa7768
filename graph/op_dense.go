package graph

// Dense is a fully connected layer on a vector.
type Dense struct {
	In, Out int
	Weight  []float32 // [In][Out]; nil when only Quant is present
	Bias    []float32 // len Out, or nil
	Quant   *QWeights // int8 weights (same [In][Out] layout), or nil
}

// FloatWeight returns the float weights, dequantizing them when the layer
// carries only int8 weights.
func (d *Dense) FloatWeight() []float32 {
	if d.Weight == nil && d.Quant != nil {
		return d.Quant.Dequantize()
	}
	return d.Weight
}

func init() {
	register(OpDense, opDef{name: "Dense", infer: inferDense, eval: evalDense, int8: int8Form(Int8Weights),
		macs:   func(n *Node) int64 { return int64(n.Dense.In) * int64(n.Dense.Out) },
		params: func(n *Node) int64 { return int64(n.Dense.In)*int64(n.Dense.Out) + int64(len(n.Dense.Bias)) },

		attrKey: "dense", encode: encodeDense, decode: decodeDense, weights: denseWeights,
	})
}

// encodeDense writes the "dense" object: in, out and the weights.
func encodeDense(n *Node, w AttrWriter) {
	d := n.Dense
	w.Int("in", d.In)
	w.Int("out", d.Out)
	writeWeights(w, d.Weight, d.Bias, d.Quant, d.In, d.Out)
}

func decodeDense(n *Node, r AttrReader) {
	d := &Dense{In: r.Int("in"), Out: r.Int("out")}
	d.Weight, d.Bias, d.Quant = readWeights(r, d.In, d.Out)
	n.Dense = d
}

func denseWeights(n *Node) ([]float32, *QWeights) {
	if n.Dense == nil {
		return nil, nil
	}
	return n.Dense.Weight, n.Dense.Quant
}

func inferDense(g *Graph, i int) (Shape, error) {
	n := g.Nodes[i]
	if err := g.want(i, 1, n.Dense != nil); err != nil {
		return Shape{}, err
	}
	d, x := n.Dense, g.Nodes[n.Inputs[0]].Shape
	if x.H != 1 || x.W != 1 {
		return Shape{}, g.Errorf(i, "dense wants a vector, got %v (flatten first)", x)
	}
	if d.In != x.C {
		return Shape{}, g.Errorf(i, "weight %dx%d does not fit input of %d", d.In, d.Out, x.C)
	}
	if err := checkWeights(d.Out, MaxElements, int64(d.In)*int64(d.Out), d.Weight, d.Bias, d.Quant); err != nil {
		return Shape{}, g.Errorf(i, "%v (%dx%d)", err, d.In, d.Out)
	}
	return Shape{H: 1, W: 1, C: d.Out}, nil
}

func evalDense(_ *Graph, n *Node, in [][]float32, out []float32) {
	d, x := n.Dense, in[0]
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
}
