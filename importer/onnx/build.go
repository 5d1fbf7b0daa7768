package onnx

import (
	"fmt"
	"slices"
	"strings"

	"github.com/edge-resnet/edge-resnet/graph"
)

// Opset range this importer knows. Opsets 19-21 only add data types and
// attributes (which are checked where they matter) to the operators we map.
const (
	minOpset = 7
	maxOpset = 21
)

// Limits of the resnet graph (resnet.InferShapes), checked here first so
// that a model outside them fails with a message about the ONNX node.
const (
	maxDim        = graph.MaxDim
	maxConvWindow = graph.MaxConvWindow
	maxPoolWindow = graph.MaxPoolWindow
)

type valueKind uint8

const (
	vConst   valueKind = iota + 1 // a constant tensor
	vAct                          // an activation: the output of a resnet node
	vMissing                      // an output we do not produce; err says why
)

// value is what an ONNX tensor name stands for during the import.
type value struct {
	kind valueKind

	// vConst: tp is an initializer not yet decoded, t the decoded tensor.
	tp *tensorProto
	t  *tensor

	// vAct: the resnet node and the ONNX rank: 4 for [N,C,H,W], 2 for
	// [N,C] (then shape is 1x1xC, the same memory layout); shape is that
	// of one sample, batch is N (at least 1).
	node  int
	rank  int
	shape graph.Shape
	batch int
	// raw is set on the model input until the nodes that make it an NCHW
	// float activation have read it (input.go).
	raw rawInput
	// bcast marks an Expand of the [N,C,1,1] node to [N,C,H,W] (shape):
	// only a Mul may read it, which broadcasts itself (activation.go).
	bcast bool

	err error // vMissing
}

// dims returns the NCHW dims of an activation.
func (v *value) dims() []int {
	n := max(v.batch, 1)
	if v.rank == 2 {
		return []int{n, v.shape.C}
	}
	return []int{n, v.shape.C, v.shape.H, v.shape.W}
}

func (v *value) isVector() bool { return v.shape.H == 1 && v.shape.W == 1 }

// as is v seen as an ONNX tensor of another rank with the same memory
// (the graph node is the same: [N,C,1,1] and [N,C] are one layout).
func (v *value) as(rank int) *value {
	c := *v
	c.rank = rank
	return &c
}

type builder struct {
	opset int64
	g     *graph.Graph
	batch int // the input's fixed batch N, 1 when it is symbolic
	// Per resnet node: the shape the importer computed; how many resnet
	// nodes read it so far; and how many reads its value still has among
	// the ONNX nodes not yet imported (plus the graph output). A MatMul's
	// bias Add may be merged into the Dense only when the Add is its sole
	// reader, past and future.
	shapes []graph.Shape
	users  []int
	refs   []int

	vals map[string]*value
	uses map[string]int
	mem  *budget // what decoding and folding constants may still allocate

	idx int // index of the ONNX node being imported
	n   *nodeProto
}

func importModel(data []byte, opt Options) (*graph.Graph, *Info, error) {
	if len(data) > maxFileSize {
		return nil, nil, unsupportedf("model is %d bytes, more than the 2 GiB a protobuf message can hold", len(data))
	}
	if opt.Height < 0 || opt.Width < 0 || opt.Height > maxDim || opt.Width > maxDim {
		return nil, nil, unsupportedf("Options.Height/Width %d/%d out of range 0..%d", opt.Height, opt.Width, maxDim)
	}
	mem := newBudget(len(data))
	m, err := (&parser{mem: mem}).model(data)
	if err != nil {
		return nil, nil, err
	}
	if m.graph == nil {
		return nil, nil, corruptf("the model has no graph")
	}
	info := &Info{Producer: m.producer, ProducerVersion: m.producerVersion, IRVersion: m.irVersion, Nodes: len(m.graph.nodes)}
	found := false
	for _, o := range m.opsets {
		if o.domain == "" || o.domain == "ai.onnx" {
			if !found || o.version > info.Opset {
				info.Opset = o.version
			}
			found = true
		}
	}
	if !found {
		return nil, nil, unsupportedf("the model imports no version of the default operator set (IR version %d)", m.irVersion)
	}
	if info.Opset < minOpset || info.Opset > maxOpset {
		return nil, nil, unsupportedf("opset %d is not supported (supported: %d..%d)", info.Opset, minOpset, maxOpset)
	}
	b := &builder{
		opset: info.Opset,
		g:     &graph.Graph{},
		vals:  map[string]*value{},
		uses:  map[string]int{},
		mem:   mem,
	}
	g, err := b.build(m.graph, opt, info)
	if err != nil {
		return nil, nil, err
	}
	return g, info, nil
}

