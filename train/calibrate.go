package train

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Calibrator sets a net's BatchNorms from the statistics of data so that
// training-mode BatchNorm starts from the function the net computes in
// eval mode (see Unfold): Add runs the net in eval mode on batches and
// measures, for every BatchNorm, the per-channel mean μ and (biased)
// variance σ² of its input, the conv's output, over all the batches'
// pixels; Apply then sets the running statistics to μ and σ² and
// rescales gamma and shifts beta so that eval mode computes what it
// computed before (up to rounding), while training-mode BatchNorm on a
// batch whose statistics are μ and σ² computes the same.
//
// The statistics of a layer depend on the layers before it, all of which
// still compute the eval function during Add, so one pass over the
// batches measures every layer.
type Calibrator struct {
	model learner
	units []*convBN
	stats []chanStats
}

// chanStats are running per-channel statistics (Chan et al.'s parallel
// update of the mean and the sum of squared deviations).
type chanStats struct {
	count    float64
	mean, m2 []float64
	bmean    []float64 // scratch: one batch's means
}

// NewCalibrator returns a Calibrator of every BatchNorm of net.
func NewCalibrator(net *Net) *Calibrator { return newCalibrator(net, net.units()) }

func newCalibrator(model learner, units []*convBN) *Calibrator {
	c := &Calibrator{model: model, units: units, stats: make([]chanStats, len(units))}
	for i, u := range units {
		ch := u.bn.C
		c.stats[i] = chanStats{mean: make([]float64, ch), m2: make([]float64, ch), bmean: make([]float64, ch)}
	}
	return c
}

// Add runs the net in eval mode on batch NHWC images x and adds the
// statistics of every BatchNorm's input.
func (c *Calibrator) Add(x []float32, batch int) {
	c.model.Forward(x, batch, false)
	for i, u := range c.units {
		y, _ := u.conv.Output()
		c.stats[i].add(y)
	}
}

// add adds the pixels of y (NHWC, len(s.mean) channels): the batch's mean
// and squared deviations in float64, in pixel order, merged into the
// running ones.
func (s *chanStats) add(y []float32) {
	ch := len(s.mean)
	m := len(y) / ch
	if m == 0 {
		return
	}
	clear(s.bmean)
	for p := range m {
		for j, v := range y[p*ch : (p+1)*ch] {
			s.bmean[j] += float64(v)
		}
	}
	n, nb := s.count, float64(m)
	for j := range s.bmean {
		s.bmean[j] /= nb
		var m2 float64
		for p := range m {
			d := float64(y[p*ch+j]) - s.bmean[j]
			m2 += d * d
		}
		delta := s.bmean[j] - s.mean[j]
		s.mean[j] += delta * nb / (n + nb)
		s.m2[j] += m2 + delta*delta*n*nb/(n+nb)
	}
	s.count = n + nb
}

// Apply sets every BatchNorm from the statistics added (see Calibrator):
// with the current gamma γ, beta β, running mean r and variance v and
// s = sqrt(v+eps), the running statistics become μ and σ², gamma
// γ·sqrt(σ²+eps)/s and beta β + γ·(μ-r)/s. It fails when nothing was
// added.
func (c *Calibrator) Apply() error {
	for i, u := range c.units {
		st := &c.stats[i]
		if st.count == 0 {
			return fmt.Errorf("train: calibrating %s: no statistics (no batches added)", u.bnName)
		}
		bn := u.bn
		for j := range bn.C {
			mu, v := st.mean[j], st.m2[j]/st.count
			g := float64(bn.Gamma[j])
			s := math.Sqrt(float64(bn.RunningVar[j]) + bn.Eps)
			bn.Beta[j] = float32(float64(bn.Beta[j]) + g*(mu-float64(bn.RunningMean[j]))/s)
			bn.Gamma[j] = float32(g * math.Sqrt(v+bn.Eps) / s)
			bn.RunningMean[j], bn.RunningVar[j] = float32(mu), float32(v)
		}
	}
	return nil
}

// calibrationImages is the default of Config.Calibrate.
const calibrationImages = 512

// calibrate sets the unfolded net's trained BatchNorms from the
// statistics of the first Config.Calibrate training images (in the
// seeded order of the first epoch, without augmentation; see
// Calibrator). The frozen part (Freeze) keeps its own.
func (t *trainer) calibrate(ctx context.Context) error {
	limit := t.cfg.Calibrate
	if limit == 0 {
		limit = calibrationImages
	}
	if t.net == nil || limit < 0 {
		return nil
	}
	var units []*convBN
	for _, u := range t.net.units() {
		if !frozenName(u.convName, t.stages) {
			units = append(units, u)
		}
	}
	var batches [][]int
	for _, b := range t.batches.Epoch(0) {
		if limit <= 0 {
			break
		}
		b = b[:min(len(b), limit)]
		batches, limit = append(batches, b), limit-len(b)
	}
	l := &Loader{Set: t.cfg.Data, Spec: t.cfg.Spec, Seed: t.cfg.Seed, Workers: t.cfg.Threads}
	stream, err := t.throughFrozen(l.Start(ctx, 0, batches))
	if err != nil {
		return err
	}
	defer stream.Close()
	c := newCalibrator(t.model, units)
	if err := stream.Each(func(b *Batch) error {
		c.Add(b.X, b.Shape[0])
		return ctx.Err()
	}); err != nil {
		return fmt.Errorf("train: calibrating the unfolded BatchNorms: %w", err)
	}
	if len(batches) == 0 {
		return errors.New("train: no training images to calibrate the unfolded BatchNorms on")
	}
	return c.Apply()
}
