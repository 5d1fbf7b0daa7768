package graph

import "fmt"

// Op is the kind of a graph node.
type Op uint8

// The ops of a graph. Each has one file here, op_<name>.go, that holds its
// attributes, shape rule, reference evaluation, MACs and fusion, and
// registers them in the op table (opDef), with the codec of its attributes
// in a model image; the runtime's steps and package firmware look the op up
// by this number or its name.
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
	OpSigmoid                 // y = 1/(1+exp(-x))
	OpHardSigmoid             // y = clamp(alpha*x + beta, 0, 1)
	OpClip                    // y = clamp(x, Min, Max) (ReLU6 is Clip(0, 6))
	OpMul                     // y = a*b, same shapes or one operand 1x1xC (squeeze-and-excitation)
	numOps
)

// Conversions an int8 Plan inserts between values of different
// precision. They never appear in a Graph.
const (
	OpQuantize   Op = numOps + iota // float32 -> uint8
	OpDequantize                    // uint8 -> float32
)

// opDef is everything this package knows about one op.
type opDef struct {
	name string
	// infer checks node i of g (its inputs' shapes are set) and returns
	// its output shape.
	infer func(g *Graph, i int) (Shape, error)
	// eval computes node n from its inputs' values (in, in the order of
	// n.Inputs) into out, for one sample, in float64 where it sums. The
	// fused Relu is applied by the caller.
	eval func(g *Graph, n *Node, in [][]float32, out []float32)
	// macs and params count multiply-accumulates and parameters; nil is 0.
	macs, params func(n *Node) int64
	// fuse, if set, rewrites node i in place or merges it into one of its
	// inputs, returning that input's index (or -1): see Fuse.
	fuse func(f *fuser, i int) int
	// int8 is the op's int8 form (nil: Int8None).
	int8 func(n *Node) Int8Form
	// attrKey names the op's attribute object in a model image ("" for an
	// op without attributes); encode writes it and decode reads it
	// (attrs.go).
	attrKey string
	encode  func(n *Node, w AttrWriter)
	decode  func(n *Node, r AttrReader)
	// weights returns a layer's float32 and int8 weights (ops with weights).
	weights func(n *Node) ([]float32, *QWeights)
	// describe, if set, summarizes node n's attributes for reports
	// (" 3x3/2 +bias"), after the op's name.
	describe func(g *Graph, n *Node) string
	// feature, if set, names what a reader of a model image must support to
	// read node n correctly beyond its op's name ("" if nothing):
	// attributes that older readers would ignore but must not.
	feature func(n *Node) string
}

// FeatureGroupedConv is the model image feature of grouped convolutions:
// a reader that ignores "group" would misread the weights.
const FeatureGroupedConv = "grouped_conv"

// Features lists every feature Node.Feature may return.
func Features() []string { return []string{FeatureGroupedConv} }

// Describe summarizes node i for reports: its op, its main attributes and
// what fusion put into it ("Conv 3x3/2 +bias +residual(layer1.0) +relu",
// "+clip[0, 6]" for a folded Clip).
func (g *Graph) Describe(i int) string {
	n := g.Nodes[i]
	s := n.Op.String()
	if n.Op < numOps && ops[n.Op].describe != nil {
		s += ops[n.Op].describe(g, n)
	}
	if n.Relu {
		s += " +relu"
	}
	if c := n.Clamp; c != nil {
		s += fmt.Sprintf(" +clip[%v, %v]", c.Min, c.Max)
	}
	return s
}

// Feature names what a reader of a model image must support to read n
// correctly beyond its op's name, or "".
func (n *Node) Feature() string {
	if n.Op < numOps && ops[n.Op].feature != nil {
		return ops[n.Op].feature(n)
	}
	return ""
}

// Int8Form is what an op is in an int8 plan (docs/INT8.md).
type Int8Form uint8

const (
	Int8None    Int8Form = iota // float32 only
	Int8Weights                 // int8 weights, uint8 activations in and out, requantized (Conv, Dense)
	Int8Requant                 // uint8 in and out with its own output quantization (Add, GlobalAvgPool)
	Int8Move                    // moves or compares values, so its output has its inputs' quantization (MaxPool, Slice, Concat, Flatten, a zero Pad)
)

// Int8 returns the int8 form of node n's op.
func (n *Node) Int8() Int8Form {
	if n.Op < numOps && ops[n.Op].int8 != nil {
		return ops[n.Op].int8(n)
	}
	return Int8None
}

func int8Form(f Int8Form) func(*Node) Int8Form { return func(*Node) Int8Form { return f } }

var ops [numOps]opDef

// register is called by each op file's init.
func register(op Op, d opDef) {
	if ops[op].name != "" {
		panic("graph: op registered twice: " + d.name)
	}
	if (d.attrKey != "") != (d.encode != nil) || (d.attrKey != "") != (d.decode != nil) {
		panic("graph: op " + d.name + " needs an attribute key, encode and decode, or none of them")
	}
	ops[op] = d
}

func (o Op) String() string {
	if o < numOps && ops[o].name != "" {
		return ops[o].name
	}
	switch o {
	case OpQuantize:
		return "Quantize"
	case OpDequantize:
		return "Dequantize"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// ParseOp is the inverse of Op.String for the ops of a graph.
func ParseOp(s string) (Op, bool) {
	for i := range ops {
		if ops[i].name == s && s != "" {
			return Op(i), true
		}
	}
	return 0, false
}
