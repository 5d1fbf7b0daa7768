package engine

import (
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// The steps that move values: Pad, Slice, Concat and Flatten, on float32
// or uint8 values alike (an int8 Pad pads with the zero point, which
// stands for the real value 0).

func init() {
	for _, prec := range []Precision{FP32, Int8} {
		registerStep(prec, compilePad, graph.OpPad)
		registerStep(prec, compileSlice, graph.OpSlice)
		registerStep(prec, compileSimple(func(e *Exec, st *step) {
			for b := range e.n {
				if st.int8 {
					kernels.FlattenNCHW(e.view8(st.in, st.inShape, b), dims(st.inShape), e.view8(st.out, st.outShape, b))
				} else {
					kernels.FlattenNCHW(e.view(st.in, st.inShape, b), dims(st.inShape), e.view(st.out, st.outShape, b))
				}
			}
		}), graph.OpFlatten)
		registerStep(prec, compileConcat, graph.OpConcat)
	}
}

func dims(s graph.Shape) kernels.Dims3 { return kernels.Dims3{H: s.H, W: s.W, C: s.C} }

func compileSlice(_ *compiler, _ *step, nd *graph.Node) (kernel, error) {
	sl := *nd.Slice
	return simple{f: func(e *Exec, st *step) {
		for b := range e.n {
			if st.int8 {
				kernels.Slice(e.view8(st.in, st.inShape, b), dims(st.inShape), sl.Start, sl.Step, dims(st.outShape), e.view8(st.out, st.outShape, b))
			} else {
				kernels.Slice(e.view(st.in, st.inShape, b), dims(st.inShape), sl.Start, sl.Step, dims(st.outShape), e.view(st.out, st.outShape, b))
			}
		}
	}}, nil
}

func compilePad(_ *compiler, _ *step, nd *graph.Node) (kernel, error) {
	pd := *nd.Pad
	var zero uint8
	if nd.Quant != nil {
		zero = uint8(nd.Quant.Zero)
	}
	return simple{f: func(e *Exec, st *step) {
		for b := range e.n {
			if st.int8 {
				kernels.Pad(e.view8(st.in, st.inShape, b), dims(st.inShape), pd.Before, pd.After, zero, e.view8(st.out, st.outShape, b))
			} else {
				kernels.Pad(e.view(st.in, st.inShape, b), dims(st.inShape), pd.Before, pd.After, pd.Value, e.view(st.out, st.outShape, b))
			}
		}
	}}, nil
}

// concat copies each input into its place along the axis.
type concat struct {
	serialKernel
	axis   int
	inputs []concatPart
}

type concatPart struct {
	off   int
	shape graph.Shape
	at    int // offset along the axis
}

func compileConcat(c *compiler, st *step, nd *graph.Node) (kernel, error) {
	k := &concat{axis: int(nd.Axis)}
	at := 0
	for _, in := range nd.Inputs {
		s := c.p.Graph.Nodes[in].Shape
		k.inputs = append(k.inputs, concatPart{off: c.p.valueOff(in, st.int8), shape: s, at: at})
		at += [3]int{s.H, s.W, s.C}[nd.Axis]
	}
	return k, nil
}

func (k *concat) run(e *Exec, st *step, _, _ int) {
	for b := range e.n {
		for _, part := range k.inputs {
			if st.int8 {
				kernels.ConcatPart(e.view8(part.off, part.shape, b), dims(part.shape), e.view8(st.out, st.outShape, b), dims(st.outShape), k.axis, part.at)
			} else {
				kernels.ConcatPart(e.view(part.off, part.shape, b), dims(part.shape), e.view(st.out, st.outShape, b), dims(st.outShape), k.axis, part.at)
			}
		}
	}
}

func (k *concat) describe(_ *Plan, st *step) string { return opName(st) }
