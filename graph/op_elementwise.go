package graph

import "math"

// The element-wise ops: Affine (per-channel scale and shift), Relu, Add
// and Softmax.

// Affine is a per-channel scale and shift; inference BatchNorm is
// Scale = gamma/sqrt(var+eps), Shift = beta - mean*Scale.
type Affine struct {
	Scale []float32 // len C
	Shift []float32 // len C
}

func init() {
	register(OpAffine, opDef{name: "Affine", infer: inferAffine, eval: evalAffine, fuse: fuseAffine,
		params:  func(n *Node) int64 { return int64(2 * len(n.Affine.Scale)) },
		attrKey: "affine", encode: encodeAffine, decode: decodeAffine})
	register(OpRelu, opDef{name: "Relu", infer: inferUnary, eval: evalRelu, fuse: fuseRelu})
	register(OpAdd, opDef{name: "Add", infer: inferAdd, eval: evalAdd, fuse: fuseAdd, int8: int8Form(Int8Requant)})
	register(OpSoftmax, opDef{name: "Softmax", infer: inferSoftmax, eval: evalSoftmax})
}

// encodeAffine writes the "affine" object: the tensors scale and shift.
func encodeAffine(n *Node, w AttrWriter) {
	w.Tensor("scale", n.Affine.Scale, len(n.Affine.Scale))
	w.Tensor("shift", n.Affine.Shift, len(n.Affine.Shift))
}

// decodeAffine takes the channel count from the scale tensor: shape
// inference checks it against the input, here shift must agree with scale.
func decodeAffine(n *Node, r AttrReader) {
	c := r.TensorLen("scale")
	n.Affine = &Affine{Scale: requiredTensor(r, "scale", c), Shift: requiredTensor(r, "shift", c)}
}

func inferAffine(g *Graph, i int) (Shape, error) {
	n := g.Nodes[i]
	if err := g.want(i, 1, n.Affine != nil); err != nil {
		return Shape{}, err
	}
	x := g.Nodes[n.Inputs[0]].Shape
	if len(n.Affine.Scale) != x.C || len(n.Affine.Shift) != x.C {
		return Shape{}, g.Errorf(i, "scale/shift have %d/%d values, input has %d channels", len(n.Affine.Scale), len(n.Affine.Shift), x.C)
	}
	return x, nil
}

func evalAffine(_ *Graph, n *Node, in [][]float32, out []float32) {
	a, c := n.Affine, len(n.Affine.Scale)
	for j, v := range in[0] {
		out[j] = v*a.Scale[j%c] + a.Shift[j%c]
	}
}

// fuseAffine folds an Affine (inference BatchNorm) into the Conv or Dense
// before it, when that layer is used only by it.
func fuseAffine(f *fuser, i int) int {
	p := f.nodes[i].Inputs[0]
	pn := f.nodes[p]
	if f.uses[p] == 1 && !pn.Relu && pn.Clamp == nil && (pn.Op == OpConv && len(pn.Inputs) == 1 || pn.Op == OpDense) {
		foldAffine(pn, f.nodes[i].Affine)
		return p
	}
	return -1
}

// inferUnary: one input, same shape out.
func inferUnary(g *Graph, i int) (Shape, error) {
	if err := g.want(i, 1, true); err != nil {
		return Shape{}, err
	}
	return g.Nodes[g.Nodes[i].Inputs[0]].Shape, nil
}

func evalRelu(_ *Graph, _ *Node, in [][]float32, out []float32) {
	for j, v := range in[0] {
		out[j] = max(v, 0)
	}
}

// fuseRelu becomes the Relu flag of a Conv, Dense, Add or Affine used only
// by it.
func fuseRelu(f *fuser, i int) int {
	p := f.nodes[i].Inputs[0]
	if pn := f.nodes[p]; !pn.Relu && f.activates(p) {
		pn.Relu = true
		return p
	}
	return -1
}

// hasActivation reports the ops that can end in a fused activation (Relu,
// Clamp).
func hasActivation(op Op) bool { return op == OpConv || op == OpDense || op == OpAdd || op == OpAffine }

// activates reports whether an activation can fuse into node p: an op
// that has one, used only by the activation, whose output is not clamped
// yet (a ReLU or Clip after the clamp would have to come after it).
func (f *fuser) activates(p int) bool {
	pn := f.nodes[p]
	return f.uses[p] == 1 && pn.Clamp == nil && hasActivation(pn.Op)
}

func inferAdd(g *Graph, i int) (Shape, error) {
	if err := g.want(i, 2, true); err != nil {
		return Shape{}, err
	}
	a, b := g.Nodes[g.Nodes[i].Inputs[0]].Shape, g.Nodes[g.Nodes[i].Inputs[1]].Shape
	if a != b {
		return Shape{}, g.Errorf(i, "operand shapes differ: %v and %v", a, b)
	}
	return a, nil
}

func evalAdd(_ *Graph, _ *Node, in [][]float32, out []float32) {
	copy(out, in[0])
	addInto(out, in[1])
}

// fuseAdd makes an Add of a plain Conv used only by it and a value computed
// before that Conv the Conv's residual input: of the two operands, the one
// computed later absorbs the add, which handles torchvision's order (conv2,
// then the downsample conv) and the reverse without matching names.
func fuseAdd(f *fuser, i int) int {
	n := f.nodes[i]
	a, b := n.Inputs[0], n.Inputs[1]
	if b < a {
		a, b = b, a
	}
	bn := f.nodes[b]
	if a != b && f.uses[b] == 1 && bn.Op == OpConv && len(bn.Inputs) == 1 && !bn.Relu && !n.Relu && bn.Clamp == nil && n.Clamp == nil {
		bn.Inputs = append(bn.Inputs, a)
		return b
	}
	return -1
}

func inferSoftmax(g *Graph, i int) (Shape, error) {
	x, err := inferUnary(g, i)
	if err == nil && (x.H != 1 || x.W != 1) {
		return Shape{}, g.Errorf(i, "softmax wants a vector, got %v", x)
	}
	return x, err
}

func evalSoftmax(_ *Graph, _ *Node, in [][]float32, out []float32) {
	x := in[0]
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
}

func addInto(dst, src []float32) {
	for i := range dst {
		dst[i] += src[i]
	}
}