func (b *builder) build(gp *graphProto, opt Options, info *Info) (*graph.Graph, error) {
	if err := b.defineInitializers(gp); err != nil {
		return nil, err
	}
	in, err := modelInput(b.vals, gp)
	if err != nil {
		return nil, err
	}
	var outs []string
	for _, o := range gp.outputs {
		if slices.Contains(outs, o.name) {
			return nil, corruptf("output %q is listed twice", o.name)
		}
		outs = append(outs, o.name)
	}
	info.InputName, info.OutputName, info.OutputNames = in.name, outs[0], outs
	live, err := b.checkOrder(gp, in.name, outs)
	if err != nil {
		return nil, err
	}
	for _, out := range outs {
		b.uses[out]++
	}
	for i, n := range gp.nodes {
		if live[i] {
			for _, name := range n.inputs {
				if name != "" {
					b.uses[name]++
				}
			}
		}
	}
	if err := b.addInput(gp, live, in, opt, info); err != nil {
		return nil, err
	}
	for i, n := range gp.nodes {
		if !live[i] {
			continue
		}
		b.idx, b.n = i, n
		if err := b.importNode(); err != nil {
			return nil, fmt.Errorf("node %d %q (%s): %w", i, b.nodeName(), n.opType, err)
		}
	}
	return b.finish(outs, info)
}

// defineInitializers makes the initializers constants, and the names of
// sparse initializers (which we cannot decode) errors when used.
func (b *builder) defineInitializers(gp *graphProto) error {
	for _, tp := range gp.inits {
		if tp.name == "" {
			return corruptf("an initializer has no name")
		}
		if b.vals[tp.name] != nil {
			return corruptf("initializer %q is defined twice", tp.name)
		}
		b.vals[tp.name] = &value{kind: vConst, tp: tp}
	}
	for _, name := range gp.sparseInit {
		if b.vals[name] != nil {
			return corruptf("initializer %q is defined twice", name)
		}
		b.vals[name] = &value{kind: vMissing, err: unsupportedf("sparse initializer %q is not supported", name)}
	}
	return nil
}

// modelInput returns the one graph input that is not an initializer
// (older exporters list every weight as an input too, as a constant with
// a default value), after checking that there is one output.
func modelInput(vals map[string]*value, gp *graphProto) (*valueInfo, error) {
	var inputs []*valueInfo
	for _, in := range gp.inputs {
		if v := vals[in.name]; v != nil {
			continue
		}
		inputs = append(inputs, in)
	}
	if len(inputs) != 1 {
		names := make([]string, len(inputs))
		for k, in := range inputs {
			names[k] = fmt.Sprintf("%q", in.name)
		}
		return nil, unsupportedf("the model has %d inputs [%s]; only single-input models are supported", len(inputs), strings.Join(names, " "))
	}
	if len(gp.outputs) == 0 {
		return nil, corruptf("the model has no outputs")
	}
	if len(gp.outputs) > graph.MaxOutputs {
		return nil, unsupportedf("the model has %d outputs; at most %d are supported", len(gp.outputs), graph.MaxOutputs)
	}
	return inputs[0], nil
}

// finish checks the outputs and returns the graph of what they depend on.
func (b *builder) finish(outs []string, info *Info) (*graph.Graph, error) {
	for k, out := range outs {
		node, err := b.outputNode(out)
		if err != nil {
			return nil, err
		}
		if k == 0 {
			b.g.Output = node
		} else {
			b.g.Extra = append(b.g.Extra, node)
		}
	}
	if len(outs) > 1 {
		b.g.OutputNames = outs
	}
	g, shapes := compact(b.g, b.shapes)
	if b.batch > 1 {
		g.Batch = b.batch
	}
	if err := g.InferShapes(); err != nil {
		return nil, fmt.Errorf("%w: the imported graph is not valid: %w", ErrUnsupported, err)
	}
	for i, n := range g.Nodes {
		if n.Shape != shapes[i] {
			return nil, fmt.Errorf("internal error: node %d %q: importer computed shape %v, resnet.InferShapes %v", i, n.Name, shapes[i], n.Shape)
		}
	}
	info.OutputIsSoftmax = g.Nodes[g.Output].Op == graph.OpSoftmax
	return g, nil
}

