package train

import (
	"encoding/json"
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

// TestOptimizersMatchPyTorch runs 5 steps of every optCases optimizer here
// and in PyTorch (testdata/torch_optim.py) on the same parameters,
// gradients and learning rates, and compares the weights and moments
// within 1e-6 relative. It skips, saying why, when /usr/bin/python3 or
// its torch module is missing; TestOptimizersMatchFloat64Reference checks
// the same formulas without PyTorch.
func TestOptimizersMatchPyTorch(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		t.Skipf("skipping the PyTorch comparison: %s not found (the float64 references still ran)", python)
	}
	if out, err := exec.Command(python, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("skipping the PyTorch comparison: %s cannot import torch (%v: %s); the float64 references still ran",
			python, err, lastLine(string(out)))
	}
	p := newProblem(3, 5)
	in := filepath.Join(t.TempDir(), "problem.json")
	data, err := json.Marshal(map[string]any{"cases": optCases, "problem": p})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join("testdata", "torch_optim.py"), in)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("torch_optim.py: %v\n%s", err, stderr.String())
	}
	var want map[string]map[string]torchParam
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("torch_optim.py output: %v", err)
	}
	for _, c := range optCases {
		compareWithTorch(t, c, p, want[c.Name])
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

// lastLine is the last non-empty line of s: a Python traceback's error.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
