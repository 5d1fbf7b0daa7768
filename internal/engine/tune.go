package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/edge-resnet/edge-resnet/kernels"
)

// Tuning chooses a layer's algorithm by timing the candidates on its real
// shape, on this machine, at the sessions' thread count, instead of the
// policies (winogradPolicy, Set.Winograd8Preferred), which were derived
// from profiles of one CPU. Every candidate computes the same function:
// int8 candidates are exact, so tuning never changes int8 results; fp32
// candidates differ by Winograd's rounding (docs/WINOGRAD.md), which is
// why F(6x6) is not a candidate (twice F(4x4)'s error for at most 10%
// fewer multiplies). FFTW's wisdom and cuDNN's benchmark mode are the
// prior art.
type Tuning struct {
	Mode    TuneMode
	Store   TuneStore // measured choices by layer signature (nil: none kept)
	Threads int       // the thread count the candidates are timed at (0: 1)
}

// TuneMode says what a plan does with measurements.
type TuneMode int

const (
	// TuneOff takes the policies.
	TuneOff TuneMode = iota
	// TuneCached takes the stored measurement of each layer, the policy
	// for a layer without one; it never measures.
	TuneCached
	// TuneMeasure is TuneCached, and measures and stores the layers
	// without a stored measurement.
	TuneMeasure
)

// TuneResult is a layer's measurement: the candidate chosen and each
// candidate's median time in ms.
type TuneResult struct {
	Choice string             `json:"choice"`
	Ms     map[string]float64 `json:"ms"`
}

// TuneStore keeps measurements by layer signature (precision, batch,
// geometry): layers of the same shape share one, across models.
type TuneStore interface {
	Get(sig string) (TuneResult, bool)
	Put(sig string, r TuneResult)
}

// candidate is one way to compute a step: its name in measurements
// ("gemm", "winograd4", ...) and how to compile it (the kernel and the
// per-worker scratch it needs, in bytes).
type candidate struct {
	name  string
	build func() (kernel, int, error)
}

// choose compiles step st with one of cands, the first being the
// policy's choice: the policy's unless tuning is on and a stored or new
// measurement of the layer (signature sig) names another. It records in
// st why (Plan.Steps' Choice).
func (c *compiler) choose(st *step, sig string, cands []candidate) (kernel, error) {
	t := c.opt.Tune
	pick := func(cd candidate, why string) (kernel, error) {
		k, scratch, err := cd.build()
		if err != nil {
			return nil, err
		}
		c.needScratch(scratch)
		st.choice = why
		return k, nil
	}
	if len(cands) < 2 {
		return pick(cands[0], "")
	}
	if t == nil || t.Mode == TuneOff {
		return pick(cands[0], "policy")
	}
	if t.Store != nil {
		if r, ok := t.Store.Get(sig); ok {
			if i := slices.IndexFunc(cands, func(cd candidate) bool { return cd.name == r.Choice }); i >= 0 {
				return pick(cands[i], "cached: "+formatTimes(r))
			}
		}
	}
	if t.Mode != TuneMeasure {
		return pick(cands[0], "policy (not measured)")
	}
	return c.measure(st, sig, cands)
}

// measure times every candidate of st and keeps the fastest.
func (c *compiler) measure(st *step, sig string, cands []candidate) (kernel, error) {
	r := TuneResult{Ms: map[string]float64{}}
	var best kernel
	bestScratch := 0
	for _, cd := range cands {
		k, scratch, err := cd.build()
		if err != nil {
			return nil, err
		}
		if c.overBudget(k, scratch) {
			continue // not a candidate within the memory budget
		}
		ms := c.timeKernel(st, k, scratch)
		r.Ms[cd.name] = ms
		if best == nil || ms < r.Ms[r.Choice] {
			best, bestScratch, r.Choice = k, scratch, cd.name
		}
	}
	if best == nil { // none fits: the policy's, which the budget check then refuses
		k, scratch, err := cands[0].build()
		if err != nil {
			return nil, err
		}
		best, bestScratch, r.Choice = k, scratch, cands[0].name
	}
	c.needScratch(bestScratch)
	if c.opt.Tune.Store != nil && len(r.Ms) > 0 {
		c.opt.Tune.Store.Put(sig, r)
	}
	st.choice = "measured: " + formatTimes(r)
	return best, nil
}

