package onnx

import "fmt"

// Hooks for the external tests (node_test.go), which run imported models
// through the root package and so cannot live in this package.

// FoldedTensor is a constant the evaluator computed: the float types
// (FLOAT, DOUBLE, FLOAT16, BFLOAT16) in F as float32, the others in I.
type FoldedTensor struct {
	DType int64
	Dims  []int
	F     []float32
	I     []int64
}

// FoldForTest evaluates a model none of whose inputs is a model input
// (each has an initializer) with the constant evaluator alone: the import
// of every node, in file order, with the import's budget, but no graph is
// built (a node that needs an activation has none, and is refused as an
// operator with no constant evaluator). It returns the graph's outputs in
// order.
func FoldForTest(data []byte) ([]FoldedTensor, error) {
	mem := newBudget(len(data))
	m, err := (&parser{mem: mem}).model(data)
	if err != nil {
		return nil, err
	}
	if m.graph == nil {
		return nil, corruptf("the model has no graph")
	}
	opset := int64(-1)
	for _, o := range m.opsets {
		if (o.domain == "" || o.domain == "ai.onnx") && o.version > opset {
			opset = o.version
		}
	}
	if opset < minOpset || opset > maxOpset {
		return nil, unsupportedf("opset %d is not supported (supported: %d..%d)", opset, minOpset, maxOpset)
	}
	b := &builder{opset: opset, vals: map[string]*value{}, uses: map[string]int{}, mem: mem}
	gp := m.graph
	for _, tp := range gp.inits {
		b.vals[tp.name] = &value{kind: vConst, tp: tp}
	}
	for _, in := range gp.inputs {
		if b.vals[in.name] == nil {
			return nil, fmt.Errorf("FoldForTest: input %q has no initializer", in.name)
		}
	}
	for i, n := range gp.nodes {
		b.idx, b.n = i, n
		if err := b.importNode(); err != nil {
			return nil, fmt.Errorf("node %d %q (%s): %w", i, b.nodeName(), n.opType, err)
		}
	}
	var outs []FoldedTensor
	for _, o := range gp.outputs {
		v := b.vals[o.name]
		switch {
		case v == nil:
			return nil, corruptf("output %q is not produced by any node", o.name)
		case v.kind == vMissing:
			return nil, fmt.Errorf("output %q: %w", o.name, v.err)
		case v.kind != vConst:
			return nil, fmt.Errorf("FoldForTest: output %q is not a constant", o.name)
		}
		t, err := b.tensorOf(v)
		if err != nil {
			return nil, err
		}
		outs = append(outs, FoldedTensor{DType: t.dtype, Dims: t.dims, F: t.f, I: t.i})
	}
	return outs, nil
}
