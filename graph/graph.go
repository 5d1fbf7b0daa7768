// Package resnet holds the network description edge-resnet runs: a small
// dataflow graph of NHWC float32 operators (Graph), the ResNet family built
// from code (Build), the rewrites that prepare a graph for inference (Fuse:
// BatchNorm folding, bias/residual/ReLU fusion) and the execution plan that
// maps it onto kernels and an arena (Plan).
//
// Conventions of the graph:
//   - Batch size is 1 and not part of shapes. Every value is a Shape{H, W, C}
//     tensor stored NHWC (channels fastest). A vector of n numbers is
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
	"math"
)

// ErrInvalid is wrapped by every error that reports an inconsistent graph.
var ErrInvalid = errors.New("invalid graph")

// Op is the kind of a graph node.
type Op uint8

const (
	OpInput         Op = iota // the model input; no inputs
	OpConv                    // 2-D convolution (+bias)(+residual add)(+ReLU)
	OpAffine                  // per-channel y = x*Scale[c] + Shift[c] (inference BatchNorm, constant Mul/Add)
	OpRelu                    // y = max(x, 0)
	OpAdd                     // y = a + b, same shapes (+ReLU)
	OpMaxPool                 // max over windows; padding never wins
	OpAvgPool                 // mean over windows
	OpGlobalAvgPool           // mean over H and W: -> Shape{1,1,C}
	OpDense                   // fully connected on a vector (+bias)(+ReLU)
	OpPad                     // constant padding of H, W and C
	OpSlice                   // strided slice of H, W and C
	OpConcat                  // concatenation along one axis
	OpFlatten                 // -> vector in NCHW (C-major) order, as torch.flatten/ONNX Flatten
	OpSoftmax                 // softmax over C of a vector
	numOps
)

var opNames = [...]string{
	OpInput: "Input", OpConv: "Conv", OpAffine: "Affine", OpRelu: "Relu", OpAdd: "Add",
	OpMaxPool: "MaxPool", OpAvgPool: "AvgPool", OpGlobalAvgPool: "GlobalAvgPool",
	OpDense: "Dense", OpPad: "Pad", OpSlice: "Slice", OpConcat: "Concat",
	OpFlatten: "Flatten", OpSoftmax: "Softmax",
}

// Conversions an int8 Plan inserts between values of different
// precision. They never appear in a Graph.
const (
	OpQuantize   Op = numOps + iota // float32 -> uint8
	OpDequantize                    // uint8 -> float32
)

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	switch o {
	case OpQuantize:
		return "Quantize"
	case OpDequantize:
		return "Dequantize"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// ParseOp is the inverse of Op.String.
func ParseOp(s string) (Op, bool) {
	for i, n := range opNames {
		if n == s {
			return Op(i), true
		}
	}
	return 0, false
}

// Shape is the shape of one activation tensor (batch 1, NHWC).
type Shape struct{ H, W, C int }

// Size is the number of elements.
func (s Shape) Size() int { return s.H * s.W * s.C }

func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.H, s.W, s.C) }

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

// Conv is a 2-D convolution with groups = 1.
type Conv struct {
	KH, KW           int
	StrideH, StrideW int
	DilH, DilW       int
	Pad              Pads
	Cin, Cout        int
	Weight           []float32 // HWIO, len KH*KW*Cin*Cout; nil when only Quant is present
	Bias             []float32 // len Cout, or nil
	Quant            *QWeights // int8 weights (same HWIO layout), or nil
}

// Pool is a max or average pooling window.
type Pool struct {
	KH, KW           int
	StrideH, StrideW int
	Pad              Pads
	CeilMode         bool // output size rounds up (ONNX ceil_mode=1)
	CountIncludePad  bool // average pooling divides by the full window (ONNX count_include_pad=1)
}

// Affine is a per-channel scale and shift; inference BatchNorm is
// Scale = gamma/sqrt(var+eps), Shift = beta - mean*Scale.
type Affine struct {
	Scale []float32 // len C
	Shift []float32 // len C
}

// Dense is a fully connected layer on a vector.
type Dense struct {
	In, Out int
	Weight  []float32 // [In][Out]; nil when only Quant is present
	Bias    []float32 // len Out, or nil
	Quant   *QWeights // int8 weights (same [In][Out] layout), or nil
}

// QParams is the 8-bit quantization of one activation tensor: a stored
// q in [0, 255] stands for the real value Scale*(q-Zero). Tensors that
// follow a ReLU have Zero = 0.
type QParams struct {
	Scale float32 // > 0
	Zero  int32   // in [0, 255]
}

