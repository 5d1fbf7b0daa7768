package graph

import (
	"fmt"
	"strings"
)

// The ops that move values without arithmetic: Input, Pad, Slice, Concat
// and Flatten.

// PadOp adds constant borders on every axis.
type PadOp struct {
	Before, After [3]int // indexed by Axis
	Value         float32
}

// SliceOp keeps indices Start, Start+Step, ... < End on every axis.
type SliceOp struct {
	Start, End, Step [3]int // indexed by Axis; 0 <= Start <= End <= dim, Step >= 1
}

func init() {
	register(OpInput, opDef{name: "Input", infer: inferInput})
	register(OpPad, opDef{name: "Pad", infer: inferPad, eval: evalPad, describe: func(_ *Graph, n *Node) string {
		return fmt.Sprintf(" %v/%v", n.Pad.Before, n.Pad.After)
	}, int8: int8Pad,
		attrKey: "pad", encode: encodePad, decode: decodePad})
	register(OpSlice, opDef{name: "Slice", infer: inferSlice, eval: evalSlice, describe: func(_ *Graph, n *Node) string {
		return fmt.Sprintf(" step %v", n.Slice.Step)
	}, fuse: fuseSlice, int8: int8Form(Int8Move),
		attrKey: "slice", encode: encodeSlice, decode: decodeSlice})
	register(OpConcat, opDef{name: "Concat", infer: inferConcat, eval: evalConcat, describe: func(_ *Graph, n *Node) string {
		return fmt.Sprintf(" on %v", n.Axis)
	}, int8: int8Form(Int8Move),
		attrKey: "concat", encode: encodeConcat, decode: decodeConcat})
	register(OpFlatten, opDef{name: "Flatten", infer: inferFlatten, eval: evalFlatten, fuse: fuseFlatten, int8: int8Form(Int8Move)})
}

// encodePad writes the "pad" object: before and after ([H, W, C]) and value.
func encodePad(n *Node, w AttrWriter) {
	w.Ints("before", n.Pad.Before[:])
	w.Ints("after", n.Pad.After[:])
	w.Float("value", n.Pad.Value)
}

func decodePad(n *Node, r AttrReader) {
	n.Pad = &PadOp{Before: readAxes(r, "before"), After: readAxes(r, "after"), Value: r.Float("value")}
}

// encodeSlice writes the "slice" object: start, end and step ([H, W, C]).
func encodeSlice(n *Node, w AttrWriter) {
	w.Ints("start", n.Slice.Start[:])
	w.Ints("end", n.Slice.End[:])
	w.Ints("step", n.Slice.Step[:])
}

func decodeSlice(n *Node, r AttrReader) {
	n.Slice = &SliceOp{Start: readAxes(r, "start"), End: readAxes(r, "end"), Step: readAxes(r, "step")}
}

// encodeConcat writes the "concat" object: axis, "H", "W" or "C".
func encodeConcat(n *Node, w AttrWriter) { w.String("axis", n.Axis.String()) }

func decodeConcat(n *Node, r AttrReader) {
	switch s := r.String("axis"); s {
	case "H", "W", "C":
		n.Axis = Axis(strings.Index("HWC", s))
	default:
		r.Failf("axis", "%q is not H, W or C", s)
	}
}

// int8Pad: a zero pad moves values, as zero is the zero point's real value.
func int8Pad(n *Node) Int8Form {
	if n.Pad.Value == 0 {
		return Int8Move
	}
	return Int8None
}

// inferInput: the caller sets the input's shape.
func inferInput(g *Graph, i int) (Shape, error) {
	if len(g.Nodes[i].Inputs) != 0 {
		return Shape{}, g.Errorf(i, "input node has inputs")
	}
	return g.Nodes[i].Shape, nil
}

func inferPad(g *Graph, i int) (Shape, error) {
	n := g.Nodes[i]
	if err := g.want(i, 1, n.Pad != nil); err != nil {
		return Shape{}, err
	}
	dims := g.Nodes[n.Inputs[0]].Shape.dims()
	for a := range 3 {
		if n.Pad.Before[a] < 0 || n.Pad.After[a] < 0 || n.Pad.Before[a] > MaxDim || n.Pad.After[a] > MaxDim {
			return Shape{}, g.Errorf(i, "padding on %v is %d,%d (negative or huge)", Axis(a), n.Pad.Before[a], n.Pad.After[a])
		}
		dims[a] += n.Pad.Before[a] + n.Pad.After[a]
	}
	return shapeOf(dims), nil
}

func evalPad(g *Graph, n *Node, in [][]float32, out []float32) {
	p, x, xs, s := n.Pad, in[0], g.Nodes[n.Inputs[0]].Shape, n.Shape
	for h := 0; h < s.H; h++ {
		for w := 0; w < s.W; w++ {
			for c := 0; c < s.C; c++ {
				ih, iw, ic := h-p.Before[AxisH], w-p.Before[AxisW], c-p.Before[AxisC]
				v := p.Value
				if ih >= 0 && ih < xs.H && iw >= 0 && iw < xs.W && ic >= 0 && ic < xs.C {
					v = x[(ih*xs.W+iw)*xs.C+ic]
				}
				out[(h*s.W+w)*s.C+c] = v
			}
		}
	}
}

