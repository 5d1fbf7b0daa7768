package onnx

import (
	"fmt"
	"slices"

	"github.com/edge-resnet/edge-resnet/graph"
)

// The model input. The graph takes float32 NHWC samples, one after the
// other. An ONNX input is one of:
//   - FLOAT [N,C,H,W] (NCHW, the usual export);
//   - FLOAT [N,H,W,C] read only by Transposes with perm [0,3,1,2] (a
//     Keras/TensorFlow model converted by tf2onnx, or a PyTorch model that
//     permutes its input first): that is the graph's own layout, so the
//     Transposes disappear and Info.InputLayout is "NHWC";
//   - an 8- or 16-bit integer tensor (UINT8 images) of either layout, read
//     only by Casts to FLOAT (through Identity, and before or after that
//     Transpose). Every such value is exactly a float32, so the graph takes
//     the values as float32 and the Casts disappear; Info.InputType names
//     the ONNX type. Wider integers (and BOOL) are refused: their Cast
//     would round.
//
// N, when fixed, is the graph's Batch (samples never mix: an operator
// across the batch axis is refused); a symbolic N is batch 1.

// Layouts of Info.InputLayout.
const (
	LayoutNCHW = "NCHW"
	LayoutNHWC = "NHWC"
)

// rawInput marks the model input (and its Identity and Cast copies) until
// the nodes that make it an NCHW float activation have read it.
type rawInput uint8

const (
	rawInt  rawInput = 1 << iota // an integer tensor: only a Cast to FLOAT may compute with it
	rawNHWC                      // [N,H,W,C]: only a Transpose with perm [0,3,1,2] may read it
)

// needs names what a raw value still waits for.
func (r rawInput) needs() string {
	switch {
	case r&rawInt != 0 && r&rawNHWC != 0:
		return "Cast to FLOAT and Transpose to NCHW"
	case r&rawInt != 0:
		return "Cast to FLOAT"
	}
	return "Transpose to NCHW (perm [0,3,1,2])"
}

// integerInput reports whether the input type is an integer type whose
// values float32 holds exactly.
func integerInput(dt int64) bool {
	return dt == dtUint8 || dt == dtInt8 || dt == dtUint16 || dt == dtInt16
}

// addInput adds the input node: its layout, type, batch and shape.
func (b *builder) addInput(gp *graphProto, live []bool, in *valueInfo, opt Options, info *Info) error {
	if !in.hasType || !in.isTensor {
		return unsupportedf("input %q is not a tensor", in.name)
	}
	var raw rawInput
	switch {
	case in.elemType == dtFloat:
	case integerInput(in.elemType):
		raw = rawInt
	default:
		return unsupportedf("input %q has type %s; only FLOAT inputs (and UINT8, INT8, UINT16, INT16 inputs cast to FLOAT) are supported", in.name, dtName(in.elemType))
	}
	r := inputReaders{gp: gp, live: live, outs: map[string]bool{}}
	for _, o := range gp.outputs {
		r.outs[o.name] = true
	}
	r.index()
	if err := r.walk(in.name, raw == rawInt, false); err != nil {
		return fmt.Errorf("input %q has type %s: %w", in.name, dtName(in.elemType), err)
	}
	info.InputLayout, info.InputType = LayoutNCHW, dtName(in.elemType)
	if r.toNCHW > 0 && r.other == 0 {
		info.InputLayout = LayoutNHWC
		raw |= rawNHWC
	}
	s, batch, err := inputShape(in, opt, info.InputLayout)
	if err != nil {
		return err
	}
	b.batch = batch
	b.g.Add(&graph.Node{Name: in.name, Op: graph.OpInput, Shape: s})
	b.shapes = append(b.shapes, s)
	b.users = append(b.users, 0)
	b.refs = append(b.refs, b.uses[in.name])
	b.vals[in.name] = &value{kind: vAct, node: 0, rank: 4, shape: s, batch: batch, raw: raw}
	return nil
}

// inputReaders follows the input through the nodes that read it.
type inputReaders struct {
	gp      *graphProto
	live    []bool
	outs    map[string]bool  // the graph outputs
	readers map[string][]int // node indices
	toNCHW  int              // Transposes [0,3,1,2] of the input
	other   int              // other reads of the float input (and the graph output)
}

