package edgeresnet

import (
	"errors"
	"fmt"
	"image"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-resnet/edge-resnet/internal/engine"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/kernels"
	"github.com/edge-resnet/edge-resnet/preprocess"
)

// Session runs a model. It owns its arena and worker threads; Close it when
// done.
//
// A session is for one goroutine at a time. Its calls do not queue: one
// made while another call is running on another goroutine returns ErrBusy
// at once, so misuse never blocks, hangs or mixes two inputs. Outputs and
// predictions are views of session buffers, valid until the next call;
// RunInto copies the output out while the session is held. To serve
// several goroutines, give each its own session (they share the model's
// weights).
//
// After Close, or after the model's Close, every call returns ErrClosed.
type Session struct {
	m       *Model
	plan    *engine.Plan
	prec    Precision // resolved
	exec    *engine.Exec
	scratch preprocess.Scratch
	probs   []float32
	mean    []float32 // RunViews' result
	top     []Prediction

	mu     sync.Mutex // held by the running call (TryLock: never waits)
	closed atomic.Bool
	cpus   []int // the CPUs its threads are bound to (WithPinning), or nil
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
	batch     int
	threads   int
	precision Precision
	maxMemory int64
	memorySet bool
	kernels   string
	tune      Tune
	tuneSet   bool
	pin       bool
}

// WithThreads sets the number of worker threads (default: DefaultThreads).
// Results do not depend on it.
func WithThreads(n int) SessionOption { return func(c *sessionConfig) { c.threads = n } }

// WithBatch sets the most images one run computes (default: the model's
// Batch, 1 unless its graph declares one). A session of batch n holds n
// inputs and outputs in its arena, shares the weights of every other
// session, and runs 1x1 convolutions and dense layers as one GEMM over the
// batch; see RunBatch.
func WithBatch(n int) SessionOption { return func(c *sessionConfig) { c.batch = n } }

// MaxBatch is the most images one session run may compute.
const MaxBatch = 4096

// WithPrecision chooses the arithmetic: PrecisionFP32, PrecisionInt8 (the
// model must have int8 data, see Quantize) or PrecisionAuto (the default:
// int8 when the model has int8 data).
func WithPrecision(p Precision) SessionOption { return func(c *sessionConfig) { c.precision = p } }

// WithMaxMemory sets the session's memory budget: the model's packed
// weights plus this session's arena and per-thread scratch, checked before
// the arena is allocated (ErrBudget). n <= 0 removes the limit. Default:
// the model's budget (LoadMaxMemory, DefaultMaxMemory).
func WithMaxMemory(n int64) SessionOption {
	return func(c *sessionConfig) { c.maxMemory, c.memorySet = n, true }
}

// WithKernels runs the session on the named kernel path (see
// KernelPaths; default: the best one this CPU can run, or the one the
// EDGE_RESNET_KERNELS environment variable names). Sessions on different
// paths run side by side, each on weights packed for its path, with
// identical int8 results and fp32 results within rounding. A path this CPU
// or build cannot run is an error matching both ErrInput and ErrKernels.
func WithKernels(path string) SessionOption { return func(c *sessionConfig) { c.kernels = path } }

// KernelPaths lists the kernel paths this CPU and build can run, best
// first (the names WithKernels takes).
func KernelPaths() []string { return kernels.Available() }

// WithPinning binds each of the session's worker threads to a CPU of its
// own, the fastest this process may use first (the big cores of a
// big.LITTLE board; see DefaultThreads), so that the OS does not move
// them between cores or onto slow ones mid-run. Sessions of one process
// take the CPUs other pinned sessions use least, so a pool of them gets
// cores of its own while there are enough. Linux only; elsewhere
// NewSession refuses it.
func WithPinning() SessionOption { return func(c *sessionConfig) { c.pin = true } }

