package train

import (
	"fmt"
	"math"
	"sort"
)

// Param is one trainable tensor as an optimizer sees it: its values, the
// gradient accumulated for them, and whether weight decay applies (conv and
// dense weights: yes; biases and BatchNorm's gamma and beta: no). Name
// identifies the parameter's optimizer state across steps and in
// checkpoints, so it must be unique and stable (e.g. "layer1.0.conv1.weight").
// A Param whose Grad is nil is skipped, as PyTorch skips a parameter whose
// .grad is None: its state does not advance.
type Param struct {
	Name  string
	Value []float32
	Grad  []float32
	Decay bool
}

// Optimizer updates parameters in place from their gradients.
//
// Step applies one update with learning rate lr (the schedule's value for
// this step); it does not zero the gradients. State returns a deep copy of
// everything the optimizer keeps between steps, and SetState restores one,
// so that a resumed run continues exactly where it stopped.
type Optimizer interface {
	Step(params []Param, lr float64)
	State() State
	SetState(State) error
}

// State is an optimizer's checkpointable state: a plain struct of strings,
// integers and slices that encoding/gob (or a hand-written binary writer)
// stores as it is. Hyper-parameters (betas, momentum, weight decay) are
// not part of it: they come from the run's configuration.
type State struct {
	// Kind is "adam", "adamw" or "sgd"; SetState refuses another kind.
	Kind string
	// Steps counts the calls to Step.
	Steps int64
	// Slots holds one entry per parameter updated so far, sorted by Name
	// (none for SGD without momentum, which keeps no buffers).
	Slots []Slot
}

// Slot is the state of one parameter.
type Slot struct {
	Name string
	// Step counts the updates this parameter received (Adam's bias
	// correction uses it, as PyTorch's per-parameter state["step"]).
	Step int64
	// M is Adam's first moment (exp_avg) or SGD's momentum buffer; V is
	// Adam's second moment (exp_avg_sq), nil for SGD. Both have the
	// parameter's length.
	M, V []float32
}

// slotTable is the state shared by the optimizers: a step counter and the
// slots by parameter name.
type slotTable struct {
	kind  string
	steps int64
	slots map[string]*Slot
}

// slot returns p's slot, creating it with zero moments (and V when withV)
// the first time p is seen; a length change is a programming error.
func (t *slotTable) slot(p Param, withV bool) *Slot {
	if t.slots == nil {
		t.slots = map[string]*Slot{}
	}
	s := t.slots[p.Name]
	if s == nil {
		s = &Slot{Name: p.Name, M: make([]float32, len(p.Value))}
		if withV {
			s.V = make([]float32, len(p.Value))
		}
		t.slots[p.Name] = s
	}
	if len(s.M) != len(p.Value) {
		panic(fmt.Sprintf("train: parameter %q has %d values, its optimizer state %d", p.Name, len(p.Value), len(s.M)))
	}
	return s
}

// state copies the table into a State, slots sorted by name.
func (t *slotTable) state() State {
	st := State{Kind: t.kind, Steps: t.steps, Slots: make([]Slot, 0, len(t.slots))}
	for _, s := range t.slots {
		c := Slot{Name: s.Name, Step: s.Step, M: append([]float32(nil), s.M...)}
		if s.V != nil {
			c.V = append([]float32(nil), s.V...)
		}
		st.Slots = append(st.Slots, c)
	}
	sort.Slice(st.Slots, func(i, j int) bool { return st.Slots[i].Name < st.Slots[j].Name })
	return st
}

// setState replaces the table with a copy of st after checking it.
func (t *slotTable) setState(st State, withV bool) error {
	if st.Kind != t.kind {
		return fmt.Errorf("train: optimizer state of kind %q, want %q", st.Kind, t.kind)
	}
	slots := make(map[string]*Slot, len(st.Slots))
	for _, s := range st.Slots {
		if _, dup := slots[s.Name]; dup {
			return fmt.Errorf("train: optimizer state has parameter %q twice", s.Name)
		}
		if withV && len(s.V) != len(s.M) {
			return fmt.Errorf("train: optimizer state of %q: %d first moments, %d second", s.Name, len(s.M), len(s.V))
		}
		c := &Slot{Name: s.Name, Step: s.Step, M: append([]float32(nil), s.M...)}
		if withV {
			c.V = append([]float32(nil), s.V...)
		}
		slots[s.Name] = c
	}
	t.steps, t.slots = st.Steps, slots
	return nil
}

