package onnx

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
)

// sharedData returns /work/shared/data, found relative to this file, or
// skips the test when it is not there.
func sharedData(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Skip("cannot locate the test file")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(dir, "onnx")); err != nil {
		t.Skipf("shared test data is missing (%v); these tests need %s", err, dir)
	}
	return dir
}

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for k := range out {
		out[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*k:]))
	}
	return out
}

// cifarImage returns record k of a CIFAR-10 binary file as NHWC float32,
// each pixel mapped by f(channel, u8).
func cifarImage(data []byte, k int, f func(c int, v uint8) float32) []float32 {
	rec := data[k*3073+1 : (k+1)*3073]
	out := make([]float32, 32*32*3)
	for c := range 3 {
		for p := range 1024 {
			out[p*3+c] = f(c, rec[c*1024+p])
		}
	}
	return out
}

func countOps(g *graph.Graph) map[graph.Op]int {
	m := map[graph.Op]int{}
	for _, n := range g.Nodes {
		m[n.Op]++
	}
	return m
}

func TestRealModels(t *testing.T) {
	dir := sharedData(t)
	images, err := os.ReadFile(filepath.Join(dir, "images", "cifar10_test_1k_pil.bin"))
	if err != nil {
		t.Skipf("images missing: %v", err)
	}
	mean := [3]float32{0.485, 0.456, 0.406}
	std := [3]float32{0.229, 0.224, 0.225}
	imagenetNorm := func(c int, v uint8) float32 { return (float32(v)/255 - mean[c]) / std[c] }
	raw := func(c int, v uint8) float32 { return float32(v) }

	cases := []struct {
		file    string
		ref     string
		pre     func(int, uint8) float32
		softmax bool
		ops     map[graph.Op]int
	}{
		{"cifar10_resnet20_opset13.onnx", "cifar10_resnet20_logits_1k.f32", imagenetNorm, false,
			map[graph.Op]int{graph.OpInput: 1, graph.OpConv: 19, graph.OpRelu: 19, graph.OpAdd: 9, graph.OpSlice: 4,
				graph.OpPad: 2, graph.OpGlobalAvgPool: 1, graph.OpDense: 1}},
		{"cifar10_resnet20_opset13_bn_simplified.onnx", "cifar10_resnet20_logits_1k.f32", imagenetNorm, false,
			map[graph.Op]int{graph.OpInput: 1, graph.OpConv: 19, graph.OpAffine: 19, graph.OpRelu: 19, graph.OpAdd: 9,
				graph.OpSlice: 4, graph.OpPad: 2, graph.OpGlobalAvgPool: 1, graph.OpDense: 1}},
		{"mlperf_tiny_resnet8_opset13.onnx", "mlperf_tiny_resnet8_probs_1k.f32", raw, true,
			map[graph.Op]int{graph.OpInput: 1, graph.OpConv: 9, graph.OpRelu: 7, graph.OpAdd: 3, graph.OpPad: 2,
				graph.OpAvgPool: 1, graph.OpDense: 1, graph.OpSoftmax: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			g, info, err := ImportFile(filepath.Join(dir, "onnx", tc.file), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if info.InputName != "input" || info.OutputName != "output" || info.Opset != 13 || info.IRVersion != 7 ||
				info.Producer != "pytorch" || info.OutputIsSoftmax != tc.softmax {
				t.Errorf("info = %+v", info)
			}
			if got := countOps(g); !equalOpCounts(got, tc.ops) {
				t.Errorf("op counts = %v, want %v", got, tc.ops)
			}
			if g.Input() != (graph.Shape{H: 32, W: 32, C: 3}) || g.OutputShape() != (graph.Shape{H: 1, W: 1, C: 10}) {
				t.Errorf("input %v output %v", g.Input(), g.OutputShape())
			}
			ref := readF32(t, filepath.Join(dir, "reference", tc.ref))
			n := 20
			if testing.Short() {
				n = 3
			}
			for k := range n {
				out, err := g.Eval(cifarImage(images, k, tc.pre))
				if err != nil {
					t.Fatal(err)
				}
				want := ref[k*10 : k*10+10]
				var maxRef, maxDiff float64
				for j := range want {
					maxRef = math.Max(maxRef, math.Abs(float64(want[j])))
					maxDiff = math.Max(maxDiff, math.Abs(float64(out[j]-want[j])))
				}
				if maxDiff > 1e-4*maxRef {
					t.Errorf("image %d: max |Δ| = %g > 1e-4·%g\n got %v\nwant %v", k, maxDiff, maxRef, out, want)
				}
			}
		})
	}
}

func equalOpCounts(a, b map[graph.Op]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRealResNet56(t *testing.T) {
	dir := sharedData(t)
	g, info, err := ImportFile(filepath.Join(dir, "onnx", "cifar10_resnet56_opset13.onnx"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[graph.Op]int{graph.OpInput: 1, graph.OpConv: 55, graph.OpRelu: 55, graph.OpAdd: 27, graph.OpSlice: 4,
		graph.OpPad: 2, graph.OpGlobalAvgPool: 1, graph.OpDense: 1}
	if got := countOps(g); !equalOpCounts(got, want) {
		t.Errorf("op counts = %v, want %v", got, want)
	}
	if info.OutputIsSoftmax || g.OutputShape() != (graph.Shape{H: 1, W: 1, C: 10}) {
		t.Errorf("info %+v, output %v", info, g.OutputShape())
	}
	// The stage boundaries: 32x32x16 -> 16x16x32 -> 8x8x64, with the
	// option-A shortcut padding the channels in the middle.
	var pads []graph.PadOp
	for _, n := range g.Nodes {
		if n.Op == graph.OpPad {
			pads = append(pads, *n.Pad)
		}
	}
	if len(pads) != 2 || pads[0].Before != [3]int{0, 0, 8} || pads[0].After != [3]int{0, 0, 8} ||
		pads[1].Before != [3]int{0, 0, 16} || pads[1].After != [3]int{0, 0, 16} {
		t.Errorf("pads = %+v", pads)
	}
	// Another input size works too: the pad subgraph does not depend on it.
	g, _, err = ImportFile(filepath.Join(dir, "onnx", "cifar10_resnet56_opset13.onnx"), Options{Height: 64, Width: 48})
	if err != nil {
		t.Fatal(err)
	}
	if g.Input() != (graph.Shape{H: 64, W: 48, C: 3}) || g.Nodes[len(g.Nodes)-2].Op != graph.OpGlobalAvgPool {
		t.Errorf("input %v", g.Input())
	}
}

// TestTorchExports imports the models testdata/gen.py exported from
// PyTorch with dynamic H and W (so the shape subgraphs must be folded
// through Options) and compares with PyTorch's outputs.
func TestTorchExports(t *testing.T) {
	io := readF32(t, filepath.Join("testdata", "torch_tiny_io.f32"))
	x := fmap{3, 32, 32, nil}
	for _, v := range io[:3*32*32] {
		x.v = append(x.v, float64(v))
	}
	for k, opset := range []int64{9, 11, 13, 17} {
		t.Run(itoa(opset), func(t *testing.T) {
			path := filepath.Join("testdata", "torch_tiny_opset"+itoa(opset)+".onnx")
			if _, _, err := ImportFile(path, Options{}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "set Options.Height") {
				t.Errorf("without Options: %v", err)
			}
			g, info, err := ImportFile(path, Options{Height: 32, Width: 32})
			if err != nil {
				t.Fatal(err)
			}
			if info.Opset != opset || info.OutputIsSoftmax != (opset == 17) {
				t.Errorf("info %+v", info)
			}
			c := countOps(g)
			if c[graph.OpConv] != 8 || c[graph.OpAdd] != 3 || c[graph.OpPad] != 1 || c[graph.OpDense] != 1 || c[graph.OpFlatten] != 0 {
				t.Errorf("op counts %v", c)
			}
			out, err := g.Eval(x.nhwc())
			if err != nil {
				t.Fatal(err)
			}
			want := io[3*32*32+10*k : 3*32*32+10*(k+1)]
			var maxRef, maxDiff float64
			for j := range want {
				maxRef = math.Max(maxRef, math.Abs(float64(want[j])))
				maxDiff = math.Max(maxDiff, math.Abs(float64(out[j]-want[j])))
			}
			if maxDiff > 1e-5*maxRef {
				t.Errorf("max |Δ| = %g (max |ref| %g)\n got %v\nwant %v", maxDiff, maxRef, out, want)
			}
		})
	}
}