// DefaultThreads is the worker threads of a session without WithThreads:
// the CPUs Go may use (GOMAXPROCS), or on a big.LITTLE board (CPUs of
// unequal cpu_capacity or clock, Linux) only as many as it has of the
// fastest kind, which a step's split waits on: its slowest part.
func DefaultThreads() int {
	n := runtime.GOMAXPROCS(0)
	_, speed, err := engine.CPUSpeeds()
	if err != nil || len(speed) == 0 || speed[0] == speed[len(speed)-1] {
		return n
	}
	fast := 0
	for fast < len(speed) && speed[fast] == speed[0] {
		fast++
	}
	return max(1, min(n, fast))
}

// MaxThreads is the most worker threads a session may have.
const MaxThreads = 1024

// NewSession allocates a session's arena and starts its workers.
func (m *Model) NewSession(opts ...SessionOption) (*Session, error) {
	if err := envError(); err != nil {
		return nil, err
	}
	cfg := sessionConfig{threads: DefaultThreads(), maxMemory: m.budget}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.threads < 1 || cfg.threads > MaxThreads {
		return nil, fmt.Errorf("%w: %d threads, want 1 to %d", ErrInput, cfg.threads, MaxThreads)
	}
	if cfg.batch == 0 {
		cfg.batch = m.Batch()
	}
	if cfg.batch < 1 || cfg.batch > MaxBatch {
		return nil, fmt.Errorf("%w: batch %d, want 1 to %d", ErrInput, cfg.batch, MaxBatch)
	}
	prec := m.resolve(cfg.precision)
	if prec == PrecisionInt8 && !m.HasInt8() {
		return nil, fmt.Errorf("%w: precision int8: the model has no int8 data (quantize it first)", ErrInput)
	}
	ks := kernels.Best()
	if cfg.kernels != "" {
		var err error
		if ks, err = kernels.ForPath(cfg.kernels); err != nil {
			return nil, fmt.Errorf("%w: WithKernels: %w", ErrInput, err)
		}
	}
	if !cfg.tuneSet {
		var err error
		if cfg.tune, err = defaultTune(); err != nil {
			return nil, err
		}
	}
	if cfg.tune < TuneOff || cfg.tune > TuneMeasure {
		return nil, fmt.Errorf("%w: WithTune(%d)", ErrInput, int(cfg.tune))
	}
	plan, err := m.planFor(prec, cfg.batch, ks, cfg.tune, cfg.threads)
	if err != nil {
		return nil, err
	}
	if err := plan.CheckBudget(cfg.maxMemory, cfg.threads); err != nil {
		return nil, err
	}
	var cpus []int
	if cfg.pin {
		if cpus, err = pinCPUs(cfg.threads); err != nil {
			return nil, err
		}
	}
	e, err := engine.NewExecOn(plan, cfg.threads, cpus)
	if err != nil {
		unpinCPUs(cpus)
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	n := plan.OutputShape().Size()
	return &Session{m: m, plan: plan, prec: prec, exec: e, cpus: cpus, probs: make([]float32, n), mean: make([]float32, n), top: make([]Prediction, n)}, nil
}

// sessionsThatFit is how many of n single-thread sessions of precision p
// fit in the model's memory budget together (they share the weights), at
// least 1: callers that spread work over sessions (Evaluate) run fewer
// rather than exceed it; a single session over budget fails in NewSession.
func (m *Model) sessionsThatFit(p Precision, n int) (int, error) {
	if p = m.resolve(p); p == PrecisionInt8 && !m.HasInt8() {
		return n, nil // NewSession says why
	}
	plan, err := m.PlanFor(p)
	if err != nil {
		return n, err
	}
	return plan.ExecsThatFit(m.budget, n), nil
}

// Close stops the session's workers, after waiting for a call in progress
// on another goroutine. Later calls return ErrClosed; Close may be called
// more than once.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed.Swap(true) {
		s.exec.Close()
		unpinCPUs(s.cpus)
	}
}

