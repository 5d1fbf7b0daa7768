package engine

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/arena"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// Plan is a fused graph compiled for execution: packed weights, kernel
// geometry per step and the arena layout of every activation. It is
// immutable and shared by all sessions of a model.
type Plan struct {
	Graph     *graph.Graph // the fused graph the plan runs
	Layout    arena.Layout
	Kernels   *kernels.Set // the kernel path the weights were packed for, which runs the plan
	Precision Precision    // FP32, or Int8: nodes with int8 data run in uint8
	Batch     int          // the most images one run computes (Exec.RunBatch)

	steps    []step
	offsets  []int  // per node: offset of its value in the arena, in float32s
	u8       []bool // per node: its value is stored as uint8 (an int8 plan)
	convOffs []int  // per node: offset of its value converted to the other precision, or -1
	results  []int  // offsets of the float32 outputs (Graph.Outputs order)
	floats   int    // activation part of the arena, in float32s
	scratch  int    // per-worker scratch, in float32s
}

// CompileOptions tune Compile.
type CompileOptions struct {
	// Winograd chooses the algorithm of 3x3 stride-1 convolutions:
	// WinogradAuto (the per-layer policy, see winogradPolicy; the
	// EDGE_RESNET_WINOGRAD environment variable overrides it),
	// WinogradOff (im2col+GEMM), or 2, 4 or 6 to force F(m x m, 3x3).
	// Int8 convolutions have one algorithm, the exact integer F(2x2)
	// (kernels.Winograd8): 2, 4 and 6 all force it, WinogradAuto uses
	// winograd8Policy.
	Winograd int

	// Precision FP32 runs everything in float32 (int8 weights are
	// dequantized); Int8 runs in uint8 every node whose output has Quant,
	// whose inputs have Quant and whose op has an int8 form (conv and
	// dense also need int8 weights), converting values where the
	// precision changes. An Int8 plan of a graph without int8 data is an
	// error.
	Precision Precision

	// KeepValues gives every node's value its own arena slot, so that all
	// of them can be read with Exec.Value after Run (calibration), and
	// keeps the nodes of graph.Fuse: Clips are not folded into the layers
	// before them (graph.FuseOptions.Clip), which other plans do.
	KeepValues bool

	// Batch is the most images a run computes (0: the graph's Batch, or 1).
	// Each value gets Batch copies in the arena; weights are shared, and
	// 1x1 convolutions and dense layers run one GEMM over the batch.
	Batch int

	// Kernels is the kernel path to pack weights for and run on (nil:
	// kernels.Best()). Plans on different paths can run side by side.
	Kernels *kernels.Set

	// Tune, when not nil and not TuneOff, chooses the algorithm of the
	// layers that have several (3x3 stride-1 convolutions: im2col+GEMM or
	// Winograd F(2x2)/F(4x4); int8: GEMM or Winograd8) by measured time,
	// where Winograd is WinogradAuto (see Tuning).
	Tune *Tuning

	// MaxBytes, when > 0, is the memory budget of the plan with one
	// executor at one thread: the arena is checked before any weights are
	// packed, and the running total after each step's packing, so a plan
	// over budget fails with ErrBudget having allocated at most one layer's
	// weights beyond it (and never the arena).
	MaxBytes int64

	// clipSteps keeps Clips as steps, as plans ran them before they were
	// folded (BenchmarkClipFolding).
	clipSteps bool
}

const (
	WinogradAuto = 0
	WinogradOff  = -1
)

// EnvWinograd forces the Winograd choice of plans compiled with
// WinogradAuto, for tests and bug reports: "off", "auto", "2", "4" or "6".
const EnvWinograd = "EDGE_RESNET_WINOGRAD"

// winogradFromEnv parses EnvWinograd; unset or empty means auto.
func winogradFromEnv() (int, error) {
	v := strings.TrimSpace(os.Getenv(EnvWinograd))
	switch v {
	case "", "auto":
		return WinogradAuto, nil
	case "off":
		return WinogradOff, nil
	}
	if m, err := strconv.Atoi(v); err == nil && (m == 2 || m == 4 || m == 6) {
		return m, nil
	}
	return 0, fmt.Errorf("resnet: %s=%q: want off, auto, 2, 4 or 6", EnvWinograd, v)
}

// Compile fuses g and builds its plan with the default options, on
// kernels.Best().
func Compile(g *graph.Graph) (*Plan, error) { return CompileWith(g, CompileOptions{}) }

