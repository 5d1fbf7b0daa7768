// Package edgeresnet runs ResNet image classifiers fast in pure Go.
//
// A Model is loaded once (from a model image, an ONNX file, or built in
// code) and is immutable and safe to share. A Session belongs to one
// goroutine at a time (a call made while another is running returns
// ErrBusy); it owns a preallocated arena and a worker pool, and
// Session.Run does no heap allocation. Memory is checked against a budget
// before it is allocated (ErrBudget).
//
//	m, err := edgeresnet.Load("resnet50.ern")
//	s, err := m.NewSession(edgeresnet.WithThreads(4))
//	img, err := preprocess.DecodeFile("cat.jpg")
//	top, err := s.Classify(img, 5)
package edgeresnet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/edge-resnet/edge-resnet/internal/engine"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/importer/onnx"
	"github.com/edge-resnet/edge-resnet/kernels"
	"github.com/edge-resnet/edge-resnet/preprocess"
)

// Errors callers may act on; returned errors wrap them.
var (
	ErrCorrupt     = firmware.ErrCorrupt  // damaged or truncated model image or ONNX file
	ErrVersion     = firmware.ErrVersion  // a model image of a newer format than this reader
	ErrTooLarge    = firmware.ErrTooLarge // a model file over firmware.MaxModelBytes, or an ONNX import over its memory budget
	ErrUnsupported = onnx.ErrUnsupported  // an ONNX feature we do not run
	ErrInput       = errors.New("bad input")
	// ErrBudget: the model's memory (arena, packed weights and scratch)
	// would exceed the memory budget (see WithMaxMemory, DefaultMaxMemory).
	ErrBudget = engine.ErrBudget
	// ErrBusy: another goroutine is using the session (see Session).
	ErrBusy = engine.ErrBusy
	// ErrClosed: the session or its model was closed.
	ErrClosed = engine.ErrClosed
	// ErrNonFinite: the model's output holds NaN or ±Inf (non-finite
	// input, or weights that overflow); no prediction is made from it.
	ErrNonFinite = errors.New("non-finite output")
	// ErrKernels: EDGE_RESNET_KERNELS names no kernel path usable here.
	ErrKernels = kernels.ErrPath
)

// Model is a network ready to run: its fused graph, compiled plan and
// metadata (labels, preprocessing). It is safe for concurrent use by
// several sessions.
//
// Close releases the model's file mapping. It waits for runs in progress
// on its sessions; afterwards NewSession and every run of its sessions
// return ErrClosed (the sessions still need their own Close).
type Model struct {
	meta   firmware.Meta
	graph  *graph.Graph   // fused
	file   *firmware.File // set when the weights live in a mapped file
	budget int64          // bytes; <= 0: no limit

	// The compiled plans by precision and batch, each compiled once on
	// first use.
	plansMu sync.Mutex
	plans   map[planKey]*lazyPlan

	// life is held shared by every run of the model's sessions and
	// exclusively by Close, so that the weights are never unmapped under
	// a running session.
	life   sync.RWMutex
	closed atomic.Bool
}

type planKey struct {
	prec    Precision
	batch   int
	kernels *kernels.Set
	tune    Tune
	threads int // when tuning
}

type lazyPlan struct {
	once sync.Once
	plan *engine.Plan
	err  error
}

// LoadOption configures Load, LoadBytes and FromModel.
type LoadOption func(*loadConfig)

type loadConfig struct {
	maxMemory int64
}

// LoadMaxMemory sets the memory budget of the model's compiled plans (the
// arena of one session, packed weights and scratch), checked before they
// are allocated: a plan over it fails with ErrBudget. n <= 0 removes the
// limit. Default: DefaultMaxMemory(). Sessions check their own arenas
// against WithMaxMemory.
func LoadMaxMemory(n int64) LoadOption { return func(c *loadConfig) { c.maxMemory = n } }

