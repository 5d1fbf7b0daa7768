package serve

import (
	"context"
	"fmt"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/firmware"
)

// runner runs a parsed request (a job) on a model. The request path is
// handler (admission, body, parsing) -> runner -> sessions: the runner is
// the session pool, or with Options.MaxBatch > 1 the batcher wrapping
// it, which merges the samples of several jobs into one RunBatch and
// splits the outputs back.
type runner interface {
	run(ctx context.Context, j *job) error
	close()
}

// served is one model as the server exposes it.
type served struct {
	version
	name         string
	modelVersion string // the served version's name, as requests give it
	meta         modelMetadata
	in           tensorInfo
	outs         []tensorInfo
	classes      int  // size of the first output (what top_k ranks)
	images       bool // the model has an image preprocessing spec
	pool         *pool
	runner       runner
}

// tensorInfo is one input or output: its name and the shape of one
// sample (the batch dimension excluded).
type tensorInfo struct {
	name  string
	shape []int
	size  int
}

type modelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []metadataTensor `json:"inputs"`
	Outputs  []metadataTensor `json:"outputs"`
}

type metadataTensor struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
}

func newServed(nm Named, opt Options, mm *modelMetrics) (*served, error) {
	p, err := newPool(nm.Model, opt, mm)
	if err != nil {
		return nil, err
	}
	s0 := p.all[0]
	g := s0.Plan().Graph
	in := g.Input()
	m := &served{version: version{closed: make(chan struct{})}, name: nm.Name, modelVersion: nm.version(), pool: p, runner: p, images: nm.Model.Meta().Preprocess.Channels != 0}
	m.in = tensorInfo{name: g.Nodes[0].Name, shape: []int{in.C, in.H, in.W}, size: in.Size()}
	if m.in.name == "" {
		m.in.name = "input"
	}
	if s0.InputLayout() == firmware.LayoutNHWC {
		m.in.shape = []int{in.H, in.W, in.C}
	}
	for k, node := range g.Outputs() {
		sh := g.Nodes[node].Shape
		t := tensorInfo{name: fmt.Sprintf("output%d", k), shape: []int{sh.H, sh.W, sh.C}, size: sh.Size()}
		if k < len(g.OutputNames) && g.OutputNames[k] != "" {
			t.name = g.OutputNames[k]
		}
		if sh.H == 1 && sh.W == 1 { // a vector: [N, C], as PyTorch gives it
			t.shape = []int{sh.C}
		}
		m.outs = append(m.outs, t)
	}
	m.classes = m.outs[0].size
	if opt.MaxBatch > 1 {
		m.runner = newBatcher(p, opt)
	}
	m.meta = modelMetadata{Name: nm.Name, Platform: "edge-resnet", Inputs: []metadataTensor{meta(m.in)}}
	for _, o := range m.outs {
		m.meta.Outputs = append(m.meta.Outputs, meta(o))
	}
	return m, nil
}

// meta is t's $metadata_tensor: FP32, the batch dimension variable (-1).
func meta(t tensorInfo) metadataTensor {
	return metadataTensor{Name: t.name, Datatype: "FP32", Shape: append([]int{-1}, t.shape...)}
}

// pool is a model's sessions.
type pool struct {
	idle    chan *edgeresnet.Session // sessions free to run
	all     []*edgeresnet.Session
	metrics *modelMetrics
}

func newPool(m *edgeresnet.Model, opt Options, mm *modelMetrics) (*pool, error) {
	p := &pool{idle: make(chan *edgeresnet.Session, opt.Sessions), metrics: mm}
	opts := append(append([]edgeresnet.SessionOption(nil), opt.SessionOptions...), edgeresnet.WithThreads(opt.ThreadsPerSession))
	if opt.MaxBatch > 1 {
		opts = append(opts, edgeresnet.WithBatch(opt.MaxBatch))
	}
	for range opt.Sessions {
		s, err := m.NewSession(opts...)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("session %d of %d: %w", len(p.all)+1, opt.Sessions, err)
		}
		p.all = append(p.all, s)
		p.idle <- s
	}
	return p, nil
}

// run waits for a free session (until ctx ends) and runs j on it.
func (p *pool) run(ctx context.Context, j *job) error {
	p.metrics.queued.Inc()
	select {
	case s := <-p.idle:
		p.metrics.queued.Dec()
		defer func() { p.idle <- s }()
		return execute(s, j, p.metrics.batch.Observe)
	case <-ctx.Done():
		p.metrics.queued.Dec()
		return waitError(ctx, fmt.Sprintf("a free session (all %d busy)", cap(p.idle)))
	}
}

// close closes the sessions, each after its run in progress.
func (p *pool) close() {
	for _, s := range p.all {
		s.Close()
	}
}
