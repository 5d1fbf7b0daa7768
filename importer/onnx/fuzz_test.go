package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
)

// corpusCases names the op-test models committed as the seed corpus in
// testdata/fuzz/FuzzImport; all op-test models are added with f.Add too.
var corpusCases = []string{
	"conv3x3_pad1_bias", "batchnorm_opset9_outs5", "maxpool_ceil_pads", "gap_flatten_gemm_softmax_opset11",
	"reducemean18_reshape_matmul_add", "affine_constants", "pad_opset9_attr", "slice_opset13_steps_sentinels",
	"split_opset13", "view_batch_minus1_opset13", "fpad_from_shape_subgraph", "weight_encodings",
}

func FuzzImport(f *testing.F) {
	for _, tc := range opCases() {
		f.Add(tc.model().bytes())
	}
	for _, tc := range hostileCases() {
		if tc.maxBytes == 0 {
			f.Add(tc.data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opt := range []Options{{}, {Height: 5, Width: 3}} {
			// importModel, not Import: no recover, so any panic is found.
			g, info, err := importModel(data, opt)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("error wraps neither sentinel: %v", err)
				}
				continue
			}
			if g == nil || info == nil {
				t.Fatal("nil graph or info without an error")
			}
			// The graph must be consistent enough to run; evaluate it when
			// that is cheap.
			if evalCost(g) < 200_000 {
				if _, err := g.Eval(make([]float32, g.Input().Size())); err != nil {
					t.Fatalf("imported graph does not evaluate: %v", err)
				}
			}
		}
	})
}

// evalCost estimates the work of resnet.Eval on g.
func evalCost(g *graph.Graph) int64 {
	var c int64
	for i, n := range g.Nodes {
		c += int64(n.Shape.Size()) + g.MACs(i)
		if n.Pool != nil {
			c += int64(n.Shape.Size()) * int64(n.Pool.KH) * int64(n.Pool.KW)
		}
		if n.Op == graph.OpGlobalAvgPool {
			c += int64(g.Nodes[n.Inputs[0]].Shape.Size())
		}
	}
	return c
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzImport when
// ONNX_WRITE_FUZZ_CORPUS=1: a few valid models and truncations of them,
// and the small hostile models (short initializers, huge folds).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("ONNX_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set ONNX_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz/FuzzImport")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzImport")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	byName := map[string]opCase{}
	for _, tc := range opCases() {
		byName[tc.name] = tc
	}
	write := func(name string, data []byte) {
		s := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for k, name := range corpusCases {
		tc, ok := byName[name]
		if !ok {
			t.Fatalf("no op case %q", name)
		}
		data := tc.model().bytes()
		write("model_"+name, data)
		if k%3 == 0 {
			write(fmt.Sprintf("truncated_%s_%d", name, len(data)/2), data[:len(data)/2])
		}
	}
	for _, tc := range hostileCases() {
		if tc.maxBytes == 0 {
			write("hostile_"+tc.name, tc.data)
		}
	}
}

// TestFuzzCorpus runs the committed seeds through the same checks without
// the fuzzing engine (go test runs them anyway; this names them).
func TestFuzzCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzImport", "*"))
	if len(files) == 0 {
		t.Fatal("no committed seed corpus in testdata/fuzz/FuzzImport")
	}
}