// QWeights are conv or dense weights quantized symmetrically per output
// channel: the real weight at index i with output channel o is
// Q[i]*Scale[o], Q[i] in [-127, 127]. Q has the layout of the float
// weights (HWIO for conv, [In][Out] for dense).
type QWeights struct {
	Q     []int8
	Scale []float32 // len = number of output channels, each > 0
}

// Dequantize returns the real weights Q[i]*Scale[i%out].
func (q *QWeights) Dequantize() []float32 {
	out := len(q.Scale)
	w := make([]float32, len(q.Q))
	for i, v := range q.Q {
		w[i] = float32(v) * q.Scale[i%out]
	}
	return w
}

// check validates q for n weights and out output channels.
func (q *QWeights) check(n int64, out int) error {
	if int64(len(q.Q)) != n || len(q.Scale) != out {
		return fmt.Errorf("int8 weights: %d values and %d scales, want %d and %d", len(q.Q), len(q.Scale), n, out)
	}
	for o, s := range q.Scale {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("int8 weights: scale of output channel %d is %v, want a finite positive number", o, s)
		}
	}
	for i, v := range q.Q {
		if v == -128 {
			return fmt.Errorf("int8 weights: value %d is -128, outside the symmetric range [-127, 127]", i)
		}
	}
	return nil
}

func (q *QParams) check() error {
	if !(q.Scale > 0) || math.IsInf(float64(q.Scale), 0) || q.Zero < 0 || q.Zero > 255 {
		return fmt.Errorf("activation quantization scale %v zero point %d: want scale > 0 and zero in [0, 255]", q.Scale, q.Zero)
	}
	return nil
}

// FloatWeight returns the float weights, dequantizing them when the layer
// carries only int8 weights.
func (c *Conv) FloatWeight() []float32 {
	if c.Weight == nil && c.Quant != nil {
		return c.Quant.Dequantize()
	}
	return c.Weight
}

// FloatWeight returns the float weights, dequantizing them when the layer
// carries only int8 weights.
func (d *Dense) FloatWeight() []float32 {
	if d.Weight == nil && d.Quant != nil {
		return d.Quant.Dequantize()
	}
	return d.Weight
}

// PadOp adds constant borders on every axis.
type PadOp struct {
	Before, After [3]int // indexed by Axis
	Value         float32
}

// SliceOp keeps indices Start, Start+Step, ... < End on every axis.
type SliceOp struct {
	Start, End, Step [3]int // indexed by Axis; 0 <= Start <= End <= dim, Step >= 1
}

// Node is one operator. Exactly the attribute pointer of its Op is set.
type Node struct {
	Name   string // the source's name for error messages and inspect
	Op     Op
	Inputs []int // indices of earlier nodes
	Shape  Shape // output shape, set by InferShapes

	// Relu fuses max(x,0) into the output of OpConv, OpAdd and OpDense
	// (after the residual add).
	Relu bool

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
}

// Graph is a single-input, single-output network.
type Graph struct {
	Nodes  []*Node
	Output int // index of the node whose value is the result
}

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
	if g.Output >= 0 && g.Output < len(c) {
		c[g.Output]++
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
)

