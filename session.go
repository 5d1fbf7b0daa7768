package edgeresnet

import (
	"fmt"
	"image"
	"runtime"
	"time"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/kernels"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// Session runs a model. It owns its arena and worker threads; use it from
// one goroutine at a time, and Close it when done.
type Session struct {
	m       *Model
	plan    *resnet.Plan
	prec    Precision // resolved
	exec    *resnet.Exec
	scratch preprocess.Scratch
	probs   []float32
	top     []Prediction
}

// Prediction is one class of a classification.
type Prediction struct {
	Class int     `json:"class"`
	Label string  `json:"label,omitempty"`
	Prob  float32 `json:"prob"`
}

// SessionOption configures NewSession.
type SessionOption func(*sessionConfig)

type sessionConfig struct {
	threads   int
	precision Precision
}

// WithThreads sets the number of worker threads (default: the number of
// CPUs Go may use, GOMAXPROCS). Results do not depend on it.
func WithThreads(n int) SessionOption { return func(c *sessionConfig) { c.threads = n } }

// WithPrecision chooses the arithmetic: PrecisionFP32, PrecisionInt8 (the
// model must have int8 data, see Quantize) or PrecisionAuto (the default:
// int8 when the model has int8 data).
func WithPrecision(p Precision) SessionOption { return func(c *sessionConfig) { c.precision = p } }

// NewSession allocates a session's arena and starts its workers.
func (m *Model) NewSession(opts ...SessionOption) (*Session, error) {
	cfg := sessionConfig{threads: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.threads < 1 || cfg.threads > 1024 {
		return nil, fmt.Errorf("%w: %d threads", ErrInput, cfg.threads)
	}
	prec := m.resolve(cfg.precision)
	if prec == PrecisionInt8 && !m.HasInt8() {
		return nil, fmt.Errorf("%w: precision int8: the model has no int8 data (quantize it first)", ErrInput)
	}
	plan, err := m.PlanFor(prec)
	if err != nil {
		return nil, err
	}
	e, err := resnet.NewExec(plan, cfg.threads)
	if err != nil {
		return nil, err
	}
	n := plan.OutputShape().Size()
	return &Session{m: m, plan: plan, prec: prec, exec: e, probs: make([]float32, n), top: make([]Prediction, n)}, nil
}

// Close stops the session's workers.
func (s *Session) Close() { s.exec.Close() }

// Model is the session's model.
func (s *Session) Model() *Model { return s.m }

// Precision is the arithmetic the session runs (never PrecisionAuto).
func (s *Session) Precision() Precision { return s.prec }

// Plan is the compiled plan the session runs.
func (s *Session) Plan() *resnet.Plan { return s.plan }

// Threads is the number of worker threads.
func (s *Session) Threads() int { return s.exec.Threads() }

// ArenaBytes is the memory the session preallocated for activations and
// scratch.
func (s *Session) ArenaBytes() int64 { return s.plan.ArenaBytes(s.exec.Threads()) }

// Input is the session's input buffer (NHWC, preprocessed). Fill it and
// call Run(nil) to avoid a copy.
func (s *Session) Input() []float32 { return s.exec.Input() }

// Run runs the model on an NHWC input (nil: on what is already in Input())
// and returns its raw output (logits, or probabilities for models that end
// in a softmax), a view valid until the next call. It allocates nothing.
func (s *Session) Run(input []float32) ([]float32, error) {
	out, err := s.exec.Run(input)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	return out, nil
}

// RunNCHW runs an input laid out as PyTorch and ONNX lay it out:
// [1,C,H,W] or [C,H,W] (shape as given by an .npy file).
func (s *Session) RunNCHW(shape []int, data []float32) ([]float32, error) {
	in := s.plan.InputShape()
	if err := checkNCHW(shape, in); err != nil {
		return nil, err
	}
	if err := preprocess.NCHWToNHWC(shape, data, s.exec.Input()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	return s.Run(nil)
}

func checkNCHW(shape []int, in resnet.Shape) error {
	want := []int{1, in.C, in.H, in.W}
	if len(shape) == 3 {
		want = want[1:]
	}
	if len(shape) != len(want) {
		return fmt.Errorf("%w: tensor shape %v, want %v", ErrInput, shape, want)
	}
	for i := range want {
		if shape[i] != want[i] {
			return fmt.Errorf("%w: tensor shape %v, want %v", ErrInput, shape, want)
		}
	}
	return nil
}

// Probabilities turns a raw output into class probabilities (softmax of
// logits; probabilities pass through), into a session buffer valid until
// the next call.
func (s *Session) Probabilities(out []float32) []float32 {
	if s.m.meta.Output == firmware.OutputProbabilities {
		copy(s.probs, out)
	} else {
		kernels.Softmax(out, s.probs)
	}
	return s.probs
}

// TopK returns the k most probable classes of a raw output, best first,
// ties broken by lower class index. The slice is reused by the next call.
func (s *Session) TopK(out []float32, k int) []Prediction {
	p := s.Probabilities(out)
	k = min(max(k, 1), len(p))
	top := s.top[:0]
	for c, v := range p {
		// Insertion into a k-long sorted list: k is small.
		if len(top) == k && !(v > top[k-1].Prob) {
			continue
		}
		if len(top) < k {
			top = append(top, Prediction{})
		}
		j := len(top) - 1
		for j > 0 && v > top[j-1].Prob {
			top[j] = top[j-1]
			j--
		}
		top[j] = Prediction{Class: c, Prob: v, Label: s.label(c)}
	}
	return top
}

func (s *Session) label(c int) string {
	if c < len(s.m.meta.Labels) {
		return s.m.meta.Labels[c]
	}
	return ""
}

// Classify preprocesses an image as the model's metadata says, runs the
// model and returns the top k classes (a slice reused by the next call).
func (s *Session) Classify(img image.Image, k int) ([]Prediction, error) {
	if err := s.m.meta.Preprocess.Apply(img, s.exec.Input(), &s.scratch); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	out, err := s.Run(nil)
	if err != nil {
		return nil, err
	}
	return s.TopK(out, k), nil
}

// Preprocess writes img into the session's input buffer as the model's
// metadata says, for a following Run(nil).
func (s *Session) Preprocess(img image.Image) error {
	if err := s.m.meta.Preprocess.Apply(img, s.exec.Input(), &s.scratch); err != nil {
		return fmt.Errorf("%w: %v", ErrInput, err)
	}
	return nil
}

// RunProfile runs the model on what is in Input() and stores each plan
// step's wall time in times (len >= len(Plan().Steps())).
func (s *Session) RunProfile(times []time.Duration) error {
	_, err := s.exec.RunProfile(nil, times)
	return err
}
