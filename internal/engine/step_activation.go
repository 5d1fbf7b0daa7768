package engine

import (
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// The steps of Sigmoid, HardSigmoid, Clip and Mul (float32).

func init() {
	registerStep(FP32, compileSimple(func(e *Exec, st *step) {
		kernels.Sigmoid(e.viewAll(st.in, st.inShape), e.viewAll(st.out, st.outShape))
	}), graph.OpSigmoid)
	registerStep(FP32, func(_ *compiler, _ *step, nd *graph.Node) (kernel, error) {
		h := *nd.HardSigmoid
		return simple{f: func(e *Exec, st *step) {
			kernels.HardSigmoid(e.viewAll(st.in, st.inShape), e.viewAll(st.out, st.outShape), h.Alpha, h.Beta)
		}}, nil
	}, graph.OpHardSigmoid)
	registerStep(FP32, func(_ *compiler, _ *step, nd *graph.Node) (kernel, error) {
		c := *nd.Clip
		return simple{f: func(e *Exec, st *step) {
			e.plan.Kernels.Clamp(e.viewAll(st.in, st.inShape), e.viewAll(st.out, st.outShape), c.Min, c.Max)
		}}, nil
	}, graph.OpClip)
	registerStep(FP32, compileMul, graph.OpMul)
}

// compileMul: the operand of the output's shape is a, the other (the same
// shape or a 1x1xC vector) b.
func compileMul(c *compiler, st *step, nd *graph.Node) (kernel, error) {
	g := c.p.Graph
	aShape, bShape := g.Nodes[nd.Inputs[0]].Shape, g.Nodes[nd.Inputs[1]].Shape
	if aShape != st.outShape {
		st.in, st.in2 = st.in2, st.in
		aShape, bShape = bShape, aShape
	}
	st.inShape = aShape
	return simple{f: func(e *Exec, st *step) {
		for b := range e.n {
			kernels.Mul(e.view(st.in, aShape, b), e.view(st.in2, bShape, b), e.view(st.out, st.outShape, b))
		}
	}}, nil
}
