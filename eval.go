package edgeresnet

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/edge-resnet/edge-resnet/dataset"
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
	// KeepOutputs stores every raw output in EvalResult.Outputs.
	KeepOutputs bool
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
	res := &EvalResult{Images: n, Predictions: make([]int, n)}
	if opt.KeepOutputs {
		res.Outputs = make([]float32, n*classes)
	}
	var next, done, correct, top5, failed atomic.Int64
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	var stop atomic.Bool
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		stop.Store(true)
	}
	var reportMu sync.Mutex
	for w := 0; w < workers; w++ {
		s, err := m.NewSession(WithThreads(1), WithPrecision(opt.Precision))
		if err != nil {
			stop.Store(true) // the sessions started so far
			wg.Wait()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || stop.Load() || ctx.Err() != nil {
					return
				}
				res.Predictions[i] = -1
				img, err := set.Image(i)
				if err == nil {
					err = s.Preprocess(img)
				}
				var out []float32
				if err == nil {
					out, err = s.Run(nil)
				}
				if err != nil {
					failed.Add(1)
					err = sampleError(set, i, err)
					if opt.OnError != nil {
						reportMu.Lock()
						opt.OnError(set.Name(i), err)
						reportMu.Unlock()
					} else {
						fail(err)
					}
				} else {
					label := set.Label(i)
					if label < 0 || label >= classes {
						fail(fmt.Errorf("%s: label %d outside the model's %d classes", set.Name(i), label, classes))
					}
					if res.Outputs != nil {
						copy(res.Outputs[i*classes:(i+1)*classes], out)
					}
					top := s.TopK(out, 5)
					res.Predictions[i] = top[0].Class
					for k, p := range top {
						if p.Class == label {
							if k == 0 {
								correct.Add(1)
							}
							top5.Add(1)
							break
						}
					}
				}
				d := int(done.Add(1))
				if opt.Progress != nil {
					reportMu.Lock()
					opt.Progress(d)
					reportMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	res.Correct, res.Failed = int(correct.Load()), int(failed.Load())
	if ok := n - res.Failed; ok > 0 {
		res.Top1 = float64(correct.Load()) / float64(ok)
		res.Top5 = float64(top5.Load()) / float64(ok)
	}
	return res, nil
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