func inferSlice(g *Graph, i int) (Shape, error) {
	n := g.Nodes[i]
	if err := g.want(i, 1, n.Slice != nil); err != nil {
		return Shape{}, err
	}
	dims := g.Nodes[n.Inputs[0]].Shape.dims()
	var out [3]int
	for a := range 3 {
		s := n.Slice
		if s.Step[a] < 1 || s.Start[a] < 0 || s.Start[a] >= s.End[a] || s.End[a] > dims[a] {
			return Shape{}, g.Errorf(i, "slice %d:%d:%d on %v of size %d", s.Start[a], s.End[a], s.Step[a], Axis(a), dims[a])
		}
		out[a] = (s.End[a] - s.Start[a] + s.Step[a] - 1) / s.Step[a]
	}
	return shapeOf(out), nil
}

func evalSlice(g *Graph, n *Node, in [][]float32, out []float32) {
	sl, x, xs, s := n.Slice, in[0], g.Nodes[n.Inputs[0]].Shape, n.Shape
	for h := 0; h < s.H; h++ {
		for w := 0; w < s.W; w++ {
			for c := 0; c < s.C; c++ {
				ih := sl.Start[AxisH] + h*sl.Step[AxisH]
				iw := sl.Start[AxisW] + w*sl.Step[AxisW]
				ic := sl.Start[AxisC] + c*sl.Step[AxisC]
				out[(h*s.W+w)*s.C+c] = x[(ih*xs.W+iw)*xs.C+ic]
			}
		}
	}
}

// fuseSlice makes a Slice of a Slice used only by it one Slice.
func fuseSlice(f *fuser, i int) int {
	n := f.nodes[i]
	p := n.Inputs[0]
	if f.nodes[p].Op == OpSlice && f.uses[p] == 1 {
		inner, outer := f.nodes[p].Slice, n.Slice
		var m SliceOp
		for a := range 3 {
			m.Step[a] = inner.Step[a] * outer.Step[a]
			m.Start[a] = inner.Start[a] + outer.Start[a]*inner.Step[a]
			count := (outer.End[a] - outer.Start[a] + outer.Step[a] - 1) / outer.Step[a]
			m.End[a] = m.Start[a] + (count-1)*m.Step[a] + 1
		}
		n.Slice = &m
		n.Inputs[0] = f.nodes[p].Inputs[0]
		f.uses[p] = 0
	}
	return -1
}

func inferConcat(g *Graph, i int) (Shape, error) {
	n := g.Nodes[i]
	if len(n.Inputs) < 1 {
		return Shape{}, g.Errorf(i, "concat without inputs")
	}
	if n.Axis > AxisC {
		return Shape{}, g.Errorf(i, "bad axis %d", n.Axis)
	}
	out := g.Nodes[n.Inputs[0]].Shape
	for k := 1; k < len(n.Inputs); k++ {
		s := g.Nodes[n.Inputs[k]].Shape
		a, b := out.dims(), s.dims()
		for ax := range 3 {
			if Axis(ax) == n.Axis {
				a[ax] += b[ax]
			} else if a[ax] != b[ax] {
				return Shape{}, g.Errorf(i, "input %d has shape %v, want %v except on %v", k, s, out, n.Axis)
			}
		}
		if a[n.Axis] > MaxDim {
			return Shape{}, g.Errorf(i, "concatenated size too large")
		}
		out = shapeOf(a)
	}
	return out, nil
}

func evalConcat(g *Graph, n *Node, in [][]float32, out []float32) {
	s, off := n.Shape, 0
	for k, v := range in {
		vs := g.Nodes[n.Inputs[k]].Shape
		for h := 0; h < vs.H; h++ {
			for w := 0; w < vs.W; w++ {
				for c := 0; c < vs.C; c++ {
					oh, ow, oc := h, w, c
					switch n.Axis {
					case AxisH:
						oh += off
					case AxisW:
						ow += off
					default:
						oc += off
					}
					out[(oh*s.W+ow)*s.C+oc] = v[(h*vs.W+w)*vs.C+c]
				}
			}
		}
		off += vs.dims()[n.Axis]
	}
}

func inferFlatten(g *Graph, i int) (Shape, error) {
	if err := g.want(i, 1, true); err != nil {
		return Shape{}, err
	}
	return Shape{H: 1, W: 1, C: g.Nodes[g.Nodes[i].Inputs[0]].Shape.Size()}, nil
}

// evalFlatten writes NCHW order: index c*H*W + h*W + w.
func evalFlatten(g *Graph, n *Node, in [][]float32, out []float32) {
	x, xs := in[0], g.Nodes[n.Inputs[0]].Shape
	for h := 0; h < xs.H; h++ {
		for w := 0; w < xs.W; w++ {
			for c := 0; c < xs.C; c++ {
				out[(c*xs.H+h)*xs.W+w] = x[(h*xs.W+w)*xs.C+c]
			}
		}
	}
}

// fuseFlatten drops a Flatten of a 1x1xC tensor (a no-op in NHWC).
func fuseFlatten(f *fuser, i int) int {
	if s := f.nodes[f.nodes[i].Inputs[0]].Shape; s.H == 1 && s.W == 1 {
		return f.nodes[i].Inputs[0]
	}
	return -1
}