// CompileWith is Compile with options.
func CompileWith(g *graph.Graph, opt CompileOptions) (*Plan, error) {
	if err := opt.resolve(); err != nil {
		return nil, err
	}
	// A plan folds Clips into the layers before them, except when it
	// keeps every value (calibration reads them by the node numbers of
	// graph.Fuse).
	f, err := graph.FuseWith(g, graph.FuseOptions{Clip: !opt.KeepValues && !opt.clipSteps})
	if err != nil {
		return nil, err
	}
	p := &Plan{Graph: f, Kernels: opt.Kernels, Batch: opt.Batch}
	if p.Batch == 0 {
		p.Batch = max(f.Batch, 1)
	}
	if p.Batch > MaxBatch {
		return nil, fmt.Errorf("resnet: batch %d: at most %d", p.Batch, MaxBatch)
	}
	if err := p.choosePrecision(opt.Precision); err != nil {
		return nil, err
	}
	if err := p.layout(opt.KeepValues); err != nil {
		return nil, err
	}
	if opt.MaxBytes > 0 && p.Layout.Total > opt.MaxBytes {
		return nil, p.budgetError(opt.MaxBytes, 0, p.Layout.Total, 0, 1)
	}
	c := &compiler{p: p, opt: &opt}
	if err := c.compileSteps(); err != nil {
		return nil, err
	}
	return p, nil
}

// MaxBatch bounds the batch of a plan.
const MaxBatch = graph.MaxBatch

// resolve checks the options and applies EnvWinograd.
func (opt *CompileOptions) resolve() error {
	switch opt.Winograd {
	case WinogradAuto:
		w, err := winogradFromEnv()
		if err != nil {
			return err
		}
		opt.Winograd = w
	case WinogradOff, 2, 4, 6:
	default:
		return fmt.Errorf("resnet: CompileOptions.Winograd = %d: want WinogradAuto, WinogradOff, 2, 4 or 6", opt.Winograd)
	}
	if opt.Batch < 0 {
		return fmt.Errorf("resnet: CompileOptions.Batch = %d: want >= 0", opt.Batch)
	}
	if opt.Kernels == nil {
		opt.Kernels = kernels.Best()
	}
	return nil
}

// choosePrecision sets the plan's precision and which values it keeps in
// uint8.
func (p *Plan) choosePrecision(prec Precision) error {
	f := p.Graph
	p.u8 = make([]bool, len(f.Nodes))
	switch prec {
	case graph.PrecisionAuto:
		p.Precision = FP32
		if HasInt8(f) {
			p.Precision = Int8
			p.u8 = int8Nodes(f)
		}
	case FP32:
		p.Precision = FP32
	case Int8:
		if !HasInt8(f) {
			return fmt.Errorf("resnet: int8 plan: %w: model has no int8 data", graph.ErrInvalid)
		}
		p.Precision = Int8
		p.u8 = int8Nodes(f)
	default:
		return fmt.Errorf("resnet: CompileOptions.Precision = %d: want auto, fp32 or int8", prec)
	}
	return nil
}

// layout places every value (and every conversion of a value to the other
// precision) in the arena. Times: node i's step runs at 2i, the conversion
// of its value at 2i+1. A value lives until its last consumer runs; the
// output lives to the end, and with keepAll every value does.
func (p *Plan) layout(keepAll bool) error {
	f, n := p.Graph, len(p.Graph.Nodes)
	end := 2 * n
	last := make([]int, n)     // native value
	lastConv := make([]int, n) // converted value, -1 if none
	for i := range last {
		last[i], lastConv[i] = 2*i, -1
	}
	use := func(j, at int, wantU8 bool) {
		if p.u8[j] == wantU8 {
			last[j] = max(last[j], at)
		} else {
			lastConv[j] = max(lastConv[j], at, 2*j+1)
			last[j] = max(last[j], 2*j+1)
		}
	}
	for i, nd := range f.Nodes {
		for _, in := range nd.Inputs {
			use(in, 2*i, p.u8[i])
		}
	}
	for _, o := range f.Outputs() {
		use(o, end, false)
	}
	if keepAll {
		for i := range last {
			last[i] = end
		}
	}
	ts := make([]arena.Tensor, n, 2*n)
	for i, nd := range f.Nodes {
		ts[i] = arena.Tensor{Size: p.valueBytes(nd.Shape, p.u8[i]), First: 2 * i, Last: last[i]}
	}
	convIndex := make([]int, n)
	for i, nd := range f.Nodes {
		convIndex[i] = -1
		if lastConv[i] >= 0 {
			convIndex[i] = len(ts)
			ts = append(ts, arena.Tensor{Size: p.valueBytes(nd.Shape, !p.u8[i]), First: 2*i + 1, Last: lastConv[i]})
		}
	}
	return p.place(ts, convIndex)
}

// valueBytes is the arena size of a batch of values of shape s.
func (p *Plan) valueBytes(s graph.Shape, u8 bool) int64 {
	b := int64(p.Batch) * int64(s.Size())
	if !u8 {
		b *= 4
	}
	return b
}

