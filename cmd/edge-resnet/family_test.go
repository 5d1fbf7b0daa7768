package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

// TestFixturesThroughCLI runs every PyTorch fixture in testdata/models (the
// ResNet family as people export it: ResNeXt, Wide, SE, ResNet-D, v2,
// depthwise, ReLU6, hard-swish, Keras NHWC input, a batch of 4, ...)
// through `convert` and `classify --json --logits`: every output row must
// agree with PyTorch's within 1e-3 of the largest logit, in order, one JSON
// line per sample.
func TestFixturesThroughCLI(t *testing.T) {
	onnxFiles, _ := filepath.Glob("../../testdata/models/*.onnx")
	n := 0
	for _, onnx := range onnxFiles {
		base := strings.TrimSuffix(onnx, ".onnx")
		if strings.HasSuffix(base, "_bn") {
			continue // the same model as its folded twin
		}
		n++
		t.Run(filepath.Base(base), func(t *testing.T) {
			_, want, err := preprocess.ReadNPYFile(base + ".logits.npy")
			if err != nil {
				t.Fatal(err)
			}
			ern := filepath.Join(t.TempDir(), "m.ern")
			if _, stderr, err := run(t, "convert", onnx, "-o", ern); err != nil {
				t.Fatalf("convert: %v\n%s", err, stderr)
			}
			stdout, stderr, err := run(t, "classify", "-m", ern, "--json", "--logits", "--threads", "2", base+".input.npy")
			if err != nil {
				t.Fatalf("classify: %v\n%s", err, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			per := len(want) / len(lines)
			if per*len(lines) != len(want) {
				t.Fatalf("%d result lines for %d logits", len(lines), len(want))
			}
			peak := 0.0
			for _, v := range want {
				peak = math.Max(peak, math.Abs(float64(v)))
			}
			for i, line := range lines {
				var r jsonResult
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatal(err)
				}
				if len(lines) > 1 && (r.Index == nil || *r.Index != i) {
					t.Fatalf("line %d: index %v", i, r.Index)
				}
				if len(r.Logits) != per {
					t.Fatalf("line %d: %d logits, want %d", i, len(r.Logits), per)
				}
				for j, v := range r.Logits {
					if d := math.Abs(float64(v) - float64(want[i*per+j])); d > 1e-3*peak {
						t.Fatalf("sample %d logit %d: %v, PyTorch %v (|Δ| %.3g > 1e-3 of %.3g)", i, j, v, want[i*per+j], d, peak)
					}
				}
			}
		})
	}
	if n < 15 {
		t.Fatalf("only %d fixtures found", n)
	}
}

// TestBenchBatches checks bench --batch with a list: one JSON object per
// batch size, images/s counting every image of a run.
func TestBenchBatches(t *testing.T) {
	stdout, stderr, err := run(t, "bench", "--arch", "cifar-resnet20", "--batch", "1,3", "--runs", "2", "--warmup", "0", "--threads", "1", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), stdout)
	}
	for i, want := range []int{1, 3} {
		var r benchResult
		if err := json.Unmarshal([]byte(lines[i]), &r); err != nil {
			t.Fatal(err)
		}
		if r.Batch != want || math.Abs(r.ImagesPS-float64(want)*1000/r.MedianMs) > 1e-6*r.ImagesPS {
			t.Errorf("batch %d: %+v", want, r)
		}
	}
}
