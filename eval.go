package edgeresnet

import (
	"context"
	"fmt"
	"image"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/preprocess"
)

// EvalResult is the accuracy of a model on a labeled set.
type EvalResult struct {
	Images  int     `json:"images"`
	Top1    float64 `json:"top1"`
	Top5    float64 `json:"top5"`
	Correct int     `json:"correct"`
	Failed  int     `json:"failed"` // samples that could not be read
	// Predictions holds each sample's top-1 class (-1 where it failed), in
	// set order, so that two models can be compared image by image.
	Predictions []int `json:"-"`
	// Outputs holds the raw outputs (Images x classes, in set order) when
	// EvalOptions.KeepOutputs is set.
	Outputs []float32 `json:"-"`
}

// EvalOptions control Evaluate.
type EvalOptions struct {
	Workers  int            // parallel sessions of one thread each (0: GOMAXPROCS)
	Limit    int            // evaluate only the first Limit samples (0: all)
	Progress func(done int) // called after each sample, from any worker
	// OnError is called for a sample that cannot be read, preprocessed or
	// run, with its name and an error that names it; evaluation goes on.
	// Without OnError, the first such error ends the evaluation.
	OnError func(name string, err error)
	// Precision of the sessions (default PrecisionAuto).
	Precision Precision
	// KeepOutputs stores every raw output in EvalResult.Outputs (with
	// Views, each sample's mean probabilities).
	KeepOutputs bool
	// Views, when there are more than one, classifies each sample by
	// test-time augmentation: the mean probabilities of these views
	// (preprocess.ParseViews), run as one batch per sample.
	Views []preprocess.View
}

// Evaluate runs the model on every sample of set and counts top-1 and top-5
// hits. Samples are spread over parallel single-thread sessions, which uses
// cores better than one session with many threads on small images; results
// do not depend on the split.
func Evaluate(m *Model, set dataset.Set, opt EvalOptions) (*EvalResult, error) {
	return EvaluateContext(context.Background(), m, set, opt)
}

// EvaluateContext is Evaluate that stops when ctx is done: no new sample
// starts, the ones running finish (one image each), and it returns ctx's
// error.
func EvaluateContext(ctx context.Context, m *Model, set dataset.Set, opt EvalOptions) (*EvalResult, error) {
	n, workers, err := setWork(set, opt.Limit, opt.Workers)
	if err != nil {
		return nil, err
	}
	workers, err = m.sessionsThatFit(opt.Precision, workers)
	if err != nil {
		return nil, err
	}
	classes := m.graph.OutputShape().Size()
	ev := &evaluation{ctx: ctx, set: set, opt: opt, n: n, classes: classes,
		res: &EvalResult{Images: n, Predictions: make([]int, n)}}
	if opt.KeepOutputs {
		ev.res.Outputs = make([]float32, n*classes)
	}
	if err := ev.run(m, workers); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ev.firstErr != nil {
		return nil, ev.firstErr
	}
	res := ev.res
	res.Correct, res.Failed = int(ev.correct.Load()), int(ev.failed.Load())
	if ok := n - res.Failed; ok > 0 {
		res.Top1 = float64(ev.correct.Load()) / float64(ok)
		res.Top5 = float64(ev.top5.Load()) / float64(ok)
	}
	return res, nil
}

// evaluation is what the workers of EvaluateContext share. Each takes the
// next sample (next) until none are left or the evaluation stops; the
// counters add up in any order, so results do not depend on the split.
type evaluation struct {
	ctx     context.Context
	set     dataset.Set
	opt     EvalOptions
	n       int // samples to evaluate
	classes int // model outputs
	res     *EvalResult

	next, done, correct, top5, failed atomic.Int64

	stop     atomic.Bool // no new sample starts
	errOnce  sync.Once
	firstErr error      // the error that ends the evaluation
	reportMu sync.Mutex // OnError and Progress are called one at a time
}

// run evaluates the samples on workers single-thread sessions of m and
// waits for them; it fails only when a session cannot be made.
func (ev *evaluation) run(m *Model, workers int) error {
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		s, err := m.NewSession(WithThreads(1), WithPrecision(ev.opt.Precision), WithBatch(max(len(ev.opt.Views), m.Batch())))
		if err != nil {
			ev.stop.Store(true) // the sessions started so far
			wg.Wait()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			ev.work(s)
		}()
	}
	wg.Wait()
	return nil
}

// work evaluates samples on s until none are left, the evaluation stops
// or ctx is done, and reports progress after each.
func (ev *evaluation) work(s *Session) {
	for {
		i := int(ev.next.Add(1) - 1)
		if i >= ev.n || ev.stop.Load() || ev.ctx.Err() != nil {
			return
		}
		ev.sample(s, i)
		d := int(ev.done.Add(1))
		if ev.opt.Progress != nil {
			ev.reportMu.Lock()
			ev.opt.Progress(d)
			ev.reportMu.Unlock()
		}
	}
}

