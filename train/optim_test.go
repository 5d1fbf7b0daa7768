package train

import (
	"bytes"
	"encoding/gob"
	"math"
	"math/rand/v2"
	"testing"
)

// optCase is one optimizer configuration the tests run, here against the
// float64 references and in torch_test.go against PyTorch.
type optCase struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"` // adam, adamw, sgd
	WD       float64 `json:"wd"`
	Momentum float64 `json:"momentum"`
	Nesterov bool    `json:"nesterov"`
}

var optCases = []optCase{
	{Name: "adam", Kind: "adam"},
	{Name: "adam_wd", Kind: "adam", WD: 0.05},
	{Name: "adamw", Kind: "adamw", WD: 0.05},
	{Name: "sgd", Kind: "sgd"},
	{Name: "sgd_momentum_wd", Kind: "sgd", Momentum: 0.9, WD: 5e-4},
	{Name: "sgd_nesterov_wd", Kind: "sgd", Momentum: 0.9, Nesterov: true, WD: 1e-3},
}

func (c optCase) optimizer() Optimizer {
	switch c.Kind {
	case "adam":
		return NewAdam(c.WD)
	case "adamw":
		return NewAdamW(c.WD)
	}
	return NewSGD(c.Momentum, c.Nesterov, c.WD)
}

// optProblem is a fixed set of parameters, gradients per step and learning
// rates per step: a weight that decays and a bias that does not.
type optProblem struct {
	Names  []string      `json:"names"`
	Decay  []bool        `json:"decay"`
	Values [][]float32   `json:"values"`
	Grads  [][][]float32 `json:"grads"` // [step][param][i]
	LRs    []float64     `json:"lrs"`
}

func newProblem(seed uint64, steps int) optProblem {
	r := rand.New(rand.NewPCG(seed, 7))
	p := optProblem{Names: []string{"conv.weight", "conv.bias"}, Decay: []bool{true, false}}
	sizes := []int{37, 5}
	for _, n := range sizes {
		p.Values = append(p.Values, normals(r, n, 0.5))
	}
	sched := ExpDecay{LR0: 0.01, Rate: 0.5, DecaySteps: 2, Staircase: true}
	for s := 0; s < steps; s++ {
		var g [][]float32
		for _, n := range sizes {
			g = append(g, normals(r, n, 0.1))
		}
		p.Grads = append(p.Grads, g)
		p.LRs = append(p.LRs, sched.LR(s))
	}
	return p
}

func normals(r *rand.Rand, n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * std)
	}
	return v
}

// run applies every step of the problem with opt and returns the final
// parameter values.
func (p optProblem) run(opt Optimizer) [][]float32 {
	vals := make([][]float32, len(p.Values))
	for i, v := range p.Values {
		vals[i] = append([]float32(nil), v...)
	}
	for s, grads := range p.Grads {
		params := make([]Param, len(vals))
		for i := range vals {
			params[i] = Param{Name: p.Names[i], Value: vals[i], Grad: grads[i], Decay: p.Decay[i]}
		}
		opt.Step(params, p.LRs[s])
	}
	return vals
}

// reference runs the textbook update formulas of c in float64.
func (p optProblem) reference(c optCase) [][]float64 {
	var out [][]float64
	for i, v0 := range p.Values {
		w := make([]float64, len(v0))
		for j, x := range v0 {
			w[j] = float64(x)
		}
		m, v := make([]float64, len(w)), make([]float64, len(w))
		wd := 0.0
		if p.Decay[i] {
			wd = c.WD
		}
		for s, grads := range p.Grads {
			for j := range w {
				g := float64(grads[i][j])
				w[j] = refStep(c, wd, s+1, p.LRs[s], w[j], g, &m[j], &v[j])
			}
		}
		out = append(out, w)
	}
	return out
}

// refStep is one element's update at step t (from 1) in float64.
func refStep(c optCase, wd float64, t int, lr, w, g float64, m, v *float64) float64 {
	switch c.Kind {
	case "adam", "adamw":
		if c.Kind == "adamw" {
			w -= lr * wd * w
		} else {
			g += wd * w
		}
		*m = 0.9**m + 0.1*g
		*v = 0.999**v + 0.001*g*g
		bc1 := 1 - math.Pow(0.9, float64(t))
		bc2 := 1 - math.Pow(0.999, float64(t))
		return w - lr/bc1**m/(math.Sqrt(*v)/math.Sqrt(bc2)+1e-8)
	}
	g += wd * w
	if c.Momentum != 0 {
		if t == 1 {
			*m = g
		} else {
			*m = c.Momentum**m + g
		}
		if c.Nesterov {
			g += c.Momentum * *m
		} else {
			g = *m
		}
	}
	return w - lr*g
}

