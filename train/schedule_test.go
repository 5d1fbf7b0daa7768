package train

import (
	"math"
	"testing"
)

func TestSchedules(t *testing.T) {
	lr0 := 1e-3 // a variable, so that the wants below round as LR does
	orig := ExpDecay{LR0: lr0, Rate: 0.5, DecaySteps: 860, Staircase: true}
	smooth := ExpDecay{LR0: lr0, Rate: 0.5, DecaySteps: 860}
	cos := Cosine{LR0: lr0, Min: 1e-5, TotalSteps: 100}
	cases := []struct {
		name string
		s    Schedule
		step int
		want float64
		tol  float64 // relative; 0 means exactly
	}{
		{"constant", Constant(0.1), 7, 0.1, 0},
		{"staircase step 0", orig, 0, 1e-3, 0},
		{"staircase decay_steps-1", orig, 859, 1e-3, 0},
		{"staircase decay_steps", orig, 860, 5e-4, 0},
		{"staircase decay_steps+1", orig, 861, 5e-4, 0},
		{"staircase 860*3-1", orig, 860*3 - 1, 2.5e-4, 0},
		{"staircase 860*3", orig, 860 * 3, 1.25e-4, 0},
		{"staircase negative", orig, -5, 1e-3, 0},
		{"smooth step 0", smooth, 0, 1e-3, 0},
		{"smooth half period", smooth, 430, lr0 * math.Sqrt(0.5), 0},
		{"smooth decay_steps", smooth, 860, 5e-4, 0},
		{"smooth 860*3", smooth, 860 * 3, 1.25e-4, 0},
		{"smooth decay_steps-1", smooth, 859, lr0 * math.Pow(0.5, 859.0/860), 1e-15},
		{"cosine step 0", cos, 0, 1e-3, 0},
		{"cosine half", cos, 50, (1e-3 + 1e-5) / 2, 1e-15},
		{"cosine quarter", cos, 25, 1e-5 + (1e-3-1e-5)*(1+math.Sqrt(0.5))/2, 1e-15},
		{"cosine end", cos, 100, 1e-5, 0},
		{"cosine after end", cos, 250, 1e-5, 0},
		{"step decay 0", StepDecay{LR0: 0.1, Gamma: 0.5, Every: 30}, 0, 0.1, 0},
		{"step decay 29", StepDecay{LR0: 0.1, Gamma: 0.5, Every: 30}, 29, 0.1, 0},
		{"step decay 30", StepDecay{LR0: 0.1, Gamma: 0.5, Every: 30}, 30, 0.05, 0},
		{"step decay 90", StepDecay{LR0: 0.1, Gamma: 0.5, Every: 30}, 90, 0.0125, 0},
		{"warmup from 0 step 0", Warmup{Steps: 10, Then: orig}, 0, 0, 0},
		{"warmup from 0 step 5", Warmup{Steps: 10, Then: orig}, 5, 5e-4, 0},
		{"warmup end", Warmup{Steps: 10, Then: orig}, 10, 1e-3, 0},
		{"warmup then decays", Warmup{Steps: 10, Then: orig}, 10 + 860, 5e-4, 0},
		{"warmup then before decay", Warmup{Steps: 10, Then: orig}, 10 + 859, 1e-3, 0},
		{"warmup from 0.25 step 0", Warmup{Steps: 8, Start: 0.25, Then: orig}, 0, 2.5e-4, 0},
		{"warmup from 0.25 step 4", Warmup{Steps: 8, Start: 0.25, Then: orig}, 4, lr0 * 0.625, 0},
		{"no warmup", Warmup{Then: cos}, 0, 1e-3, 0},
		{"warmup then cosine end", Warmup{Steps: 5, Then: cos}, 105, 1e-5, 0},
	}
	for _, c := range cases {
		got := c.s.LR(c.step)
		if c.tol == 0 && got != c.want || math.Abs(got-c.want) > c.tol*math.Abs(c.want) {
			t.Errorf("%s: LR(%d) = %.17g, want %.17g", c.name, c.step, got, c.want)
		}
	}
}

// TestStaircaseMatchesPyTorchRecipe checks every step of a 12-epoch run
// against tools/train_fashion_mnist.py's lr0 * rate ** (step // decay_steps),
// computed by repeated halving.
func TestStaircaseMatchesPyTorchRecipe(t *testing.T) {
	s := ExpDecay{LR0: 1e-3, Rate: 0.5, DecaySteps: 860, Staircase: true}
	for step := 0; step < 12*430; step++ {
		want := 1e-3
		for range step / 860 {
			want *= 0.5
		}
		if got := s.LR(step); got != want {
			t.Fatalf("LR(%d) = %g, want %g", step, got, want)
		}
	}
}

func TestCosineIsMonotone(t *testing.T) {
	s := Cosine{LR0: 0.1, Min: 0, TotalSteps: 1000}
	prev := s.LR(0)
	for step := 1; step <= 1000; step++ {
		lr := s.LR(step)
		if lr > prev || lr < 0 {
			t.Fatalf("LR(%d) = %g after %g", step, lr, prev)
		}
		prev = lr
	}
}

func TestSchedulePanicsOnZeroPeriod(t *testing.T) {
	for _, s := range []Schedule{ExpDecay{LR0: 1, Rate: 0.5}, Cosine{LR0: 1}, StepDecay{LR0: 1, Gamma: 0.5}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%T with a zero period did not panic", s)
				}
			}()
			s.LR(1)
		}()
	}
}