// place runs the arena planner and records each value's offset.
func (p *Plan) place(ts []arena.Tensor, convIndex []int) error {
	var err error
	p.Layout, err = arena.Plan(ts)
	if err != nil {
		return err
	}
	p.floats = int((p.Layout.Total + 3) / 4)
	p.offsets = make([]int, len(convIndex))
	p.convOffs = make([]int, len(convIndex))
	for i := range p.offsets {
		p.offsets[i] = int(p.Layout.Offsets[i] / 4)
		p.convOffs[i] = -1
		if c := convIndex[i]; c >= 0 {
			p.convOffs[i] = int(p.Layout.Offsets[c] / 4)
		}
	}
	for _, o := range p.Graph.Outputs() {
		p.results = append(p.results, p.valueOff(o, false))
	}
	return nil
}

// compileSteps binds every node to its kernel, inserting conversions
// where precision changes, and checks the weights against the budget as
// they are packed.
func (c *compiler) compileSteps() error {
	p, opt, n := c.p, c.opt, len(c.p.Graph.Nodes)
	defer c.closeTiming()
	// step is large: growing the slice by append cost more than compiling
	// an 80,000-node chain itself.
	p.steps = make([]step, 0, n)
	for i := 0; i < n; i++ {
		if i > 0 {
			st, err := c.compileStep(i)
			if err != nil {
				return err
			}
			p.steps = append(p.steps, st)
			c.weights += st.k.weightBytes()
			if opt.MaxBytes > 0 && c.weights+p.ArenaBytes(1) > opt.MaxBytes {
				return p.budgetError(opt.MaxBytes, c.weights, 4*int64(p.floats), p.ScratchBytes(), 1)
			}
		}
		if p.convOffs[i] >= 0 {
			p.steps = append(p.steps, p.convertStep(i))
		}
	}
	return nil
}

// valueOff is the arena offset of node j's value in the wanted precision.
func (p *Plan) valueOff(j int, u8 bool) int {
	if p.u8[j] == u8 {
		return p.offsets[j]
	}
	return p.convOffs[j]
}

// ArenaBytes is the memory a session with the given number of worker
// threads needs for activations and scratch.
func (p *Plan) ArenaBytes(threads int) int64 {
	return 4 * int64(p.floats+max(threads, 1)*p.scratch)
}

// ScratchBytes is the per-worker scratch (im2col or Winograd blocks).
func (p *Plan) ScratchBytes() int64 { return 4 * int64(p.scratch) }

// InputShape and OutputShape are the shapes Run takes and returns.
func (p *Plan) InputShape() graph.Shape  { return p.Graph.Input() }
func (p *Plan) OutputShape() graph.Shape { return p.Graph.OutputShape() }

func (p *Plan) String() string {
	return fmt.Sprintf("plan: %d steps, arena %d B (tensors %d B), scratch %d B/worker, kernel %s",
		len(p.steps), p.Layout.Total, p.Layout.Sum, p.ScratchBytes(), p.Kernels.Name())
}

// StepInfo describes one step of a plan for profiles and reports.
type StepInfo struct {
	Node   int    // index in graph.Graph.Nodes
	Name   string // the node's name
	Op     graph.Op
	MACs   int64
	Kernel string // how the step is computed, e.g. "im2col+gemm/generic"
	Int8   bool   // the step computes on uint8 values

	// Choice says why Kernel, for a step with several algorithms:
	// "policy", or "measured: ..." / "cached: ..." with each candidate's
	// median time (CompileOptions.Tune); empty for the others.
	Choice string

	// Winograd8 reports an int8 conv step that runs Winograd8, and
	// Winograd8Eligible one that could (3x3 stride 1, exact in int32).
	Winograd8, Winograd8Eligible bool
}

// Steps describes the plan's steps in execution order.
func (p *Plan) Steps() []StepInfo {
	out := make([]StepInfo, len(p.steps))
	for i := range p.steps {
		st := &p.steps[i]
		macs := p.Graph.MACs(st.node)
		if st.op == graph.OpQuantize || st.op == graph.OpDequantize {
			macs = 0
		}
		out[i] = StepInfo{Node: st.node, Name: p.Graph.Nodes[st.node].Name, Op: st.op, MACs: macs,
			Kernel: st.k.describe(p, st), Int8: st.int8, Choice: st.choice}
		switch k := st.k.(type) {
		case *winoConv8:
			out[i].Winograd8, out[i].Winograd8Eligible = true, true
		case *gemmConv8:
			out[i].Winograd8Eligible = k.winograd8Eligible()
		}
	}
	return out
}