// acquire holds the session and its model for one call; release ends it.
func (s *Session) acquire() error {
	if s.closed.Load() {
		return fmt.Errorf("session: %w", ErrClosed)
	}
	if !s.mu.TryLock() {
		if s.closed.Load() {
			return fmt.Errorf("session: %w", ErrClosed)
		}
		return fmt.Errorf("session: %w", ErrBusy)
	}
	if s.closed.Load() {
		s.mu.Unlock()
		return fmt.Errorf("session: %w", ErrClosed)
	}
	if err := s.m.use(); err != nil {
		s.mu.Unlock()
		return err
	}
	return nil
}

func (s *Session) release() {
	s.m.done()
	s.mu.Unlock()
}

// Model is the session's model.
func (s *Session) Model() *Model { return s.m }

// Precision is the arithmetic the session runs (never PrecisionAuto).
func (s *Session) Precision() Precision { return s.prec }

// Plan is the compiled plan the session runs.
func (s *Session) Plan() *engine.Plan { return s.plan }

// Kernels names the kernel path the session runs on.
func (s *Session) Kernels() string { return s.plan.Kernels.Name() }

// Threads is the number of worker threads.
func (s *Session) Threads() int { return s.exec.Threads() }

// ArenaBytes is the memory the session preallocated for activations and
// scratch.
func (s *Session) ArenaBytes() int64 { return s.plan.ArenaBytes(s.exec.Threads()) }

// Input is the session's input buffer (NHWC, preprocessed). Fill it and
// call Run(nil) to avoid a copy. A run reuses its memory for later layers'
// values (the arena plan), so fill it again before every run.
func (s *Session) Input() []float32 { return s.exec.Input() }

// Batch is the most images one run computes (WithBatch).
func (s *Session) Batch() int { return s.plan.Batch }

// Sample is image i's part of Input() (0 <= i < Batch()), for writing a
// batch in place before RunBatch; nil if i is out of range.
func (s *Session) Sample(i int) []float32 {
	n := s.plan.InputShape().Size()
	if i < 0 || i >= s.plan.Batch {
		return nil
	}
	return s.exec.Input()[i*n : (i+1)*n : (i+1)*n]
}

// RunBatch runs the first n images already in Input() (see Sample and
// PreprocessAt) in one pass and returns their n outputs after each other
// (n times the output size), a view valid until the next call.
func (s *Session) RunBatch(n int) ([]float32, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	if n < 1 || n > s.plan.Batch {
		return nil, fmt.Errorf("%w: RunBatch(%d): the session's batch is %d", ErrInput, n, s.plan.Batch)
	}
	out, err := s.exec.RunN(n)
	return s.checked(out, err)
}

// Run runs the model on an NHWC input (nil: on what is already in Input())
// and returns its raw output (logits, or probabilities for models that end
// in a softmax), a view valid until the next call. It allocates nothing.
// The input may hold up to Batch() images after each other; the output
// then holds as many outputs.
// An output holding NaN or ±Inf is an ErrNonFinite error, not a result.
func (s *Session) Run(input []float32) ([]float32, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	return s.run(input)
}

// RunInto is Run that copies the output into dst (len(dst) must be the
// output size, Plan().OutputShape().Size()) before the session is released,
// so that the result stays valid whatever other goroutines do with the
// session afterwards.
func (s *Session) RunInto(dst, input []float32) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	n := s.plan.OutputShape().Size()
	if input != nil {
		n *= max(1, len(input)/max(1, s.plan.InputShape().Size()))
	} else {
		n *= s.plan.Batch
	}
	if len(dst) != n {
		return fmt.Errorf("%w: RunInto: dst has %d values, the output %d", ErrInput, len(dst), n)
	}
	out, err := s.run(input)
	if err != nil {
		return err
	}
	copy(dst, out)
	return nil
}

// run is Run on a held session.
func (s *Session) run(input []float32) ([]float32, error) {
	return s.checked(s.exec.Run(input))
}