// outputNode is the node of graph output out, which must be an activation.
func (b *builder) outputNode(out string) (int, error) {
	v := b.vals[out]
	switch {
	case v == nil:
		return 0, corruptf("output %q is not produced by any node", out)
	case v.kind == vMissing:
		return 0, fmt.Errorf("output %q: %w", out, v.err)
	case v.kind != vAct:
		return 0, unsupportedf("output %q is a constant that does not depend on the input", out)
	case v.raw != 0:
		return 0, unsupportedf("output %q is the model input before its %s", out, v.raw.needs())
	case v.bcast:
		return 0, unsupportedf("output %q is an Expand of an activation", out)
	}
	return v.node, nil
}

func dimsString(dims []dimProto) string {
	parts := make([]string, len(dims))
	for k, d := range dims {
		switch {
		case d.hasValue:
			parts[k] = fmt.Sprint(d.value)
		case d.param != "":
			parts[k] = d.param
		default:
			parts[k] = "?"
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// checkOrder checks that every node input is defined before it is used
// (ONNX requires nodes in topological order) and that no name is defined
// twice, and returns which nodes the output depends on: the others are
// skipped, so an unsupported operator in a dead branch does no harm.
func (b *builder) checkOrder(gp *graphProto, input string, outputs []string) ([]bool, error) {
	producer := map[string]int{}
	for i, n := range gp.nodes {
		for _, o := range n.outputs {
			if o == "" {
				continue
			}
			if _, dup := producer[o]; dup || b.vals[o] != nil || o == input {
				return nil, corruptf("node %d %q (%s): output %q is defined twice", i, n.name, n.opType, o)
			}
			producer[o] = i
		}
	}
	for i, n := range gp.nodes {
		for _, in := range n.inputs {
			if in == "" || in == input || b.vals[in] != nil {
				continue
			}
			p, ok := producer[in]
			if !ok {
				return nil, corruptf("node %d %q (%s): input %q is not defined", i, n.name, n.opType, in)
			}
			if p >= i {
				return nil, corruptf("node %d %q (%s): input %q comes from node %d; the nodes are not in topological order", i, n.name, n.opType, in, p)
			}
		}
	}
	live := make([]bool, len(gp.nodes))
	var stack []int
	for _, output := range outputs {
		if p, ok := producer[output]; ok {
			if !live[p] {
				live[p] = true
				stack = append(stack, p)
			}
		} else if output != input && b.vals[output] == nil {
			return nil, corruptf("output %q is not produced by any node", output)
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, in := range gp.nodes[i].inputs {
			if p, ok := producer[in]; ok && !live[p] {
				live[p] = true
				stack = append(stack, p)
			}
		}
	}
	return live, nil
}

func (b *builder) nodeName() string {
	if b.n.name != "" {
		return b.n.name
	}
	return fmt.Sprintf("%s#%d", b.n.opType, b.idx)
}

func (b *builder) importNode() error {
	n := b.n
	if n.domain != "" && n.domain != "ai.onnx" {
		return unsupportedf("operator domain %q is not supported", n.domain)
	}
	ins := make([]*value, len(n.inputs))
	allConst := true
	for k, name := range n.inputs {
		if name == "" {
			continue // an omitted optional input
		}
		v := b.vals[name]
		if v == nil {
			return corruptf("input %q is not defined", name)
		}
		if v.kind == vMissing {
			return fmt.Errorf("input %q: %w", name, v.err)
		}
		ins[k] = v
		if v.kind == vAct {
			allConst = false
			b.refs[v.node]--
		}
	}
	if err := checkRaw(n.opType, ins); err != nil {
		return err
	}
	var outs []*value
	var err error
	switch {
	case allConst:
		outs, err = b.fold(ins)
	case n.opType == "Shape" || n.opType == "Size":
		outs, err = b.shapeOfActivation(ins)
	default:
		outs, err = b.activationOp(ins)
	}
	if err != nil {
		return err
	}
	for k, name := range n.outputs {
		if name == "" {
			continue
		}
		if k >= len(outs) || outs[k] == nil {
			b.vals[name] = &value{kind: vMissing, err: unsupportedf("output %d of node %d %q (%s) is not supported", k, b.idx, b.nodeName(), n.opType)}
			continue
		}
		v := outs[k]
		b.vals[name] = v
		if v.kind == vAct {
			b.refs[v.node] += b.uses[name]
		}
	}
	return nil
}

// checkRaw refuses an operator other than Identity, Cast and Transpose on
// the model input before it is an NCHW float activation (addInput makes
// sure that no such operator reads it), and one other than Mul on an
// Expand of an activation.
func checkRaw(op string, ins []*value) error {
	for k, v := range ins {
		switch {
		case v == nil || v.kind != vAct:
		case v.raw != 0 && op != "Identity" && op != "Cast" && op != "Transpose":
			return unsupportedf("input %d is the model input before its %s", k, v.raw.needs())
		case v.bcast && op != "Mul":
			return unsupportedf("input %d is an Expand of an activation, which only Mul may read", k)
		}
	}
	return nil
}

// tensorOf returns the constant behind v, decoding an initializer on first use.
func (b *builder) tensorOf(v *value) (*tensor, error) {
	if v.t == nil {
		t, err := b.decodeTensor(v.tp, fmt.Sprintf("initializer %q", v.tp.name))
		if err != nil {
			return nil, err
		}
		v.t = t
	}
	return v.t, nil
}

// act returns input k, which must be an activation.
func (b *builder) act(ins []*value, k int) (*value, error) {
	if k >= len(ins) || ins[k] == nil {
		return nil, corruptf("input %d is missing", k)
	}
	if ins[k].kind != vAct {
		return nil, unsupportedf("input %d (%q) is a constant where an activation is expected", k, b.n.inputs[k])
	}
	return ins[k], nil
}

// constant returns input k, which must be a constant; nil if the input is
// optional and absent.
func (b *builder) constant(ins []*value, k int, what string, optional bool) (*tensor, error) {
	if k >= len(ins) || ins[k] == nil {
		if optional {
			return nil, nil
		}
		return nil, corruptf("input %d (%s) is missing", k, what)
	}
	if ins[k].kind != vConst {
		return nil, unsupportedf("input %d (%s, %q) must be a constant (an initializer or computable at import time)", k, what, b.n.inputs[k])
	}
	return b.tensorOf(ins[k])
}

// floatConst is constant that must hold floating-point values.
func (b *builder) floatConst(ins []*value, k int, what string, optional bool) (*tensor, error) {
	t, err := b.constant(ins, k, what, optional)
	if err != nil || t == nil {
		return t, err
	}
	if !t.isFloat() {
		return nil, unsupportedf("%s %q has type %s; want a floating-point type", what, b.n.inputs[k], dtName(t.dtype))
	}
	return t, nil
}

// emit appends a resnet node computing an activation of the given rank and shape.
func (b *builder) emit(nd *graph.Node, rank int, s graph.Shape) (*value, error) {
	if s.H < 1 || s.W < 1 || s.C < 1 {
		return nil, unsupportedf("the output would be empty (%v)", s)
	}
	if !graph.ValidShape(s) {
		return nil, unsupportedf("the output shape %v is too large", s)
	}
	if nd.Name == "" {
		nd.Name = b.nodeName()
	}
	idx := b.g.Add(nd)
	b.shapes = append(b.shapes, s)
	b.users = append(b.users, 0)
	b.refs = append(b.refs, 0)
	for _, in := range nd.Inputs {
		b.users[in]++
	}
	return &value{kind: vAct, node: idx, rank: rank, shape: s, batch: b.batch}, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// compact drops the nodes the output does not depend on (for example the
// unused parts of a Split) and renumbers the rest.
func compact(g *graph.Graph, shapes []graph.Shape) (*graph.Graph, []graph.Shape) {
	live := make([]bool, len(g.Nodes))
	live[0] = true
	for _, o := range g.Outputs() {
		live[o] = true
	}
	for i := len(g.Nodes) - 1; i > 0; i-- {
		if live[i] {
			for _, in := range g.Nodes[i].Inputs {
				live[in] = true
			}
		}
	}
	out := &graph.Graph{}
	var outShapes []graph.Shape
	newIdx := make([]int, len(g.Nodes))
	for i, n := range g.Nodes {
		if !live[i] {
			continue
		}
		for k, in := range n.Inputs {
			n.Inputs[k] = newIdx[in]
		}
		newIdx[i] = out.Add(n)
		outShapes = append(outShapes, shapes[i])
	}
	out.Output = newIdx[g.Output]
	for _, o := range g.Extra {
		out.Extra = append(out.Extra, newIdx[o])
	}
	out.OutputNames = g.OutputNames
	return out, outShapes
}
