package train

import (
	"fmt"
	"math"
)

// Schedule gives the learning rate of each optimizer step, counted from 0.
// Negative steps count as step 0. Schedules are computed in float64; the
// optimizers round lr to float32 where they use it.
type Schedule interface {
	LR(step int) float64
}

// Constant is a fixed learning rate.
type Constant float64

// LR returns the constant.
func (c Constant) LR(int) float64 { return float64(c) }

// ExpDecay is TensorFlow's tf.train.exponential_decay, the original's
// schedule: LR0 · Rate^(step/DecaySteps), with the exponent floored when
// Staircase is set (the original and tools/train_fashion_mnist.py: 1e-3,
// 0.5, 860 steps, staircase). DecaySteps must be positive.
type ExpDecay struct {
	LR0, Rate  float64
	DecaySteps int
	Staircase  bool
}

// LR returns the decayed rate at step.
func (s ExpDecay) LR(step int) float64 {
	positive("ExpDecay.DecaySteps", s.DecaySteps)
	step = max(step, 0)
	if s.Staircase {
		return s.LR0 * math.Pow(s.Rate, float64(step/s.DecaySteps))
	}
	return s.LR0 * math.Pow(s.Rate, float64(step)/float64(s.DecaySteps))
}

// Cosine anneals from LR0 at step 0 to Min at TotalSteps along half a
// cosine, Min + (LR0-Min)·(1+cos(π·step/TotalSteps))/2 (the closed form of
// torch.optim.lr_scheduler.CosineAnnealingLR, without restarts), and stays
// at Min after. Step 0 gives exactly LR0 and TotalSteps exactly Min.
// TotalSteps must be positive.
type Cosine struct {
	LR0, Min   float64
	TotalSteps int
}

// LR returns the annealed rate at step.
func (s Cosine) LR(step int) float64 {
	positive("Cosine.TotalSteps", s.TotalSteps)
	switch {
	case step <= 0:
		return s.LR0
	case step >= s.TotalSteps:
		return s.Min
	}
	c := math.Cos(math.Pi * float64(step) / float64(s.TotalSteps))
	return s.Min + (s.LR0-s.Min)*(1+c)/2
}

// StepDecay multiplies the rate by Gamma every Every steps, LR0 ·
// Gamma^floor(step/Every), as torch.optim.lr_scheduler.StepLR. Every must
// be positive.
type StepDecay struct {
	LR0, Gamma float64
	Every      int
}

// LR returns the rate at step.
func (s StepDecay) LR(step int) float64 {
	positive("StepDecay.Every", s.Every)
	return s.LR0 * math.Pow(s.Gamma, float64(max(step, 0)/s.Every))
}

// Warmup ramps the rate linearly over the first Steps steps, then hands
// over to Then, whose own step count starts at 0 when warm-up ends:
//
//	step < Steps:  Then.LR(0) · (Start + (1-Start)·step/Steps)
//	step >= Steps: Then.LR(step - Steps)
//
// Start is the factor at step 0: 0 ramps from zero (the first step then
// does not move the weights), 0.1 from a tenth of the rate. The rate
// reaches Then.LR(0) exactly at step Steps. Steps <= 0 means no warm-up.
type Warmup struct {
	Steps int
	Start float64
	Then  Schedule
}

// LR returns the warmed-up rate at step.
func (s Warmup) LR(step int) float64 {
	step = max(step, 0)
	if step >= s.Steps {
		return s.Then.LR(step - max(s.Steps, 0))
	}
	f := s.Start + (1-s.Start)*float64(step)/float64(s.Steps)
	return s.Then.LR(0) * f
}

// positive panics when a schedule's period is not positive: a
// configuration error the caller should have caught.
func positive(name string, n int) {
	if n <= 0 {
		panic(fmt.Sprintf("train: %s must be positive, got %d", name, n))
	}
}
