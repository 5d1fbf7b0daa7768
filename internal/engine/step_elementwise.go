package engine

import (
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// The element-wise steps: Add (float32 and uint8), Relu, Affine, Softmax,
// and the conversions an int8 plan inserts (Quantize, Dequantize).

func init() {
	registerStep(FP32, compileSimple(func(e *Exec, st *step) {
		a, b, out := e.viewAll(st.in, st.inShape), e.viewAll(st.in2, st.inShape), e.viewAll(st.out, st.outShape)
		st.clampedChunks(e.plan.Kernels, out, 1, func(i0, i1 int) { kernels.Add(a[i0:i1], b[i0:i1], out[i0:i1], st.relu) })
	}), graph.OpAdd)
	registerStep(FP32, compileSimple(func(e *Exec, st *step) {
		kernels.Relu(e.viewAll(st.in, st.inShape), e.viewAll(st.out, st.outShape))
	}), graph.OpRelu)
	registerStep(FP32, compileSimple(func(e *Exec, st *step) {
		for b := range e.n {
			kernels.Softmax(e.view(st.in, st.inShape, b), e.view(st.out, st.outShape, b))
		}
	}), graph.OpSoftmax)
	registerStep(FP32, compileAffine, graph.OpAffine)
	registerStep(Int8, compileAdd8, graph.OpAdd)
}

// simple is a serial step whose work needs nothing beyond the step. Its
// function computes every sample of the run (e.n).
type simple struct {
	serialKernel
	f func(e *Exec, st *step)
}

func (k simple) run(e *Exec, st *step, _, _ int)   { k.f(e, st) }
func (k simple) describe(_ *Plan, st *step) string { return opName(st) }

func compileSimple(f func(e *Exec, st *step)) compileFunc {
	return func(*compiler, *step, *graph.Node) (kernel, error) { return simple{f: f}, nil }
}

func compileAffine(_ *compiler, _ *step, nd *graph.Node) (kernel, error) {
	a := nd.Affine
	return simple{f: func(e *Exec, st *step) {
		in, out := e.viewAll(st.in, st.inShape), e.viewAll(st.out, st.outShape)
		st.clampedChunks(e.plan.Kernels, out, len(a.Scale), func(i0, i1 int) { kernels.Affine(in[i0:i1], out[i0:i1], a.Scale, a.Shift, st.relu) })
	}}, nil
}

func compileAdd8(c *compiler, _ *step, nd *graph.Node) (kernel, error) {
	qa, qb, qOut := c.quant(nd.Inputs[0]), c.quant(nd.Inputs[1]), *nd.Quant
	p := &kernels.Add8Params{
		ZeroA: qa.Zero, ZeroB: qb.Zero, ZeroOut: qOut.Zero, Lo: reluFloor(nd.Relu, qOut),
		ScaleA: float32(float64(qa.Scale) / float64(qOut.Scale)),
		ScaleB: float32(float64(qb.Scale) / float64(qOut.Scale)),
	}
	return simple{f: func(e *Exec, st *step) {
		e.plan.Kernels.Add8(e.view8All(st.in, st.inShape), e.view8All(st.in2, st.inShape), e.view8All(st.out, st.outShape), p)
	}}, nil
}

// convertStep converts node i's value to the other precision: Quantize
// for a float32 value an int8 step reads, Dequantize for a uint8 value a
// float32 step (or the output) reads.
func (p *Plan) convertStep(i int) step {
	n := p.Graph.Nodes[i]
	q := *n.Quant
	st := step{node: i, op: graph.OpQuantize, in: p.offsets[i], in2: -1, out: p.convOffs[i],
		inShape: n.Shape, outShape: n.Shape}
	st.k = simple{f: func(e *Exec, st *step) {
		e.plan.Kernels.Quantize(e.viewAll(st.in, st.inShape), e.view8All(st.out, st.outShape), q.Scale, q.Zero)
	}}
	if p.u8[i] {
		st.op = graph.OpDequantize
		st.k = simple{f: func(e *Exec, st *step) {
			e.plan.Kernels.Dequantize(e.view8All(st.in, st.inShape), e.viewAll(st.out, st.outShape), q.Scale, q.Zero)
		}}
	}
	return st
}
