package engine

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
)

// seGraph is a small net with every activation op beyond ReLU: a conv with
// ReLU6 (Clip 0..6), a squeeze-and-excitation block (global pool, two
// dense layers, Sigmoid, Mul by channel), hard-swish (x*HardSigmoid(x)), a
// one-sided Clip (fused as a ReLU) and a classifier.
func seGraph(r *rand.Rand) *graph.Graph {
	g := &graph.Graph{}
	w := func(n int) []float32 { return randInput(r, n) }
	x := g.Add(&graph.Node{Name: "in", Op: graph.OpInput, Shape: graph.Shape{H: 6, W: 7, C: 8}})
	c := g.Add(&graph.Node{Name: "conv", Op: graph.OpConv, Inputs: []int{x}, Conv: &graph.Conv{KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1,
		Pad: graph.Pads{Top: 1, Left: 1, Bottom: 1, Right: 1}, Cin: 8, Cout: 16, Weight: w(3 * 3 * 8 * 16), Bias: w(16)}})
	c = g.Add(&graph.Node{Name: "relu6", Op: graph.OpClip, Inputs: []int{c}, Clip: &graph.Clip{Min: 0, Max: 6}})
	s := g.Add(&graph.Node{Name: "se.pool", Op: graph.OpGlobalAvgPool, Inputs: []int{c}})
	s = g.Add(&graph.Node{Name: "se.fc1", Op: graph.OpDense, Inputs: []int{s}, Relu: true, Dense: &graph.Dense{In: 16, Out: 4, Weight: w(64), Bias: w(4)}})
	s = g.Add(&graph.Node{Name: "se.fc2", Op: graph.OpDense, Inputs: []int{s}, Dense: &graph.Dense{In: 4, Out: 16, Weight: w(64), Bias: w(16)}})
	s = g.Add(&graph.Node{Name: "se.gate", Op: graph.OpSigmoid, Inputs: []int{s}})
	m := g.Add(&graph.Node{Name: "se.scale", Op: graph.OpMul, Inputs: []int{s, c}})
	h := g.Add(&graph.Node{Name: "hs.gate", Op: graph.OpHardSigmoid, Inputs: []int{m}, HardSigmoid: &graph.HardSigmoid{Alpha: 1.0 / 6, Beta: 0.5}})
	m = g.Add(&graph.Node{Name: "hswish", Op: graph.OpMul, Inputs: []int{m, h}})
	m = g.Add(&graph.Node{Name: "clip", Op: graph.OpClip, Inputs: []int{m}, Clip: &graph.Clip{Min: -0.25, Max: float32(math.Inf(1))}})
	m = g.Add(&graph.Node{Name: "pool", Op: graph.OpGlobalAvgPool, Inputs: []int{m}})
	g.Output = g.Add(&graph.Node{Name: "fc", Op: graph.OpDense, Inputs: []int{m}, Dense: &graph.Dense{In: 16, Out: 5, Weight: w(80), Bias: w(5)}})
	return g
}

// TestActivationOpsMatchEval runs seGraph through the reference evaluator
// and the plan (batch 3, 1 and 2 threads).
func TestActivationOpsMatchEval(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 12))
	g := seGraph(r)
	in := randInput(r, 3*g.Nodes[0].Shape.Size())
	want, err := g.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	p, err := CompileWith(g, CompileOptions{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		e, _ := NewExec(p, threads)
		got, err := e.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(got, want); d > 1e-4*maxAbs(want) {
			t.Fatalf("%d threads: plan differs from Eval by %g (max %g)", threads, d, maxAbs(want))
		}
		e.Close()
	}
	// Each op computes something: dropping the SE gate changes the result.
	g.Nodes[7].Inputs = []int{2, 2}
	other, err := g.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	if maxDiff(other, want) < 1e-3*maxAbs(want) {
		t.Fatal("the squeeze-and-excitation gate does not change the output")
	}
}

// TestActivationOpsReject checks the shape rules of the new ops.
func TestActivationOpsReject(t *testing.T) {
	in := &graph.Node{Name: "in", Op: graph.OpInput, Shape: graph.Shape{H: 4, W: 4, C: 3}}
	v := &graph.Node{Name: "v", Op: graph.OpGlobalAvgPool, Inputs: []int{0}}
	cases := map[string][]*graph.Node{
		"clip upside down": {in, {Name: "c", Op: graph.OpClip, Inputs: []int{0}, Clip: &graph.Clip{Min: 2, Max: 1}}},
		"clip NaN":         {in, {Name: "c", Op: graph.OpClip, Inputs: []int{0}, Clip: &graph.Clip{Min: float32(math.NaN()), Max: 1}}},
		"clip no attrs":    {in, {Name: "c", Op: graph.OpClip, Inputs: []int{0}}},
		"hardsigmoid inf":  {in, {Name: "h", Op: graph.OpHardSigmoid, Inputs: []int{0}, HardSigmoid: &graph.HardSigmoid{Alpha: float32(math.Inf(1))}}},
		"mul one input":    {in, {Name: "m", Op: graph.OpMul, Inputs: []int{0}}},
		"mul shapes":       {in, {Name: "p", Op: graph.OpMaxPool, Inputs: []int{0}, Pool: &graph.Pool{KH: 2, KW: 2, StrideH: 2, StrideW: 2}}, {Name: "m", Op: graph.OpMul, Inputs: []int{0, 1}}},
		"mul ok":           nil,
	}
	cases["mul ok"] = []*graph.Node{in, v, {Name: "m", Op: graph.OpMul, Inputs: []int{1, 0}}}
	for name, nodes := range cases {
		g := &graph.Graph{Nodes: nodes, Output: len(nodes) - 1}
		err := g.InferShapes()
		if (err == nil) != (name == "mul ok") {
			t.Errorf("%s: InferShapes = %v", name, err)
		}
	}
}

// TestMultipleOutputs gives seGraph two more outputs (an inner value that
// later steps also read, and the squeeze-and-excitation gate) and checks
// every output of a batched plan against EvalOutputs.
func TestMultipleOutputs(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 13))
	g := seGraph(r)
	g.Extra = []int{2, 6} // relu6 (read by later nodes too), se.gate
	g.OutputNames = []string{"logits", "features", "gate"}
	in := randInput(r, 2*g.Nodes[0].Shape.Size())
	want, err := g.EvalOutputs(in)
	if err != nil {
		t.Fatal(err)
	}
	p, err := CompileWith(g, CompileOptions{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := NewExec(p, 2)
	defer e.Close()
	first, err := e.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	if &first[0] != &e.Output(0)[0] {
		t.Error("Run's result is not Output(0)")
	}
	for k := range want {
		got := e.Output(k)
		if len(got) != len(want[k]) {
			t.Fatalf("output %d: %d values, want %d", k, len(got), len(want[k]))
		}
		if d := maxDiff(got, want[k]); d > 1e-4*maxAbs(want[k]) {
			t.Errorf("output %d differs from EvalOutputs by %g", k, d)
		}
	}
	if e.Output(3) != nil || e.Output(-1) != nil {
		t.Error("Output out of range is not nil")
	}
	g.OutputNames = []string{"too", "few"}
	if err := g.InferShapes(); err == nil {
		t.Error("2 names for 3 outputs: want an error")
	}
}