// Errorf returns an ErrInvalid error that names node i.
func (g *Graph) Errorf(i int, format string, args ...any) error {
	n := g.Nodes[i]
	return fmt.Errorf("%w: node %d %q (%s): %s", ErrInvalid, i, n.Name, n.Op, fmt.Sprintf(format, args...))
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
	if g.Output < 0 || g.Output >= len(g.Nodes) {
		return fmt.Errorf("%w: output index %d out of range", ErrInvalid, g.Output)
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
		s, err := g.inferNode(i)
		if err != nil {
			return err
		}
		if n.Quant != nil {
			if err := n.Quant.check(); err != nil {
				return g.Errorf(i, "%v", err)
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

func (g *Graph) inferNode(i int) (Shape, error) {
	n := g.Nodes[i]
	in := func(k int) Shape { return g.Nodes[n.Inputs[k]].Shape }
	switch n.Op {
	case OpInput:
		if len(n.Inputs) != 0 {
			return Shape{}, g.Errorf(i, "input node has inputs")
		}
		return n.Shape, nil
	case OpConv:
		c := n.Conv
		if c == nil || (len(n.Inputs) != 1 && len(n.Inputs) != 2) {
			return Shape{}, g.Errorf(i, "want 1 or 2 inputs and conv attributes")
		}
		x := in(0)
		if c.KH < 1 || c.KW < 1 || c.StrideH < 1 || c.StrideW < 1 || c.DilH < 1 || c.DilW < 1 ||
			c.KH > MaxConvWindow || c.KW > MaxConvWindow || c.StrideH > MaxConvWindow || c.StrideW > MaxConvWindow || c.DilH > MaxConvWindow || c.DilW > MaxConvWindow {
			return Shape{}, g.Errorf(i, "kernel %dx%d stride %dx%d dilation %dx%d out of range", c.KH, c.KW, c.StrideH, c.StrideW, c.DilH, c.DilW)
		}
		if err := checkPads(c.Pad); err != nil {
			return Shape{}, g.Errorf(i, "%v", err)
		}
		if c.Cin != x.C {
			return Shape{}, g.Errorf(i, "weights take %d channels, input has %d", c.Cin, x.C)
		}
		nw := int64(c.KH) * int64(c.KW) * int64(c.Cin) * int64(c.Cout)
		if c.Cout < 1 || c.Cout > MaxDim || (int64(len(c.Weight)) != nw && (c.Weight != nil || c.Quant == nil)) {
			return Shape{}, g.Errorf(i, "weight has %d values, want %dx%dx%dx%d", len(c.Weight), c.KH, c.KW, c.Cin, c.Cout)
		}
		if c.Quant != nil {
			if err := c.Quant.check(nw, c.Cout); err != nil {
				return Shape{}, g.Errorf(i, "%v", err)
			}
		}
		if c.Bias != nil && len(c.Bias) != c.Cout {
			return Shape{}, g.Errorf(i, "bias has %d values, want %d", len(c.Bias), c.Cout)
		}
		out := Shape{
			H: WindowOut(x.H, c.KH, c.StrideH, c.DilH, c.Pad.Top, c.Pad.Bottom, false),
			W: WindowOut(x.W, c.KW, c.StrideW, c.DilW, c.Pad.Left, c.Pad.Right, false),
			C: c.Cout,
		}
		if len(n.Inputs) == 2 && in(1) != out {
			return Shape{}, g.Errorf(i, "residual shape %v differs from output %v", in(1), out)
		}
		return out, nil
	case OpAffine:
		if err := g.want(i, 1, n.Affine != nil); err != nil {
			return Shape{}, err
		}
		x := in(0)
		if len(n.Affine.Scale) != x.C || len(n.Affine.Shift) != x.C {
			return Shape{}, g.Errorf(i, "scale/shift have %d/%d values, input has %d channels", len(n.Affine.Scale), len(n.Affine.Shift), x.C)
		}
		return x, nil
	case OpRelu, OpSoftmax:
		if err := g.want(i, 1, true); err != nil {
			return Shape{}, err
		}
		x := in(0)
		if n.Op == OpSoftmax && (x.H != 1 || x.W != 1) {
			return Shape{}, g.Errorf(i, "softmax wants a vector, got %v", x)
		}
		return x, nil
	case OpAdd:
		if err := g.want(i, 2, true); err != nil {
			return Shape{}, err
		}
		if in(0) != in(1) {
			return Shape{}, g.Errorf(i, "operand shapes differ: %v and %v", in(0), in(1))
		}
		return in(0), nil
	case OpMaxPool, OpAvgPool:
		if err := g.want(i, 1, n.Pool != nil); err != nil {
			return Shape{}, err
		}
		p, x := n.Pool, in(0)
		if p.KH < 1 || p.KW < 1 || p.StrideH < 1 || p.StrideW < 1 || p.KH > MaxPoolWindow || p.KW > MaxPoolWindow || p.StrideH > MaxPoolWindow || p.StrideW > MaxPoolWindow {
			return Shape{}, g.Errorf(i, "window %dx%d stride %dx%d out of range", p.KH, p.KW, p.StrideH, p.StrideW)
		}
		if err := checkPads(p.Pad); err != nil {
			return Shape{}, g.Errorf(i, "%v", err)
		}
		if p.Pad.Top >= p.KH || p.Pad.Bottom >= p.KH || p.Pad.Left >= p.KW || p.Pad.Right >= p.KW {
			return Shape{}, g.Errorf(i, "padding %+v not smaller than the window %dx%d", p.Pad, p.KH, p.KW)
		}
		return Shape{
			H: WindowOut(x.H, p.KH, p.StrideH, 1, p.Pad.Top, p.Pad.Bottom, p.CeilMode),
			W: WindowOut(x.W, p.KW, p.StrideW, 1, p.Pad.Left, p.Pad.Right, p.CeilMode),
			C: x.C,
		}, nil
	case OpGlobalAvgPool:
		if err := g.want(i, 1, true); err != nil {
			return Shape{}, err
		}
		return Shape{1, 1, in(0).C}, nil
	case OpDense:
		if err := g.want(i, 1, n.Dense != nil); err != nil {
			return Shape{}, err
		}
		d, x := n.Dense, in(0)
		if x.H != 1 || x.W != 1 {
			return Shape{}, g.Errorf(i, "dense wants a vector, got %v (flatten first)", x)
		}
		nw := int64(d.In) * int64(d.Out)
		if d.In != x.C || d.Out < 1 || d.Out > MaxElements || (int64(len(d.Weight)) != nw && (d.Weight != nil || d.Quant == nil)) {
			return Shape{}, g.Errorf(i, "weight %dx%d (%d values) does not fit input of %d", d.In, d.Out, len(d.Weight), x.C)
		}
		if d.Quant != nil {
			if err := d.Quant.check(nw, d.Out); err != nil {
				return Shape{}, g.Errorf(i, "%v", err)
			}
		}
		if d.Bias != nil && len(d.Bias) != d.Out {
			return Shape{}, g.Errorf(i, "bias has %d values, want %d", len(d.Bias), d.Out)
		}
		return Shape{1, 1, d.Out}, nil
	case OpPad:
		if err := g.want(i, 1, n.Pad != nil); err != nil {
			return Shape{}, err
		}
		x := in(0)
		dims := [3]int{x.H, x.W, x.C}
		for a := range 3 {
			if n.Pad.Before[a] < 0 || n.Pad.After[a] < 0 || n.Pad.Before[a] > MaxDim || n.Pad.After[a] > MaxDim {
				return Shape{}, g.Errorf(i, "padding on %v is %d,%d (negative or huge)", Axis(a), n.Pad.Before[a], n.Pad.After[a])
			}
			dims[a] += n.Pad.Before[a] + n.Pad.After[a]
		}
		return Shape{dims[0], dims[1], dims[2]}, nil
	case OpSlice:
		if err := g.want(i, 1, n.Slice != nil); err != nil {
			return Shape{}, err
		}
		x := in(0)
		dims := [3]int{x.H, x.W, x.C}
		var out [3]int
		for a := range 3 {
			s := n.Slice
			if s.Step[a] < 1 || s.Start[a] < 0 || s.Start[a] >= s.End[a] || s.End[a] > dims[a] {
				return Shape{}, g.Errorf(i, "slice %d:%d:%d on %v of size %d", s.Start[a], s.End[a], s.Step[a], Axis(a), dims[a])
			}
			out[a] = (s.End[a] - s.Start[a] + s.Step[a] - 1) / s.Step[a]
		}
		return Shape{out[0], out[1], out[2]}, nil
	case OpConcat:
		if len(n.Inputs) < 1 {
			return Shape{}, g.Errorf(i, "concat without inputs")
		}
		if n.Axis > AxisC {
			return Shape{}, g.Errorf(i, "bad axis %d", n.Axis)
		}
		out := in(0)
		for k := 1; k < len(n.Inputs); k++ {
			s := in(k)
			a, b := [3]int{out.H, out.W, out.C}, [3]int{s.H, s.W, s.C}
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
			out = Shape{a[0], a[1], a[2]}
		}
		return out, nil
	case OpFlatten:
		if err := g.want(i, 1, true); err != nil {
			return Shape{}, err
		}
		return Shape{1, 1, in(0).Size()}, nil
	}
	return Shape{}, g.Errorf(i, "unknown op")
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
	switch n.Op {
	case OpConv:
		c := n.Conv
		return int64(n.Shape.H) * int64(n.Shape.W) * int64(c.Cout) * int64(c.KH*c.KW*c.Cin)
	case OpDense:
		return int64(n.Dense.In) * int64(n.Dense.Out)
	}
	return 0
}

// Params returns the number of weights and biases of node i.
func (g *Graph) Params(i int) int64 {
	n := g.Nodes[i]
	switch n.Op {
	case OpConv:
		c := n.Conv
		return int64(c.KH)*int64(c.KW)*int64(c.Cin)*int64(c.Cout) + int64(len(c.Bias))
	case OpDense:
		return int64(n.Dense.In)*int64(n.Dense.Out) + int64(len(n.Dense.Bias))
	case OpAffine:
		return int64(2 * len(n.Affine.Scale))
	}
	return 0
}
