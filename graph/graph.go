// Package graph holds the network description edge-resnet runs: a small
// dataflow graph of NHWC float32 operators (Graph), its shape inference,
// the reference evaluator every faster path is tested against (Eval), and
// the rewrites that prepare a graph for inference (Fuse: BatchNorm folding,
// bias/residual/ReLU fusion). Each op is defined in one file, op_*.go.
//
// Conventions of the graph:
//   - The batch is not part of shapes. Every value is a Shape{H, W, C}
//     tensor of one sample stored NHWC (channels fastest); a batch of them
//     is stored sample after sample (NHWC with N outermost). A vector of n numbers is
//     Shape{1, 1, n}; that is also how NCHW [1,C,1,1] and [1,C] look, so the
//     output of global average pooling and of Flatten share one layout.
//   - Convolution weights are HWIO: W[((kh*KW+kw)*Cin+ci)*Cout+co].
//   - Dense weights are [In][Out]: W[i*Out+o].
//   - Nodes are in topological order: a node's inputs are earlier nodes.
//     Node 0 is the single OpInput node.
package graph

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error that reports an inconsistent graph.
var ErrInvalid = errors.New("invalid graph")

// Shape is the shape of one activation tensor (batch 1, NHWC).
type Shape struct{ H, W, C int }

// Size is the number of elements.
func (s Shape) Size() int { return s.H * s.W * s.C }

func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.H, s.W, s.C) }

// dims is s indexed by Axis.
func (s Shape) dims() [3]int { return [3]int{s.H, s.W, s.C} }

func shapeOf(d [3]int) Shape { return Shape{H: d[0], W: d[1], C: d[2]} }

// Axis names a dimension of a Shape.
type Axis uint8

const (
	AxisH Axis = iota
	AxisW
	AxisC
)

func (a Axis) String() string { return [...]string{"H", "W", "C"}[a%3] }

// Pads are the zero (or -inf for max pooling) borders added before a window op.
type Pads struct{ Top, Left, Bottom, Right int }

// Node is one operator. Exactly the attribute pointer of its Op is set.
type Node struct {
	Name   string // the source's name for error messages and inspect
	Op     Op
	Inputs []int // indices of earlier nodes
	Shape  Shape // output shape, set by InferShapes

	// Relu fuses max(x,0) into the output of OpConv, OpAdd and OpDense
	// (after the residual add).
	Relu bool

	// Clamp, set only by FuseWith's Clip folding, is a Clip fused into
	// the output of OpConv, OpAdd, OpDense or OpAffine, applied last
	// (after Relu): min(max(x, Min), Max), NaN passing, as the Clip op.
	// Model images do not store it (package firmware refuses to).
	Clamp *Clip

	// Quant, when set, is the int8 quantization of this node's output
	// (from calibration); an int8 plan keeps such values in uint8.
	Quant *QParams

	Conv   *Conv    // OpConv: Inputs = [x] or [x, residual]
	Pool   *Pool    // OpMaxPool, OpAvgPool
	Affine *Affine  // OpAffine
	Dense  *Dense   // OpDense
	Pad    *PadOp   // OpPad
	Slice  *SliceOp // OpSlice
	Axis   Axis     // OpConcat

	Clip        *Clip        // OpClip
	HardSigmoid *HardSigmoid // OpHardSigmoid
}

// Graph is a single-input, single-output network. Shapes are those of one
// sample; Batch is the number of samples the graph's source declares
// (an ONNX input of fixed batch 4 has Batch 4), 0 or 1 meaning one.
// Samples never mix: every op computes each sample on its own.
type Graph struct {
	Nodes  []*Node
	Output int // index of the node whose value is the result (the first output)
	Batch  int

	// Extra lists the further outputs of a graph with several (after
	// Output), and OutputNames names all of them in order (nil: unnamed).
	Extra       []int
	OutputNames []string
}

// Outputs returns every output node, Output first.
func (g *Graph) Outputs() []int { return append([]int{g.Output}, g.Extra...) }

// Input returns the shape the graph takes.
func (g *Graph) Input() Shape { return g.Nodes[0].Shape }

// OutputShape returns the shape of the result.
func (g *Graph) OutputShape() Shape { return g.Nodes[g.Output].Shape }

// Add appends a node and returns its index.
func (g *Graph) Add(n *Node) int {
	g.Nodes = append(g.Nodes, n)
	return len(g.Nodes) - 1
}

// Consumers returns, for each node, how many times it is used as an input
// (the output counts as one use).
func (g *Graph) Consumers() []int {
	c := make([]int, len(g.Nodes))
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in >= 0 && in < len(c) {
				c[in]++
			}
		}
	}
	for _, o := range g.Outputs() {
		if o >= 0 && o < len(c) {
			c[o]++
		}
	}
	return c
}