// checked classifies a run's error and checks its output.
func (s *Session) checked(out []float32, err error) ([]float32, error) {
	if err != nil {
		if errors.Is(err, ErrBusy) || errors.Is(err, ErrClosed) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if err := checkFinite(out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkFinite rejects outputs with NaN or ±Inf, which would otherwise come
// out as a confident-looking top-1 class or "NaN%".
func checkFinite(out []float32) error {
	for i, v := range out {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: output %d of %d is %v", ErrNonFinite, i, len(out), v)
		}
	}
	return nil
}

// RunNCHW runs an input laid out as PyTorch and ONNX lay it out:
// [N,C,H,W] with N up to Batch(), or [C,H,W] (shape as given by an .npy
// file). The output holds N outputs after each other.
func (s *Session) RunNCHW(shape []int, data []float32) ([]float32, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	in := s.plan.InputShape()
	n, err := checkNCHW(shape, in, s.plan.Batch)
	if err != nil {
		return nil, err
	}
	size := in.Size()
	if len(data) != n*size {
		return nil, fmt.Errorf("%w: tensor shape %v holds %d values, data has %d", ErrInput, shape, n*size, len(data))
	}
	chw := []int{in.C, in.H, in.W}
	for b := range n {
		if err := preprocess.NCHWToNHWC(chw, data[b*size:(b+1)*size], s.Sample(b)); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInput, err)
		}
	}
	return s.checked(s.exec.RunN(n))
}

// NamedOutput is one output of a model, named as its source named it.
type NamedOutput struct {
	Name   string    `json:"name"`
	Values []float32 `json:"values"`
}

// Outputs returns every output of the last run, the first being what the
// run returned, with the samples of a batch after each other; names come
// from the model's source ("output0", "output1"... when it has none). The
// values are views of the session's arena, valid until the next call; nil
// while another call runs or after Close.
func (s *Session) Outputs() []NamedOutput {
	if s.acquire() != nil {
		return nil
	}
	defer s.release()
	g := s.plan.Graph
	out := make([]NamedOutput, 1+len(g.Extra))
	for k := range out {
		out[k] = NamedOutput{Name: fmt.Sprintf("output%d", k), Values: s.exec.Output(k)}
		if k < len(g.OutputNames) && g.OutputNames[k] != "" {
			out[k].Name = g.OutputNames[k]
		}
	}
	return out
}

// InputLayout is the layout tensor inputs (.npy) of the model come in:
// firmware.LayoutNCHW, or firmware.LayoutNHWC for Keras-style graphs.
func (s *Session) InputLayout() string {
	if s.m.meta.InputLayout == firmware.LayoutNHWC {
		return firmware.LayoutNHWC
	}
	return firmware.LayoutNCHW
}