func (r *inputReaders) index() {
	r.readers = map[string][]int{}
	for i, n := range r.gp.nodes {
		if r.live[i] {
			for _, name := range n.inputs {
				r.readers[name] = append(r.readers[name], i)
			}
		}
	}
}

// walk visits the readers of name, a copy of the input; needCast says that
// it is still an integer tensor, transposed that it is already NCHW.
func (r *inputReaders) walk(name string, needCast, transposed bool) error {
	if r.outs[name] {
		if needCast {
			return unsupportedf("it is the graph output")
		}
		r.other++
	}
	for _, i := range r.readers[name] {
		n := r.gp.nodes[i]
		if n.domain != "" && n.domain != "ai.onnx" || len(n.outputs) == 0 {
			r.other++
			continue
		}
		out := n.outputs[0]
		switch {
		case n.opType == "Identity":
			if err := r.walk(out, needCast, transposed); err != nil {
				return err
			}
		case n.opType == "Cast" && castsToFloat(n):
			if err := r.walk(out, false, transposed); err != nil {
				return err
			}
		case n.opType == "Transpose" && !transposed && isToNCHW(n):
			r.toNCHW++
			if needCast {
				if err := r.walk(out, true, true); err != nil {
					return err
				}
			}
		case needCast:
			return unsupportedf("only a Cast to FLOAT may compute with it, and node %d %q (%s) reads it", i, n.name, n.opType)
		case !transposed:
			r.other++
		}
	}
	return nil
}

func castsToFloat(n *nodeProto) bool {
	to, err := n.getInt("to", 0)
	return err == nil && to == dtFloat
}

// isToNCHW reports whether a Transpose has perm [0,3,1,2].
func isToNCHW(n *nodeProto) bool {
	perm, ok, err := n.getInts("perm")
	return err == nil && ok && slices.Equal(perm, []int64{0, 3, 1, 2})
}

// inputShape reads the input shape of one sample and the batch, applying
// the Options overrides of H and W.
func inputShape(in *valueInfo, opt Options, layout string) (graph.Shape, int, error) {
	if !in.hasShape {
		return graph.Shape{}, 0, unsupportedf("input %q has no shape; want [N,C,H,W]", in.name)
	}
	if len(in.dims) != 4 {
		return graph.Shape{}, 0, unsupportedf("input %q has rank %d (%s); only 4-D inputs (NCHW, or NHWC transposed to NCHW) are supported", in.name, len(in.dims), dimsString(in.dims))
	}
	d := in.dims
	hi, wi, ci := 2, 3, 1
	if layout == LayoutNHWC {
		hi, wi, ci = 1, 2, 3
	}
	batch := 1
	if d[0].hasValue && d[0].value > 1 {
		if d[0].value > graph.MaxBatch {
			return graph.Shape{}, 0, unsupportedf("input %q has batch size %d; at most %d is supported", in.name, d[0].value, graph.MaxBatch)
		}
		batch = int(d[0].value)
	}
	if !d[ci].hasValue || d[ci].value < 1 {
		return graph.Shape{}, 0, unsupportedf("input %q has no fixed channel count (%s)", in.name, dimsString(in.dims))
	}
	if d[ci].value > maxDim {
		return graph.Shape{}, 0, unsupportedf("input %q: %d channels is too many", in.name, d[ci].value)
	}
	h, err := spatialDim(in, d[hi], opt.Height, "height", "Height")
	if err != nil {
		return graph.Shape{}, 0, err
	}
	w, err := spatialDim(in, d[wi], opt.Width, "width", "Width")
	if err != nil {
		return graph.Shape{}, 0, err
	}
	s := graph.Shape{H: h, W: w, C: int(d[ci].value)}
	if !graph.ValidShape(s) {
		return graph.Shape{}, 0, unsupportedf("input %q: shape %v is too large", in.name, s)
	}
	return s, batch, nil
}

// spatialDim is the height or width of the input: the override if given,
// else the fixed dimension.
func spatialDim(in *valueInfo, dp dimProto, override int, what, opt string) (int, error) {
	if override > 0 {
		return override, nil
	}
	if !dp.hasValue || dp.value < 1 {
		return 0, unsupportedf("input %q: %s is symbolic (%s); set Options.%s", in.name, what, dimsString(in.dims), opt)
	}
	if dp.value > maxDim {
		return 0, unsupportedf("input %q: %s %d is too large", in.name, what, dp.value)
	}
	return int(dp.value), nil
}