// checkParams panics on duplicate names or a gradient whose length is not
// its parameter's: both are bugs in the caller.
func checkParams(params []Param) {
	seen := make(map[string]bool, len(params))
	for _, p := range params {
		if seen[p.Name] {
			panic(fmt.Sprintf("train: parameter %q passed twice", p.Name))
		}
		seen[p.Name] = true
		if p.Grad != nil && len(p.Grad) != len(p.Value) {
			panic(fmt.Sprintf("train: parameter %q has %d values and %d gradients", p.Name, len(p.Value), len(p.Grad)))
		}
	}
}

// fma32 is a*b + c rounded once to float32, as the vectorized CPU kernels
// of PyTorch's add(other, alpha) compute self + alpha*other (an FMA). The
// product of two float32 is exact in float64, so only the sum is rounded
// twice (to float64, then float32), which differs from a true float32 FMA
// in rare halfway cases only.
func fma32(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

// sqrt32 is the correctly rounded float32 square root.
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// Adam is torch.optim.Adam (amsgrad off, maximize off) with L2 weight
// decay added to the gradient as its weight_decay, on parameters whose
// Decay is set. Use NewAdam; the exported fields may be changed before
// the first Step.
//
// Per element, in float32 and in this order (PyTorch's _single_tensor_adam
// on CPU; t is the parameter's step count after incrementing it, and the
// scalars below are float64 until converted to float32 where used):
//
//	g  = fma(wd, w, g)                         grad.add(param, alpha=wd), Decay only
//	m  = fma(1-β1, g, m·β1)                    exp_avg.mul_(β1).add_(g, alpha=1-β1)
//	v  = fma((1-β2)·g, g, v·β2)                exp_avg_sq.mul_(β2).addcmul_(g, g, value=1-β2)
//	d  = sqrt(v) / sqrt(1-β2^t) + ε            (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
//	w  = w + ((-lr/(1-β1^t))·m) / d            param.addcdiv_(exp_avg, denom, value=-step_size)
//
// where fma rounds once (see fma32), as PyTorch's vectorized CPU kernels
// do, and every other operation rounds to float32 (explicit conversions
// keep Go from fusing them on arm64). On Debian's PyTorch 1.13 on x86-64
// this gave results bit-identical to torch.optim.Adam and AdamW over
// torch_test.go's 5 steps (fma32's rare double rounding aside).
type Adam struct {
	Beta1, Beta2, Eps float64
	WeightDecay       float64
	decoupled         bool
	t                 slotTable
}

// NewAdam returns Adam with PyTorch's defaults (β1 0.9, β2 0.999, ε 1e-8)
// and the given L2 weight decay (0 for none, the original's recipe).
func NewAdam(weightDecay float64) *Adam {
	return &Adam{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay, t: slotTable{kind: "adam"}}
}

// AdamW is torch.optim.AdamW: Adam without the L2 term, and before it,
// on parameters whose Decay is set, decoupled decay w = w·(1 - lr·wd)
// (param.mul_(1 - lr * weight_decay), the factor rounded to float32).
type AdamW struct{ Adam }

// NewAdamW returns AdamW with PyTorch's defaults (β1 0.9, β2 0.999, ε
// 1e-8) and the given decoupled weight decay (PyTorch's default is 1e-2).
func NewAdamW(weightDecay float64) *AdamW {
	return &AdamW{Adam{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay, decoupled: true, t: slotTable{kind: "adamw"}}}
}

// Step applies one Adam (or AdamW) update with learning rate lr.
func (a *Adam) Step(params []Param, lr float64) {
	checkParams(params)
	a.t.steps++
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		s := a.t.slot(p, true)
		s.Step++
		a.update(p, s, lr)
	}
}

