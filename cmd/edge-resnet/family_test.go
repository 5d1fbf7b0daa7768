package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/resnet"
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
// batch size, images/s counting every image of a run, with the load,
// session and first-run times.
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
		// Every session reports the model's one load, its own creation and
		// its first run.
		if r.LoadMs <= 0 || r.SessionMs <= 0 || r.FirstMs <= 0 {
			t.Errorf("batch %d: load %g ms, session %g ms, first run %g ms", want, r.LoadMs, r.SessionMs, r.FirstMs)
		}
	}
}

// TestClassifyMultipleOutputs writes a model whose graph has two outputs
// (the classifier and the pooled features) and checks that classify
// --json prints both by name for each sample of a batch.
func TestClassifyMultipleOutputs(t *testing.T) {
	g, err := resnet.Build(resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, Width: 8, Classes: 3}, resnet.HeInit(3))
	if err != nil {
		t.Fatal(err)
	}
	pool := -1
	for i, n := range g.Nodes {
		if n.Op == graph.OpGlobalAvgPool {
			pool = i
		}
	}
	g.Extra, g.OutputNames = []int{pool}, []string{"logits", "features"}
	dir := t.TempDir()
	ern := filepath.Join(dir, "two.ern")
	if err := firmware.WriteFile(ern, &firmware.Model{Graph: g, Meta: firmware.Meta{Name: "two"}}); err != nil {
		t.Fatal(err)
	}
	npy := filepath.Join(dir, "x.npy")
	x := make([]float32, 2*3*8*8)
	for i := range x {
		x[i] = float32(i%5) - 2
	}
	var buf bytes.Buffer
	if err := preprocess.WriteNPY(&buf, []int{2, 3, 8, 8}, x); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(npy, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := run(t, "classify", "-m", ern, "--json", npy)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), stdout)
	}
	for _, line := range lines {
		var r jsonResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Outputs["logits"]) != 3 || len(r.Outputs["features"]) != 16 {
			t.Fatalf("outputs %v", r.Outputs)
		}
	}
}

// TestBenchTunes checks that commands tune by default: bench --profile
// shows each 3x3 stride-1 conv's measured candidates on a fresh cache,
// and the kept ones on the next run; --tune off shows the policy.
func TestBenchTunes(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	for i, want := range []string{"measured: ", "cached: ", "policy"} {
		args := []string{"bench", "--profile", "--runs", "1", "--warmup", "0", "--threads", "1", "--json"}
		if i == 2 {
			args = append(args, "--tune", "off")
		}
		stdout, stderr, err := run(t, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		var r benchResult
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range r.Profile {
			if p.Choice != "" {
				n++
				if i != 0 && !strings.HasPrefix(p.Choice, want) {
					t.Errorf("run %d: layer %s: choice %q, want %q...", i, p.Name, p.Choice, want)
				}
				if i == 0 && !strings.HasPrefix(p.Choice, "measured: ") && !strings.HasPrefix(p.Choice, "cached: ") {
					t.Errorf("first run: layer %s: choice %q", p.Name, p.Choice)
				}
			}
		}
		if n == 0 {
			t.Errorf("run %d: no layer with a choice", i)
		}
	}
}