// overBudget reports whether candidate k (with scratch bytes per worker)
// would take the plan past CompileOptions.MaxBytes.
func (c *compiler) overBudget(k kernel, scratch int) bool {
	if c.opt.MaxBytes <= 0 {
		return false
	}
	threads := max(c.opt.Tune.Threads, 1)
	arena := 4*int64(c.p.floats) + int64(threads)*max(c.p.ScratchBytes(), int64(scratch))
	return c.weights+k.weightBytes()+arena > c.opt.MaxBytes
}

// formatTimes is "gemm 1.20 ms, winograd4 0.61 ms ..." in the order of
// the times, the chosen one first.
func formatTimes(r TuneResult) string {
	names := make([]string, 0, len(r.Ms))
	for n := range r.Ms {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return r.Ms[names[i]] < r.Ms[names[j]] })
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.3f ms", n, r.Ms[n])
	}
	return strings.Join(parts, ", ")
}

// Tuning times candidates on an Exec of their own: the plan's arena
// layout (inputs read as the zeros it starts with: these kernels' speed
// does not depend on the values) and one step, run as a session runs it.
const (
	tuneRuns    = 7                     // timed runs at least
	tuneMinTime = 20 * time.Millisecond // and at least this long in all
	tuneMaxRuns = 100
)

// timeKernel is the median ms of running k as step st on the timing Exec,
// after one untimed run.
func (c *compiler) timeKernel(st *step, k kernel, scratch int) float64 {
	e := c.timingExec(scratch)
	e.plan.steps[0] = *st
	e.plan.steps[0].k = k
	e.n = c.p.Batch
	// Zero inputs: arena reuse may have left another layer's bytes there,
	// which as float32 can be denormals that take microcode assists.
	for _, off := range []int{st.in, st.in2} {
		switch {
		case off < 0:
		case st.int8:
			clear(e.view8All(off, st.inShape))
		default:
			clear(e.viewAll(off, st.inShape))
		}
	}
	e.step(0)
	var times []float64
	var total time.Duration
	for len(times) < tuneRuns || (total < tuneMinTime && len(times) < tuneMaxRuns) {
		t0 := time.Now()
		e.step(0)
		d := time.Since(t0)
		total += d
		times = append(times, float64(d)/1e6)
	}
	slices.Sort(times)
	return times[len(times)/2]
}

// timingExec is the compile's timing Exec, with at least scratch bytes
// per worker, made (again) when needed.
func (c *compiler) timingExec(scratch int) *Exec {
	floats := (scratch + 3) / 4
	if c.timing != nil && c.timing.plan.scratch >= floats {
		return c.timing
	}
	c.closeTiming()
	p := c.p
	tp := &Plan{Graph: p.Graph, Kernels: p.Kernels, Precision: p.Precision, Batch: p.Batch,
		offsets: p.offsets, u8: p.u8, floats: p.floats, scratch: max(floats, p.scratch), steps: make([]step, 1)}
	c.timing, _ = NewExec(tp, max(c.opt.Tune.Threads, 1)) // NewExec does not fail
	return c.timing
}

// closeTiming stops the timing Exec's workers.
func (c *compiler) closeTiming() {
	if c.timing != nil {
		c.timing.Close()
		c.timing = nil
	}
}

// convSig is the signature of a conv layer in tuning stores: precision
// ("fp32", "int8"), batch, kernel path and geometry (and, for int8,
// whether its weights take the narrow kernel).
func (c *compiler) convSig(prec string, g *kernels.ConvGeom, narrow bool) string {
	return fmt.Sprintf("%s b%d %s %dx%dx%d>%dx%dx%d k%dx%d s%dx%d d%dx%d p%d,%d narrow=%t", prec, c.p.Batch,
		c.p.Kernels.Name(), g.H, g.W, g.C, g.OH, g.OW, g.Cout, g.KH, g.KW, g.StrideH, g.StrideW, g.DilH, g.DilW,
		g.PadTop, g.PadLeft, narrow)
}