// update applies the formulas of the Adam comment to one parameter.
func (a *Adam) update(p Param, s *Slot, lr float64) {
	t := float64(s.Step)
	bc1 := 1 - math.Pow(a.Beta1, t)
	bc2s := float32(math.Sqrt(1 - math.Pow(a.Beta2, t)))
	negStep := float32(-(lr / bc1))
	b1, omb1 := float32(a.Beta1), float32(1-a.Beta1)
	b2, omb2 := float32(a.Beta2), float32(1-a.Beta2)
	eps := float32(a.Eps)
	var l2 float32
	decay := p.Decay && a.WeightDecay != 0
	if decay && a.decoupled {
		f := float32(1 - lr*a.WeightDecay)
		for i, w := range p.Value {
			p.Value[i] = w * f
		}
	} else if decay {
		l2 = float32(a.WeightDecay)
	}
	w, m, v := p.Value, s.M, s.V
	for i, g := range p.Grad[:len(w)] {
		if l2 != 0 {
			g = fma32(l2, w[i], g)
		}
		m[i] = fma32(omb1, g, float32(m[i]*b1))
		v[i] = fma32(float32(omb2*g), g, float32(v[i]*b2))
		d := float32(sqrt32(v[i])/bc2s) + eps
		w[i] += float32(float32(negStep*m[i]) / d)
	}
}

// State returns a copy of the moments and step counts.
func (a *Adam) State() State { return a.t.state() }

// SetState restores a State returned by State of the same kind.
func (a *Adam) SetState(st State) error { return a.t.setState(st, true) }

// SGD is torch.optim.SGD with dampening 0: L2 weight decay added to the
// gradient on parameters whose Decay is set, momentum, and Nesterov's
// variant. Per element, in float32 and in this order (_single_tensor_sgd):
//
//	g   = fma(wd, w, g)                 d_p.add(param, alpha=wd), Decay only
//	buf = g on the first step, else buf·μ + g
//	g   = fma(μ, buf, g) with Nesterov, else buf    (when μ != 0)
//	w   = fma(-lr, g, w)                param.add_(d_p, alpha=-lr)
//
// (fma as in Adam; bit-identical to Debian's PyTorch 1.13 on x86-64 in
// torch_test.go).
// Use NewSGD.
type SGD struct {
	Momentum    float64
	Nesterov    bool
	WeightDecay float64
	t           slotTable
}

// NewSGD returns SGD with the given momentum (0 for plain SGD), Nesterov
// switch and L2 weight decay. Nesterov needs a positive momentum, as in
// PyTorch; NewSGD panics otherwise.
func NewSGD(momentum float64, nesterov bool, weightDecay float64) *SGD {
	if nesterov && momentum <= 0 {
		panic("train: Nesterov momentum requires a momentum > 0")
	}
	return &SGD{Momentum: momentum, Nesterov: nesterov, WeightDecay: weightDecay, t: slotTable{kind: "sgd"}}
}

// Step applies one SGD update with learning rate lr.
func (o *SGD) Step(params []Param, lr float64) {
	checkParams(params)
	o.t.steps++
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		var buf []float32
		if o.Momentum != 0 {
			s := o.t.slot(p, false)
			s.Step++
			buf = s.M
			if s.Step == 1 {
				buf = nil // PyTorch clones the first gradient into the buffer
			}
			o.update(p, buf, s.M, lr)
			continue
		}
		o.update(p, nil, nil, lr)
	}
}

// update applies the formulas of the SGD comment to one parameter; prev is
// the momentum buffer before this step (nil on the first one), next where
// the new buffer goes (nil without momentum).
func (o *SGD) update(p Param, prev, next []float32, lr float64) {
	var l2 float32
	if p.Decay {
		l2 = float32(o.WeightDecay)
	}
	mu, negLR := float32(o.Momentum), float32(-lr)
	w := p.Value
	for i, g := range p.Grad[:len(w)] {
		if l2 != 0 {
			g = fma32(l2, w[i], g)
		}
		if next != nil {
			b := g
			if prev != nil {
				b = float32(prev[i]*mu) + g
			}
			next[i] = b
			if o.Nesterov {
				g = fma32(mu, b, g)
			} else {
				g = b
			}
		}
		w[i] = fma32(negLR, g, w[i])
	}
}

// State returns a copy of the momentum buffers and step counts.
func (o *SGD) State() State { return o.t.state() }

// SetState restores a State returned by State of an SGD.
func (o *SGD) SetState(st State) error { return o.t.setState(st, false) }