// RunTensor runs a tensor input in the model's own layout (InputLayout):
// [N,C,H,W] or [C,H,W] for NCHW models (RunNCHW), [N,H,W,C] or [H,W,C] for
// NHWC ones, with N up to Batch(). The output holds N outputs after each
// other.
func (s *Session) RunTensor(shape []int, data []float32) ([]float32, error) {
	if s.InputLayout() == firmware.LayoutNCHW {
		return s.RunNCHW(shape, data)
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	in := s.plan.InputShape()
	hwc := []int{in.H, in.W, in.C}
	n := 1
	if len(shape) == 4 {
		n, shape = shape[0], shape[1:]
	}
	if n < 1 || n > s.plan.Batch || !slices.Equal(shape, hwc) {
		return nil, fmt.Errorf("%w: tensor shape %v, want [N,%d,%d,%d] (NHWC) with N from 1 to %d", ErrInput, shape, in.H, in.W, in.C, s.plan.Batch)
	}
	if len(data) != n*in.Size() {
		return nil, fmt.Errorf("%w: %d values for %d inputs of %v", ErrInput, len(data), n, in)
	}
	copy(s.exec.Input(), data)
	return s.checked(s.exec.RunN(n))
}

// checkNCHW checks an NCHW tensor shape against the model's input and
// returns its batch: [N,C,H,W] with 1 <= N <= batch, or [C,H,W].
func checkNCHW(shape []int, in graph.Shape, batch int) (int, error) {
	want := []int{1, in.C, in.H, in.W}
	if len(shape) == 3 {
		want = want[1:]
	} else if len(shape) == 4 && shape[0] >= 1 && shape[0] <= batch {
		want[0] = shape[0]
	}
	if len(shape) != len(want) || !slices.Equal(shape, want) {
		if batch > 1 {
			return 0, fmt.Errorf("%w: tensor shape %v, want [N,%d,%d,%d] with N from 1 to %d", ErrInput, shape, in.C, in.H, in.W, batch)
		}
		return 0, fmt.Errorf("%w: tensor shape %v, want %v", ErrInput, shape, want)
	}
	if len(shape) == 4 {
		return shape[0], nil
	}
	return 1, nil
}

// Probabilities turns a raw output into class probabilities (softmax of
// logits; probabilities pass through), into a session buffer valid until
// the next call. It returns nil when the session is busy or closed.
func (s *Session) Probabilities(out []float32) []float32 {
	if s.acquire() != nil {
		return nil
	}
	defer s.release()
	return s.probabilities(out)
}

func (s *Session) probabilities(out []float32) []float32 {
	if s.m.meta.Output == firmware.OutputProbabilities {
		copy(s.probs, out)
	} else {
		kernels.Softmax(out, s.probs)
	}
	return s.probs
}

// TopK returns the k most probable classes of a raw output, best first,
// ties broken by lower class index. The slice is reused by the next call.
// It returns nil when the session is busy or closed.
func (s *Session) TopK(out []float32, k int) []Prediction {
	if s.acquire() != nil {
		return nil
	}
	defer s.release()
	return s.topK(out, k)
}

func (s *Session) topK(out []float32, k int) []Prediction {
	return s.topOf(s.probabilities(out), k)
}

// topOf is the k most probable classes of the probabilities p.
func (s *Session) topOf(p []float32, k int) []Prediction {
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
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	if err := s.preprocess(0, img); err != nil {
		return nil, err
	}
	out, err := s.checked(s.exec.RunN(1))
	if err != nil {
		return nil, err
	}
	return s.topK(out, k), nil
}

// Preprocess writes img into the session's input buffer as the model's
// metadata says, for a following Run(nil) (as image 0 of a batch).
func (s *Session) Preprocess(img image.Image) error { return s.PreprocessAt(0, img) }

// PreprocessAt writes img as image i of the batch (0 <= i < Batch()), for
// a following RunBatch.
func (s *Session) PreprocessAt(i int, img image.Image) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	return s.preprocess(i, img)
}

func (s *Session) preprocess(i int, img image.Image) error {
	dst := s.Sample(i)
	if dst == nil {
		return fmt.Errorf("%w: image %d of a batch of %d", ErrInput, i, s.plan.Batch)
	}
	if err := s.takesImages(); err != nil {
		return err
	}
	if err := s.m.meta.Preprocess.Apply(img, dst, &s.scratch); err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	return nil
}

// takesImages fails for models whose input is not an image.
func (s *Session) takesImages() error {
	if s.m.meta.Preprocess.Channels == 0 {
		return fmt.Errorf("%w: the model takes tensors (.npy) only: its input %v is not an image", ErrInput, s.plan.InputShape())
	}
	return nil
}

// RunProfile runs the model on what is in Input() and stores each plan
// step's wall time in times (len >= len(Plan().Steps())).
func (s *Session) RunProfile(times []time.Duration) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	out, err := s.exec.RunProfile(nil, times)
	if err != nil {
		return err
	}
	return checkFinite(out)
}