// sample reads, preprocesses and runs sample i on s and scores it. A
// sample that fails is reported to OnError or, without OnError, ends the
// evaluation; its prediction stays -1.
func (ev *evaluation) sample(s *Session, i int) {
	ev.res.Predictions[i] = -1
	img, err := ev.set.Image(i)
	var out []float32
	var top []Prediction
	if err == nil {
		out, top, err = ev.classify(s, img)
	}
	if err != nil {
		ev.failed.Add(1)
		err = sampleError(ev.set, i, err)
		if ev.opt.OnError != nil {
			ev.reportMu.Lock()
			ev.opt.OnError(ev.set.Name(i), err)
			ev.reportMu.Unlock()
		} else {
			ev.fail(err)
		}
		return
	}
	ev.score(i, out, top)
}

// classify runs img on s and returns its raw output and top 5 classes or,
// with views, their mean probabilities and its top 5.
func (ev *evaluation) classify(s *Session, img image.Image) ([]float32, []Prediction, error) {
	if views := ev.opt.Views; len(views) > 1 {
		if err := s.PreprocessViews(img, views); err != nil {
			return nil, nil, err
		}
		mean, err := s.RunViews(len(views))
		if err != nil {
			return nil, nil, err
		}
		return mean, s.TopKProbs(mean, 5), nil
	}
	if err := s.Preprocess(img); err != nil {
		return nil, nil, err
	}
	out, err := s.Run(nil)
	if err != nil {
		return nil, nil, err
	}
	return out, s.TopK(out, 5), nil
}

// score records sample i's output and top-1 class and counts whether its
// label is the top-1 or among the top-5 classes. A label the model cannot
// output ends the evaluation.
func (ev *evaluation) score(i int, out []float32, top []Prediction) {
	label := ev.set.Label(i)
	if label < 0 || label >= ev.classes {
		ev.fail(fmt.Errorf("%s: label %d outside the model's %d classes", ev.set.Name(i), label, ev.classes))
	}
	if ev.res.Outputs != nil {
		copy(ev.res.Outputs[i*ev.classes:(i+1)*ev.classes], out)
	}
	ev.res.Predictions[i] = top[0].Class
	for k, p := range top {
		if p.Class == label {
			if k == 0 {
				ev.correct.Add(1)
			}
			ev.top5.Add(1)
			break
		}
	}
}

// fail keeps the first error and stops the evaluation.
func (ev *evaluation) fail(err error) {
	ev.errOnce.Do(func() { ev.firstErr = err })
	ev.stop.Store(true)
}

// setWork checks a sample limit and a worker count (both >= 0, 0 meaning
// all samples and GOMAXPROCS workers) and returns how many samples to use
// and how many workers (at most one per sample).
func setWork(set dataset.Set, limit, workers int) (n, w int, err error) {
	if limit < 0 {
		return 0, 0, fmt.Errorf("%w: sample limit %d (want >= 0, 0 for all)", ErrInput, limit)
	}
	if workers < 0 {
		return 0, 0, fmt.Errorf("%w: %d workers (want >= 0, 0 for one per CPU)", ErrInput, workers)
	}
	n = set.Len()
	if limit > 0 && limit < n {
		n = limit
	}
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return n, max(1, min(workers, n)), nil
}

// sampleError names sample i of set in err, once: errors of Set.Image
// name the sample already (dataset.Set's contract), others (preprocessing,
// running) get the name in front.
func sampleError(set dataset.Set, i int, err error) error {
	if name := set.Name(i); !strings.Contains(err.Error(), name) {
		return fmt.Errorf("%s: %w", name, err)
	}
	return err
}

// Agreement compares two evaluations of the same samples.
type Agreement struct {
	Images      int     `json:"images"`       // samples both evaluated
	Top1        float64 `json:"top1"`         // fraction with the same top-1 class
	MaxAbsDiff  float64 `json:"max_abs_diff"` // largest |a-b| over all outputs (when both kept outputs)
	MeanAbsDiff float64 `json:"mean_abs_diff"`
}

// Compare measures how often two evaluations of one set agree on the top-1
// class and, when both kept their outputs, how far the outputs are apart.
func Compare(a, b *EvalResult) Agreement {
	var ag Agreement
	n := min(len(a.Predictions), len(b.Predictions))
	same := 0
	for i := 0; i < n; i++ {
		if a.Predictions[i] < 0 || b.Predictions[i] < 0 {
			continue
		}
		ag.Images++
		if a.Predictions[i] == b.Predictions[i] {
			same++
		}
	}
	if ag.Images > 0 {
		ag.Top1 = float64(same) / float64(ag.Images)
	}
	if len(a.Outputs) == len(b.Outputs) && len(a.Outputs) > 0 {
		var sum float64
		for i, v := range a.Outputs {
			d := math.Abs(float64(v) - float64(b.Outputs[i]))
			ag.MaxAbsDiff = max(ag.MaxAbsDiff, d)
			sum += d
		}
		ag.MeanAbsDiff = sum / float64(len(a.Outputs))
	}
	return ag
}
