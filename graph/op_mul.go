package graph

// Mul multiplies two activations element by element: operands of the same
// shape (hard-swish: x*HardSigmoid(x)), or one of them a 1x1xC vector
// scaling every pixel's channels (squeeze-and-excitation: x*s).

func init() {
	register(OpMul, opDef{name: "Mul", infer: inferMul, eval: evalMul})
}

func inferMul(g *Graph, i int) (Shape, error) {
	if err := g.want(i, 2, true); err != nil {
		return Shape{}, err
	}
	a, b := g.Nodes[g.Nodes[i].Inputs[0]].Shape, g.Nodes[g.Nodes[i].Inputs[1]].Shape
	switch {
	case a == b:
		return a, nil
	case b.H == 1 && b.W == 1 && b.C == a.C:
		return a, nil
	case a.H == 1 && a.W == 1 && a.C == b.C:
		return b, nil
	}
	return Shape{}, g.Errorf(i, "operand shapes %v and %v: want equal shapes or one of them 1x1xC", a, b)
}

func evalMul(_ *Graph, n *Node, in [][]float32, out []float32) {
	a, b := in[0], in[1]
	if len(a) < len(b) {
		a, b = b, a
	}
	for j := range out {
		out[j] = a[j] * b[j%len(b)]
	}
}
