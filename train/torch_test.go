package train

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// python is the interpreter the PyTorch comparison uses: the system one,
// where Debian's python3-torch installs.
const python = "/usr/bin/python3"

// torchParam is one parameter's result from testdata/torch_optim.py.
type torchParam struct {
	Value []float32 `json:"value"`
	M     []float32 `json:"m"`
	V     []float32 `json:"v"`
}

// updateTorch regenerates testdata/torch_optim.golden.json with PyTorch.
var updateTorch = flag.Bool("update-torch", false, "rerun testdata/torch_optim.py with "+python+" and rewrite its golden output")

// torchGolden is PyTorch's results for the problem of
// TestOptimizersMatchPyTorch, as testdata/torch_optim.py printed them.
const torchGolden = "testdata/torch_optim.golden.json"

// TestOptimizersMatchPyTorch runs 5 steps of every optCases optimizer on
// the same parameters, gradients and learning rates as PyTorch did
// (testdata/torch_optim.py, whose output is committed as torchGolden so
// that the test needs no PyTorch) and compares the weights and moments
// within 1e-6 relative. -update-torch reruns the script (Debian's
// python3-torch) and rewrites the golden file.
func TestOptimizersMatchPyTorch(t *testing.T) {
	p := newProblem(3, 5)
	if *updateTorch {
		writeTorchGolden(t, p)
	}
	out, err := os.ReadFile(torchGolden)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]map[string]torchParam
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("%s: %v", torchGolden, err)
	}
	for _, c := range optCases {
		compareWithTorch(t, c, p, want[c.Name])
	}
}

// writeTorchGolden runs testdata/torch_optim.py on p and writes its
// output to torchGolden.
func writeTorchGolden(t *testing.T, p optProblem) {
	writeGolden(t, "torch_optim.py", map[string]any{"cases": optCases, "problem": p}, torchGolden)
}

// writeGolden runs the PyTorch script testdata/script with /usr/bin/python3
// on input, written as JSON, and writes what it prints to golden.
func writeGolden(t *testing.T, script string, input any, golden string) {
	t.Helper()
	in := filepath.Join(t.TempDir(), "input.json")
	data, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join("testdata", script), in)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	if err := os.WriteFile(golden, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// compareWithTorch runs case c on p and checks the weights and optimizer
// state against PyTorch's results.
func compareWithTorch(t *testing.T, c optCase, p optProblem, want map[string]torchParam) {
	t.Helper()
	opt := c.optimizer()
	got := p.run(opt)
	slots := map[string]Slot{}
	for _, s := range opt.State().Slots {
		slots[s.Name] = s
	}
	worst, same, total := 0.0, 0, 0
	// Weights use relErr; moments, which are small, a plain relative
	// difference.
	check := func(what string, g, w []float32) {
		floor := 1e-3
		if !strings.HasSuffix(what, "value") {
			floor = 1e-30
		}
		if len(g) != len(w) {
			t.Errorf("%s %s: %d values here, %d in PyTorch", c.Name, what, len(g), len(w))
			return
		}
		for i := range g {
			d := math.Abs(float64(g[i]) - float64(w[i]))
			worst = max(worst, d/math.Max(math.Abs(float64(w[i])), floor))
			if g[i] == w[i] {
				same++
			}
			total++
		}
	}
	for i, name := range p.Names {
		w, ok := want[name]
		if !ok {
			t.Fatalf("%s: PyTorch returned no %s", c.Name, name)
		}
		check(name+" value", got[i], w.Value)
		check(name+" m", slots[name].M, w.M)
		check(name+" v", slots[name].V, w.V)
	}
	t.Logf("%s: worst relative difference %.3g, %d of %d values bit-identical", c.Name, worst, same, total)
	if worst > 1e-6 {
		t.Errorf("%s: worst relative difference from PyTorch %.3g after %d steps, want <= 1e-6", c.Name, worst, len(p.Grads))
	}
}