func loadOptions(opts []LoadOption) loadConfig {
	c := loadConfig{maxMemory: DefaultMaxMemory()}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// StdinPath is the path that Load reads from standard input ("-").
const StdinPath = "-"

// Load reads a model image (.ern) or an ONNX file (converted in memory with
// default metadata, see ImportONNX), telling them apart by content. Regular
// files are mapped (model images) or read; pipes, devices and "-" (standard
// input) are read through one buffer of at most firmware.MaxModelBytes.
func Load(path string, opts ...LoadOption) (*Model, error) {
	if err := envError(); err != nil {
		return nil, err
	}
	cfg := loadOptions(opts)
	if path == StdinPath {
		data, err := readModel(os.Stdin, "standard input")
		if err != nil {
			return nil, err
		}
		return loadData(data, "standard input", cfg)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is a directory, not a model file", ErrInput, path)
	}
	if !st.Mode().IsRegular() {
		// A pipe or device: read once, sniff the buffer (reopening a pipe
		// would lose what the sniff read).
		data, err := readModel(f, path)
		f.Close()
		if err != nil {
			return nil, err
		}
		return loadData(data, path, cfg)
	}
	if st.Size() == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: %w: empty file, not a model image or ONNX file", path, ErrCorrupt)
	}
	head := make([]byte, 16)
	n, _ := f.ReadAt(head, 0)
	f.Close()
	if firmware.IsImage(head[:n]) {
		file, err := firmware.Open(path)
		if err != nil {
			return nil, err
		}
		m, err := fromModel(file.Model, cfg)
		if err != nil {
			file.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		m.file = file
		return m, nil
	}
	fm, err := ImportONNXFile(path, ImportOptions{})
	if err != nil {
		return nil, err
	}
	m, err := fromModel(fm, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// readModel reads a whole model from a stream, refusing more than
// firmware.MaxModelBytes.
func readModel(r io.Reader, name string) ([]byte, error) {
	data, err := firmware.ReadAll(r, firmware.MaxModelBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, nil
}

// loadData is LoadBytes with a name for errors.
func loadData(data []byte, name string, cfg loadConfig) (*Model, error) {
	var fm *firmware.Model
	var err error
	if len(data) == 0 {
		err = fmt.Errorf("%w: empty, not a model image or ONNX file", ErrCorrupt)
	} else if firmware.IsImage(data) {
		fm, err = firmware.Decode(data)
	} else {
		fm, err = ImportONNX(data, ImportOptions{})
	}
	if err == nil {
		var m *Model
		if m, err = fromModel(fm, cfg); err == nil {
			return m, nil
		}
	}
	if name != "" {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return nil, err
}

// LoadBytes is Load for a model image or ONNX file already in memory. The
// model may keep references into data.
func LoadBytes(data []byte, opts ...LoadOption) (*Model, error) {
	if err := envError(); err != nil {
		return nil, err
	}
	return loadData(data, "", loadOptions(opts))
}

// FromModel prepares a graph with its metadata and compiles the plan of
// its default precision (int8 when the graph has int8 data); the other
// plan is compiled on first use.
func FromModel(fm *firmware.Model, opts ...LoadOption) (*Model, error) {
	if err := envError(); err != nil {
		return nil, err
	}
	return fromModel(fm, loadOptions(opts))
}

func fromModel(fm *firmware.Model, cfg loadConfig) (*Model, error) {
	g, err := graph.Fuse(fm.Graph)
	if err != nil {
		return nil, err
	}
	meta := fm.Meta
	if meta.Output == "" {
		meta.Output = firmware.OutputLogits
	}
	in := g.Input()
	if meta.Preprocess.Height == 0 {
		meta.Preprocess = DefaultPreprocess(in)
	}
	if meta.Preprocess.Height != in.H || meta.Preprocess.Width != in.W || meta.Preprocess.Channels != in.C {
		return nil, fmt.Errorf("%w: preprocessing makes %dx%dx%d inputs but the model takes %v",
			ErrInput, meta.Preprocess.Height, meta.Preprocess.Width, meta.Preprocess.Channels, in)
	}
	if err := meta.Preprocess.Validate(); err != nil {
		return nil, err
	}
	if n := g.OutputShape().Size(); len(meta.Labels) != 0 && len(meta.Labels) != n {
		return nil, fmt.Errorf("%w: %d labels for %d outputs", ErrInput, len(meta.Labels), n)
	}
	m := &Model{meta: meta, graph: g, budget: cfg.maxMemory}
	if _, err := m.PlanFor(PrecisionAuto); err != nil {
		return nil, err
	}
	return m, nil
}

// HasInt8 reports whether the model carries int8 data (a quantized model).
func (m *Model) HasInt8() bool { return engine.HasInt8(m.graph) }

// resolve turns PrecisionAuto into the model's default precision.
func (m *Model) resolve(p Precision) Precision {
	if p == PrecisionAuto {
		if m.HasInt8() {
			return PrecisionInt8
		}
		return PrecisionFP32
	}
	return p
}

// PlanFor is the compiled plan of a precision (PrecisionAuto: int8 when
// the model has int8 data) for the model's own batch, compiled once on
// first use.
func (m *Model) PlanFor(p Precision) (*engine.Plan, error) {
	return m.planFor(p, m.Batch(), kernels.Best(), TuneOff, 1)
}

// Batch is the number of images the model's graph declares (an ONNX input
// of fixed batch 4 gives 4), 1 if it declares none: sessions run that many
// per call unless WithBatch says otherwise.
func (m *Model) Batch() int { return max(m.graph.Batch, 1) }

// planFor is the plan of a precision, batch, kernel path and tuning (at
// threads, when tuning), compiled once.
func (m *Model) planFor(p Precision, batch int, ks *kernels.Set, tune Tune, threads int) (*engine.Plan, error) {
	p = m.resolve(p)
	if p != PrecisionFP32 && p != PrecisionInt8 {
		return nil, fmt.Errorf("%w: precision %d", ErrInput, p)
	}
	m.plansMu.Lock()
	if m.plans == nil {
		m.plans = map[planKey]*lazyPlan{}
	}
	if tune == TuneOff {
		threads = 0 // the policies do not depend on it
	}
	key := planKey{p, batch, ks, tune, threads}
	lp := m.plans[key]
	if lp == nil {
		lp = &lazyPlan{}
		m.plans[key] = lp
	}
	m.plansMu.Unlock()
	// Compiling reads the weights: not while or after Close unmaps them.
	if err := m.use(); err != nil {
		return nil, err
	}
	defer m.done()
	lp.once.Do(func() {
		tn, cache := tuning(tune, threads, ks)
		lp.plan, lp.err = engine.CompileWith(m.graph, engine.CompileOptions{Precision: p, Batch: batch, MaxBytes: m.budget, Kernels: ks, Tune: tn})
		saveTuning(cache)
		if lp.err != nil && p == PrecisionInt8 && !errors.Is(lp.err, ErrBudget) {
			lp.err = fmt.Errorf("%w: %w", ErrInput, lp.err)
		}
	})
	return lp.plan, lp.err
}

// Close releases a mapped model file, after waiting for runs in progress
// on the model's sessions. Afterwards NewSession and the runs of its
// sessions return ErrClosed. Close is safe to call more than once.
func (m *Model) Close() error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.closed.Swap(true) || m.file == nil {
		return nil
	}
	return m.file.Close()
}

// use holds the model open for a run; done releases it.
func (m *Model) use() error {
	if !m.life.TryRLock() {
		return fmt.Errorf("%w: model", ErrClosed) // Close holds or waits for it
	}
	if m.closed.Load() {
		m.life.RUnlock()
		return fmt.Errorf("%w: model", ErrClosed)
	}
	return nil
}

func (m *Model) done() { m.life.RUnlock() }

// Meta is the model's metadata.
func (m *Model) Meta() firmware.Meta { return m.meta }

// Labels are the class names by index (may be empty).
func (m *Model) Labels() []string { return m.meta.Labels }

// Graph is the fused graph the model runs.
func (m *Model) Graph() *graph.Graph { return m.graph }

// Plan is the compiled plan of the default precision (arena layout,
// steps), as Session.Plan for a session made without WithPrecision.
func (m *Model) Plan() *engine.Plan {
	p, _ := m.PlanFor(PrecisionAuto) // compiled by FromModel
	return p
}

// Image returns the model as a model image (graph and metadata) for
// firmware.Write. Its weights may live in the model's file mapping: use it
// before Close (WriteFile checks that).
func (m *Model) Image() *firmware.Model { return &firmware.Model{Graph: m.graph, Meta: m.meta} }

// WriteFile writes the model as a model image to path, atomically (see
// firmware.WriteFile).
func (m *Model) WriteFile(path string) error {
	if err := m.use(); err != nil {
		return err
	}
	defer m.done()
	return firmware.WriteFile(path, m.Image())
}

// DefaultPreprocess guesses preprocessing for a model without metadata:
// torchvision's ImageNet transform for 224x224 color input; otherwise a
// plain resize to the input size with ImageNet statistics (color) or
// 0.5/0.5 (gray).
// Inputs of other than 1 or 3 channels are not images: their spec is the
// zero Spec, and such models take tensors only.
func DefaultPreprocess(in graph.Shape) preprocess.Spec {
	s := preprocess.ImageNet()
	if in.H == 224 && in.W == 224 && in.C == 3 {
		return s
	}
	if in.C != 1 && in.C != 3 {
		// Not an image: the model takes tensors (.npy, RunTensor) only.
		return preprocess.Spec{}
	}
	s.Resize, s.Height, s.Width = 0, in.H, in.W
	if in.C != 3 {
		s.Channels = in.C
		s.Mean, s.Std = make([]float32, in.C), make([]float32, in.C)
		for i := range s.Mean {
			s.Mean[i], s.Std[i] = 0.5, 0.5
		}
	}
	return s
}

// ImportOptions control ONNX conversion.
type ImportOptions struct {
	Height, Width int              // fix symbolic spatial dims (or override)
	Labels        []string         // class names; default: ImageNet's for 1000 classes
	Preprocess    *preprocess.Spec // default: DefaultPreprocess of the input
	Name          string
}

// ImportONNX converts an ONNX ResNet into a model image in memory.
func ImportONNX(data []byte, opt ImportOptions) (*firmware.Model, error) {
	g, info, err := onnx.Import(data, onnx.Options{Height: opt.Height, Width: opt.Width})
	if err != nil {
		return nil, err
	}
	return onnxModel(g, info, opt, "")
}

// ImportONNXFile is ImportONNX on a file; errors name it.
func ImportONNXFile(path string, opt ImportOptions) (*firmware.Model, error) {
	g, info, err := onnx.ImportFile(path, onnx.Options{Height: opt.Height, Width: opt.Width})
	if err != nil {
		return nil, err
	}
	return onnxModel(g, info, opt, path)
}

func onnxModel(g *graph.Graph, info *onnx.Info, opt ImportOptions, path string) (*firmware.Model, error) {
	f, err := graph.Fuse(g)
	if err != nil {
		return nil, err
	}
	meta := firmware.Meta{
		Name:   opt.Name,
		Arch:   "onnx",
		Labels: opt.Labels,
		Output: firmware.OutputLogits,
		Provenance: map[string]string{
			"converter": "edge-resnet " + Version,
			"producer":  info.Producer,
			"opset":     fmt.Sprint(info.Opset),
		},
	}
	if path != "" {
		meta.Provenance["source"] = filepath.Base(path)
		if meta.Name == "" {
			meta.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		}
	}
	if info.OutputIsSoftmax {
		meta.Output = firmware.OutputProbabilities
	}
	if info.InputLayout == onnx.LayoutNHWC {
		meta.InputLayout = firmware.LayoutNHWC
	}
	if opt.Preprocess != nil {
		meta.Preprocess = *opt.Preprocess
	} else {
		meta.Preprocess = DefaultPreprocess(f.Input())
	}
	if meta.Labels == nil && f.OutputShape().Size() == 1000 {
		meta.Labels = ImageNetLabels()
	}
	return &firmware.Model{Graph: f, Meta: meta}, nil
}

// Version is the runtime's version, recorded in converted models.
const Version = "0.1.0"

// MaxLabelsBytes caps a labels file (ImageNet's 1000 names take 10-35 KB).
const MaxLabelsBytes = 16 << 20

// ReadLabelsFile reads class names from a file (see ParseLabels), at most
// MaxLabelsBytes of it, so that a device or a huge file is an error.
func ReadLabelsFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxLabelsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxLabelsBytes {
		return nil, fmt.Errorf("%w: %s: more than %s, not a labels file", ErrInput, path, FormatBytes(MaxLabelsBytes))
	}
	labels, err := ParseLabels(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return labels, nil
}

// ParseLabels reads class names from a text file (one per line) or an
// imagenet_class_index.json-style file ({"0": ["n01440764", "tench"], ...}).
func ParseLabels(data []byte) ([]string, error) {
	trim := bytes.TrimSpace(data)
	if len(trim) > 0 && trim[0] == '{' {
		return parseClassIndexJSON(trim)
	}
	var labels []string
	for _, line := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		labels = append(labels, strings.TrimSpace(line))
	}
	for len(labels) > 0 && labels[len(labels)-1] == "" {
		labels = labels[:len(labels)-1]
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("%w: no labels", ErrInput)
	}
	return labels, nil
}