// Limits of a graph. They bound every dimension and element count so that
// index arithmetic in kernels cannot overflow (also on 32-bit ARM) and a
// hostile file cannot ask for terabytes. Importers check them first to
// report errors in their own terms.
const (
	MaxDim        = 1 << 16
	MaxElements   = 1 << 31 / 4 // 2 GiB of float32 per tensor
	MaxConvWindow = 64          // kernel, stride and dilation of a Conv
	MaxPoolWindow = 1024        // window and stride of pooling
	MaxBatch      = 1 << 16     // Graph.Batch
	MaxOutputs    = 64          // outputs of a graph (Output and Extra)
)

// Errorf returns an ErrInvalid error that names node i.
// format may wrap causes with %w, which errors.Is then finds too.
func (g *Graph) Errorf(i int, format string, args ...any) error {
	n := g.Nodes[i]
	return fmt.Errorf("%w: node %d %q (%s): "+format, append([]any{ErrInvalid, i, n.Name, n.Op}, args...)...)
}

// WindowOut is the output length of a sliding window; ceil selects ONNX
// ceil_mode, where the last window must start inside the input or the
// leading padding (the PyTorch/ONNX rule).
func WindowOut(in, k, stride, dil, padBefore, padAfter int, ceil bool) int {
	span := dil*(k-1) + 1
	num := in + padBefore + padAfter - span
	if num < 0 {
		return 0
	}
	if ceil {
		o := (num+stride-1)/stride + 1
		if (o-1)*stride >= in+padBefore {
			o--
		}
		return o
	}
	return num/stride + 1
}

// ValidShape reports whether s is non-empty and within the limits.
func ValidShape(s Shape) bool {
	return s.H >= 1 && s.W >= 1 && s.C >= 1 && s.H <= MaxDim && s.W <= MaxDim && s.C <= MaxDim &&
		int64(s.H)*int64(s.W)*int64(s.C) <= MaxElements
}

// InferShapes checks every node and sets its Shape. The input node's Shape
// must be set by the caller. It never panics on a malformed graph.
func (g *Graph) InferShapes() error {
	if len(g.Nodes) == 0 || g.Nodes[0] == nil || g.Nodes[0].Op != OpInput {
		return fmt.Errorf("%w: the first node must be the input", ErrInvalid)
	}
	if g.Batch < 0 || g.Batch > MaxBatch {
		return fmt.Errorf("%w: batch %d is outside [0, %d]", ErrInvalid, g.Batch, MaxBatch)
	}
	for _, o := range g.Outputs() {
		if o < 0 || o >= len(g.Nodes) {
			return fmt.Errorf("%w: output index %d out of range", ErrInvalid, o)
		}
	}
	if len(g.Extra) >= MaxOutputs {
		return fmt.Errorf("%w: %d outputs, at most %d", ErrInvalid, 1+len(g.Extra), MaxOutputs)
	}
	if len(g.OutputNames) != 0 && len(g.OutputNames) != 1+len(g.Extra) {
		return fmt.Errorf("%w: %d output names for %d outputs", ErrInvalid, len(g.OutputNames), 1+len(g.Extra))
	}
	for i, n := range g.Nodes {
		if n == nil {
			return fmt.Errorf("%w: node %d is nil", ErrInvalid, i)
		}
		if i > 0 && n.Op == OpInput {
			return g.Errorf(i, "a second input node")
		}
		for _, in := range n.Inputs {
			if in < 0 || in >= i {
				return g.Errorf(i, "input index %d is not an earlier node", in)
			}
		}
		d := &ops[0]
		if n.Op < numOps {
			d = &ops[n.Op]
		}
		if n.Op >= numOps || d.infer == nil {
			return g.Errorf(i, "unknown op")
		}
		s, err := d.infer(g, i)
		if err != nil {
			return err
		}
		if err := checkClamp(n); err != nil {
			return g.Errorf(i, "%w", err)
		}
		if n.Quant != nil {
			if err := n.Quant.check(); err != nil {
				return g.Errorf(i, "%w", err)
			}
		}
		if !ValidShape(s) {
			return g.Errorf(i, "output shape %v is empty or too large", s)
		}
		n.Shape = s
	}
	return nil
}

func (g *Graph) want(i, nIn int, attr bool) error {
	n := g.Nodes[i]
	if len(n.Inputs) != nIn {
		return g.Errorf(i, "has %d inputs, want %d", len(n.Inputs), nIn)
	}
	if !attr {
		return g.Errorf(i, "attributes missing")
	}
	return nil
}

func checkPads(p Pads) error {
	for _, v := range [4]int{p.Top, p.Left, p.Bottom, p.Right} {
		if v < 0 || v > MaxDim {
			return fmt.Errorf("padding %+v negative or too large", p)
		}
	}
	return nil
}

// MACs returns the multiply-accumulates of one inference of node i.
func (g *Graph) MACs(i int) int64 {
	n := g.Nodes[i]
	if n.Op < numOps && ops[n.Op].macs != nil {
		return ops[n.Op].macs(n)
	}
	return 0
}

// Params returns the number of weights and biases of node i.
func (g *Graph) Params(i int) int64 {
	n := g.Nodes[i]
	if n.Op < numOps && ops[n.Op].params != nil {
		return ops[n.Op].params(n)
	}
	return 0
}
