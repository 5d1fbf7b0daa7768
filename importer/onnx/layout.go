package onnx

import (
	"github.com/edge-resnet/edge-resnet/graph"
)

// Layout changes of activations: Flatten, Reshape, Squeeze, Unsqueeze and
// Transpose. An activation is [N,C,H,W] (rank 4) or [N,K] (rank 2, the
// vector Shape{1,1,K}); the graph stores each sample NHWC. What such an
// operator produces must again be one of these with the same batch N
// (samples never mix), and it is mapped only where that costs nothing or
// one Flatten:
//   - to the same graph shape ([N,C,1,1] <-> [N,C], the squeezes of
//     classifier heads, or a Transpose that moves only axes of size 1):
//     no node;
//   - to [N,K] or [N,K,1,1] from a feature map: a Flatten node (NCHW
//     order, as ONNX flattens);
//   - a Transpose with perm [0,3,1,2] of an [N,H,W,C] model input: no node
//     (the graph's own layout; see input.go).
//
// Anything else is refused, naming the shapes.

// asVector returns x as the 2-D vector [N,K] in NCHW order, flattening it
// with a node only when its layout changes.
func (b *builder) asVector(x *value) (*value, error) {
	if x.isVector() {
		return x.as(2), nil
	}
	return b.emit(&graph.Node{Op: graph.OpFlatten, Inputs: []int{x.node}}, 2, graph.Shape{H: 1, W: 1, C: x.shape.Size()})
}

// reshapeTo returns x reshaped to dims out (the elements in the same
// row-major order), or nil if that is not supported.
func (b *builder) reshapeTo(x *value, out []int) (*value, error) {
	d := x.dims()
	switch {
	case equalInts(out, d):
		return x, nil
	case len(out) == 2 && out[0] == d[0]:
		return b.asVector(x)
	case len(out) == 4 && out[0] == d[0] && out[2] == 1 && out[3] == 1:
		v, err := b.asVector(x)
		if err != nil {
			return nil, err
		}
		return v.as(4), nil
	}
	return nil, nil
}

func (b *builder) flatten(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	axis, err := b.n.getInt("axis", 1)
	if err != nil {
		return nil, err
	}
	d := x.dims()
	r := int64(len(d))
	if axis < -r || axis > r {
		return nil, corruptf("axis=%d out of range for rank %d", axis, r)
	}
	if axis < 0 {
		axis += r
	}
	outer := 1
	for _, v := range d[:axis] {
		outer *= v
	}
	if outer != d[0] {
		return nil, unsupportedf("Flatten with axis=%d of %v gives [%d,%d], not [N,K] for the batch N=%d", axis, d, outer, x.shape.Size()*d[0]/outer, d[0])
	}
	return b.asVector(x)
}

// actAndShape reads input 0, an activation, and input 1, a constant shape
// (Reshape, Expand).
func (b *builder) actAndShape(ins []*value) (*value, []int64, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := b.constant(ins, 1, "shape", false)
	if err != nil {
		return nil, nil, err
	}
	return x, st.ints(), nil
}

func (b *builder) reshape(ins []*value) (*value, error) {
	x, shape, err := b.actAndShape(ins)
	if err != nil {
		return nil, err
	}
	allowZero, err := b.n.getInt("allowzero", 0)
	if err != nil {
		return nil, err
	}
	d := x.dims()
	target, err := reshapeTarget(d, shape, allowZero != 0)
	if err != nil {
		return nil, err
	}
	y, err := b.reshapeTo(x, target)
	if err == nil && y == nil {
		err = unsupportedf("Reshape of %v to %v is not supported (only flattening to [%d,%d], or [N,C] <-> [N,C,1,1])", d, target, d[0], x.shape.Size())
	}
	return y, err
}

// squeezeAct maps Squeeze and Unsqueeze of an activation.
func (b *builder) squeezeAct(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	d := x.dims()
	out, err := b.squeezedDims(ins, d)
	if err != nil {
		return nil, err
	}
	y, err := b.reshapeTo(x, out)
	if err == nil && y == nil {
		err = unsupportedf("%s of the activation %v to %v is not supported (only [N,C,1,1] <-> [N,C])", b.n.opType, d, out)
	}
	return y, err
}

// transposeAct maps Transpose of an activation: the NHWC model input to
// NCHW, and transposes that only move axes of size 1.
func (b *builder) transposeAct(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	perm, err := b.transposePerm(x.rank)
	if err != nil {
		return nil, err
	}
	if x.raw&rawNHWC != 0 && equalInts(perm, []int{0, 3, 1, 2}) {
		// addInput saw that the input is read by such Transposes only.
		y := *x
		y.raw &^= rawNHWC
		return &y, nil
	}
	d := x.dims()
	out := make([]int, len(d))
	for k, p := range perm {
		out[k] = d[p]
	}
	if equalInts(out, d) && equalInts(memoryOrder(d, identityPerm(len(d))), memoryOrder(d, perm)) {
		return x, nil
	}
	return nil, unsupportedf("Transpose with perm %v of the activation %v moves values; only the NHWC model input's Transpose to NCHW and transposes of axes of size 1 are supported", perm, d)
}

// memoryOrder lists, from the outermost to the innermost in the graph's
// layout (N, H, W, C), the axes of in that the axes of size > 1 of
// in transposed by perm come from. A transpose moves no value when this
// is the same for perm and the identity.
func memoryOrder(in []int, perm []int) []int {
	order := []int{0, 1}
	if len(in) == 4 {
		order = []int{0, 2, 3, 1}
	}
	var seq []int
	for _, j := range order {
		if in[perm[j]] != 1 {
			seq = append(seq, perm[j])
		}
	}
	return seq
}

func identityPerm(n int) []int {
	p := make([]int, n)
	for k := range p {
		p[k] = k
	}
	return p
}
