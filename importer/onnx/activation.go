package onnx

import (
	"math"

	"github.com/edge-resnet/edge-resnet/graph"
)

// The activation functions, and Mul of two activations: Relu, Sigmoid,
// HardSigmoid, HardSwish (= x * HardSigmoid(x) with alpha 1/6, beta 1/2:
// two nodes), Clip (ReLU6 is Clip(0, 6)).

// unary emits an element-wise node of op on input 0.
func (b *builder) unary(ins []*value, nd *graph.Node) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	nd.Inputs = []int{x.node}
	return b.emit(nd, x.rank, x.shape)
}

func (b *builder) relu(ins []*value) (*value, error) {
	return b.unary(ins, &graph.Node{Op: graph.OpRelu})
}

func (b *builder) sigmoid(ins []*value) (*value, error) {
	return b.unary(ins, &graph.Node{Op: graph.OpSigmoid})
}

// hardSigmoid is max(0, min(1, alpha*x + beta)), alpha 0.2 and beta 0.5
// by default.
func (b *builder) hardSigmoid(ins []*value) (*value, error) {
	alpha, err := b.n.getFloat("alpha", 0.2)
	if err != nil {
		return nil, err
	}
	beta, err := b.n.getFloat("beta", 0.5)
	if err != nil {
		return nil, err
	}
	if !finite32(alpha) || !finite32(beta) {
		return nil, unsupportedf("HardSigmoid with alpha=%g, beta=%g is not supported (want finite values)", alpha, beta)
	}
	return b.unary(ins, &graph.Node{Op: graph.OpHardSigmoid, HardSigmoid: &graph.HardSigmoid{Alpha: alpha, Beta: beta}})
}

// hardSwish is x * HardSigmoid(x) with alpha 1/6 and beta 0.5 (opset 14),
// which is PyTorch's x * relu6(x+3)/6.
func (b *builder) hardSwish(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	hs, err := b.emit(&graph.Node{Name: b.nodeName() + ":hardsigmoid", Op: graph.OpHardSigmoid, Inputs: []int{x.node},
		HardSigmoid: &graph.HardSigmoid{Alpha: 1.0 / 6, Beta: 0.5}}, x.rank, x.shape)
	if err != nil {
		return nil, err
	}
	return b.emit(&graph.Node{Op: graph.OpMul, Inputs: []int{x.node, hs.node}}, x.rank, x.shape)
}

// clip bounds an activation by min and max (attributes before opset 11,
// optional constant inputs from then on; an absent bound is infinite).
// Clip(0, +inf) is a Relu.
func (b *builder) clip(ins []*value) (*value, error) {
	x, err := b.act(ins, 0)
	if err != nil {
		return nil, err
	}
	lo, hi, err := b.clipBounds(ins)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(lo) || math.IsNaN(hi) || lo > hi || math.IsInf(lo, 1) || math.IsInf(hi, -1) {
		return nil, unsupportedf("Clip(min=%g, max=%g) is not supported (the bounds are not an interval)", lo, hi)
	}
	if hi >= math.MaxFloat32 {
		hi = math.Inf(1)
	}
	if lo <= -math.MaxFloat32 {
		lo = math.Inf(-1)
	}
	switch {
	case lo == 0 && math.IsInf(hi, 1):
		return b.emit(&graph.Node{Op: graph.OpRelu, Inputs: []int{x.node}}, x.rank, x.shape)
	case math.IsInf(lo, -1) && math.IsInf(hi, 1):
		return x, nil
	}
	c := &graph.Clip{Min: float32(lo), Max: float32(hi)}
	return b.emit(&graph.Node{Op: graph.OpClip, Inputs: []int{x.node}, Clip: c}, x.rank, x.shape)
}

func (b *builder) clipBounds(ins []*value) (lo, hi float64, err error) {
	lo, hi = math.Inf(-1), math.Inf(1)
	if b.opset < 11 {
		l, err := b.n.getFloat("min", float32(math.Inf(-1)))
		if err != nil {
			return 0, 0, err
		}
		h, err := b.n.getFloat("max", float32(math.Inf(1)))
		if err != nil {
			return 0, 0, err
		}
		return float64(l), float64(h), nil
	}
	for k, p := range []*float64{&lo, &hi} {
		what := [2]string{"min", "max"}[k]
		t, err := b.constant(ins, k+1, what, true)
		if err != nil {
			return 0, 0, err
		}
		if t != nil {
			if t.size() != 1 {
				return 0, 0, corruptf("%s has %d values, want 1", what, t.size())
			}
			*p = t.float(0)
		}
	}
	return lo, hi, nil
}

// mulActivations maps Mul of two activations of one shape, or of a
// feature map [N,C,H,W] and a per-channel [N,C,1,1] (squeeze-and-
// excitation), in either order, also when the latter was Expanded.
func (b *builder) mulActivations(x, y *value) (*value, error) {
	xd, yd := x.dims(), y.dims()
	nd := &graph.Node{Op: graph.OpMul, Inputs: []int{x.node, y.node}}
	switch {
	case x.bcast != y.bcast && equalInts(xd, yd):
		if x.bcast {
			return b.emit(nd, 4, y.shape)
		}
		return b.emit(nd, 4, x.shape)
	case x.bcast || y.bcast:
	case equalInts(xd, yd):
		return b.emit(nd, x.rank, x.shape)
	case x.rank == 4 && y.rank == 4 && x.shape.C == y.shape.C && y.isVector():
		return b.emit(nd, 4, x.shape)
	case x.rank == 4 && y.rank == 4 && x.shape.C == y.shape.C && x.isVector():
		return b.emit(nd, 4, y.shape)
	}
	return nil, unsupportedf("Mul of activations of shapes %v and %v is not supported (only one shape, or [N,C,H,W] by [N,C,1,1])", xd, yd)
}

// expandAct maps Expand of an activation where it is a no-op, or where it
// broadcasts [N,C,1,1] over H and W for a Mul (x * s.expand_as(x) in
// squeeze-and-excitation code): then it emits nothing and the Mul
// broadcasts.
func (b *builder) expandAct(ins []*value) (*value, error) {
	x, shape, err := b.actAndShape(ins)
	if err != nil {
		return nil, err
	}
	dims, ok := dimsOf(shape)
	if !ok {
		return nil, corruptf("Expand shape %v has an invalid dimension", shape)
	}
	d := x.dims()
	out, err := broadcastShape(d, dims)
	if err != nil {
		return nil, err
	}
	switch {
	case equalInts(out, d):
		return x, nil
	case x.rank == 4 && x.isVector() && len(out) == 4 && out[0] == d[0] && out[1] == d[1]:
		y := *x
		y.shape, y.bcast = graph.Shape{H: out[2], W: out[3], C: out[1]}, true
		if !graph.ValidShape(y.shape) {
			return nil, unsupportedf("the output shape %v is too large", y.shape)
		}
		return &y, nil
	}
	return nil, unsupportedf("Expand of the activation %v to %v is not supported (only [N,C,1,1] to [N,C,H,W] for a Mul)", d, out)
}

func finite32(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