// relErr is |got-want| relative to |want|, with values under 1e-3 compared
// as if they were 1e-3 (a parameter crossing zero has no useful relative
// error).
func relErr(got, want float64) float64 {
	return math.Abs(got-want) / math.Max(math.Abs(want), 1e-3)
}

func TestOptimizersMatchFloat64Reference(t *testing.T) {
	p := newProblem(1, 6)
	for _, c := range optCases {
		got := p.run(c.optimizer())
		want := p.reference(c)
		worst := 0.0
		for i := range want {
			for j := range want[i] {
				worst = max(worst, relErr(float64(got[i][j]), want[i][j]))
			}
		}
		t.Logf("%s: worst relative error %.3g", c.Name, worst)
		if worst > 1e-6 {
			t.Errorf("%s: worst relative error %.3g after %d steps, want <= 1e-6", c.Name, worst, len(p.Grads))
		}
		if moved := relErr(float64(got[0][0]), float64(p.Values[0][0])); moved < 1e-4 {
			t.Errorf("%s: the weights barely moved (%.3g)", c.Name, moved)
		}
	}
}

// TestStateRoundTrip checks that a State written with gob and restored
// into a fresh optimizer continues bit-identically.
func TestStateRoundTrip(t *testing.T) {
	p := newProblem(2, 6)
	for _, c := range optCases {
		whole := p.run(c.optimizer())
		first := optProblem{Names: p.Names, Decay: p.Decay, Values: p.Values, Grads: p.Grads[:3], LRs: p.LRs[:3]}
		opt := c.optimizer()
		mid := first.run(opt)
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(opt.State()); err != nil {
			t.Fatal(err)
		}
		var st State
		if err := gob.NewDecoder(&buf).Decode(&st); err != nil {
			t.Fatal(err)
		}
		if st.Steps != 3 || len(st.Slots) == 0 && (c.Kind != "sgd" || c.Momentum != 0) {
			t.Fatalf("%s: state after 3 steps: %d steps, %d slots", c.Name, st.Steps, len(st.Slots))
		}
		resumed := c.optimizer()
		if err := resumed.SetState(st); err != nil {
			t.Fatal(err)
		}
		second := optProblem{Names: p.Names, Decay: p.Decay, Values: mid, Grads: p.Grads[3:], LRs: p.LRs[3:]}
		got := second.run(resumed)
		for i := range whole {
			for j := range whole[i] {
				if got[i][j] != whole[i][j] {
					t.Fatalf("%s: resumed %s[%d] = %v, uninterrupted %v", c.Name, p.Names[i], j, got[i][j], whole[i][j])
				}
			}
		}
	}
}

func TestSetStateRejectsOtherKind(t *testing.T) {
	a := NewAdam(0)
	a.Step([]Param{{Name: "w", Value: []float32{1}, Grad: []float32{1}}}, 0.1)
	if err := NewAdamW(0).SetState(a.State()); err == nil {
		t.Error("AdamW accepted an Adam state")
	}
	if err := NewSGD(0.9, false, 0).SetState(a.State()); err == nil {
		t.Error("SGD accepted an Adam state")
	}
	bad := a.State()
	bad.Slots[0].V = nil
	if err := NewAdam(0).SetState(bad); err == nil {
		t.Error("Adam accepted a state without second moments")
	}
}

// TestNilGradSkipped checks that a parameter without gradient is left
// alone and its step count does not advance (PyTorch's grad None).
func TestNilGradSkipped(t *testing.T) {
	a := NewAdam(0.1)
	w, frozen := []float32{1, 2}, []float32{3, 4}
	for range 3 {
		a.Step([]Param{{Name: "w", Value: w, Grad: []float32{0.5, -0.5}, Decay: true}, {Name: "f", Value: frozen, Decay: true}}, 0.1)
	}
	if frozen[0] != 3 || frozen[1] != 4 {
		t.Errorf("frozen parameter changed: %v", frozen)
	}
	st := a.State()
	if st.Steps != 3 || len(st.Slots) != 1 || st.Slots[0].Name != "w" || st.Slots[0].Step != 3 {
		t.Errorf("state %+v, want 3 steps and one slot for w at step 3", st)
	}
}

func TestStepPanicsOnBadParams(t *testing.T) {
	cases := map[string][]Param{
		"duplicate": {{Name: "w", Value: []float32{1}, Grad: []float32{1}}, {Name: "w", Value: []float32{1}, Grad: []float32{1}}},
		"length":    {{Name: "w", Value: []float32{1, 2}, Grad: []float32{1}}},
	}
	for name, params := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Step did not panic", name)
				}
			}()
			NewSGD(0.9, true, 0).Step(params, 0.1)
		}()
	}
}
