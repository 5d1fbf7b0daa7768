package onnx_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/importer/onnx"
	"github.com/edge-resnet/edge-resnet/preprocess"
)

// familyFixtures are the ResNet family fixtures of testdata/models (made
// by tools/make_fixtures.py): what each must import to.
var familyFixtures = map[string]struct {
	has    []graph.Op // ops the imported graph must contain
	check  func(g *graph.Graph) bool
	layout string
	batch  int
}{
	"resnext_b":       {has: []graph.Op{graph.OpConv}, check: hasGroupConv(4, false)},
	"wide_b":          {has: []graph.Op{graph.OpConv}},
	"se_basic_b":      {has: []graph.Op{graph.OpSigmoid, graph.OpMul, graph.OpDense}},
	"resnet_d":        {has: []graph.Op{graph.OpAvgPool}},
	"preact_v2":       {has: []graph.Op{graph.OpAffine}},
	"depthwise_res":   {has: []graph.Op{graph.OpClip}, check: hasGroupConv(8, true)},
	"relu6_b_opset10": {has: []graph.Op{graph.OpClip}},
	"hardswish_se":    {has: []graph.Op{graph.OpHardSigmoid, graph.OpMul}},
	"keras_nhwc":      {layout: onnx.LayoutNHWC},
	"batch4_se":       {has: []graph.Op{graph.OpMul, graph.OpSigmoid}, batch: 4},
}

// hasGroupConv: a conv with g groups, and if depthwise also a depthwise one.
func hasGroupConv(g int, depthwise bool) func(*graph.Graph) bool {
	return func(gr *graph.Graph) bool {
		found, dw := false, !depthwise
		for _, n := range gr.Nodes {
			if n.Op == graph.OpConv {
				found = found || n.Conv.Groups() == g
				dw = dw || n.Conv.Groups() == n.Conv.Cin && n.Conv.Cin == n.Conv.Cout && n.Conv.Cin > 1
			}
		}
		return found && dw
	}
}

// TestPyTorchFamilyFixtures imports every ONNX fixture of testdata/models
// and runs its input through Graph.Eval and through the compiled fp32
// plan of the public API (ImportONNXFile, FromModel, NewSession with the
// input's batch, RunNCHW, or Run for an NHWC input): both must agree with
// PyTorch's logits within 1e-3 of the largest |logit|, one row per sample.
func TestPyTorchFamilyFixtures(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "models")
	files, _ := filepath.Glob(filepath.Join(dir, "*.onnx"))
	seen := 0
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".onnx")
		base := strings.TrimSuffix(name, "_bn")
		if _, ok := familyFixtures[name]; ok {
			seen++
		}
		t.Run(name, func(t *testing.T) {
			shape, input, err := preprocess.ReadNPYFile(filepath.Join(dir, base+".input.npy"))
			if err != nil {
				t.Fatal(err)
			}
			_, want, err := preprocess.ReadNPYFile(filepath.Join(dir, base+".logits.npy"))
			if err != nil {
				t.Fatal(err)
			}
			g, info := importFixture(t, file, name, shape)
			nhwc := input
			if info.InputLayout != onnx.LayoutNHWC {
				nhwc = nchwToNHWC(input, shape[0], shape[1], shape[2], shape[3])
			}
			got, err := g.Eval(nhwc)
			if err != nil {
				t.Fatal(err)
			}
			d1 := compareLogits(t, "Eval", got, want)
			got = runFixtureCompiled(t, file, shape, input, nhwc, info.InputLayout == onnx.LayoutNHWC)
			d2 := compareLogits(t, "compiled plan", got, want)
			t.Logf("%s: batch %d, max|Δ| Eval %.2g, compiled %.2g (max|logit| %.3g)", name, shape[0], d1, d2, maxAbs(want))
		})
	}
	if seen != len(familyFixtures) {
		t.Errorf("%d of the %d family fixtures are in %s (run tools/make_fixtures.py)", seen, len(familyFixtures), dir)
	}
}

// importFixture imports a fixture and checks what it must import to.
func importFixture(t *testing.T, file, name string, shape []int) (*graph.Graph, *onnx.Info) {
	t.Helper()
	g, info, err := onnx.ImportFile(file, onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fx, family := familyFixtures[name]
	if !family {
		return g, info
	}
	if want := max(fx.batch, 1); shape[0] != want || max(g.Batch, 1) != want {
		t.Errorf("input batch %d, graph batch %d, want %d", shape[0], g.Batch, want)
	}
	want := onnx.LayoutNCHW
	if fx.layout != "" {
		want = fx.layout
	}
	if info.InputLayout != want || info.InputType != "FLOAT" {
		t.Errorf("input layout %q type %q, want %q FLOAT", info.InputLayout, info.InputType, want)
	}
	ops := map[graph.Op]bool{}
	for _, n := range g.Nodes {
		ops[n.Op] = true
	}
	for _, op := range fx.has {
		if !ops[op] {
			t.Errorf("the graph has no %v", op)
		}
	}
	if fx.check != nil && !fx.check(g) {
		t.Errorf("the graph lacks the expected grouped convolutions")
	}
	return g, info
}

// runFixtureCompiled runs the fixture through the public API.
func runFixtureCompiled(t *testing.T, file string, shape []int, input, nhwc []float32, isNHWC bool) []float32 {
	t.Helper()
	fm, err := edgeresnet.ImportONNXFile(file, edgeresnet.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, done, err := openSession(fm, shape[0])
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	got, err := runInput(s, isNHWC, shape, input, nhwc)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// compareLogits checks got against want within 1e-3 of max|want| and
// returns max|Δ|.
func compareLogits(t *testing.T, what string, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d outputs, want %d", what, len(got), len(want))
	}
	var d float64
	for k := range want {
		d = math.Max(d, math.Abs(float64(got[k])-float64(want[k])))
	}
	if !(d <= 1e-3*maxAbs(want)) {
		t.Errorf("%s: max|Δ| %.3g > 1e-3·%.3g\n got %v\nwant %v", what, d, maxAbs(want), got, want)
	}
	return d
}

func maxAbs(v []float32) float64 {
	var m float64
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}
