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
	Kernel    string    // kernel path the weights were packed for
	Precision Precision // FP32, or Int8: nodes with int8 data run in uint8

	steps    []step
	offsets  []int  // per node: offset of its value in the arena, in float32s
	u8       []bool // per node: its value is stored as uint8 (an int8 plan)
	convOffs []int  // per node: offset of its value converted to the other precision, or -1
	result   int    // offset of the float32 output
	floats   int    // activation part of the arena, in float32s
	scratch  int    // per-worker scratch, in float32s
}

type step struct {
	node     int
	op       graph.Op
	in, in2  int // arena offsets of the inputs (in2: residual or second operand, -1 if none)
	out      int
	inShape  graph.Shape
	outShape graph.Shape
	relu     bool

	conv   kernels.ConvGeom
	wino   *kernels.Winograd // set when the conv runs as Winograd (then w is unused)
	w      kernels.PackedB   // conv or dense weights
	bias   []float32
	pool   kernels.PoolGeom
	affine *graph.Affine
	pad    *graph.PadOp
	slice  *graph.SliceOp
	concat []concatPart

	// int8 steps (int8 set): conv and dense run as Conv8 with w8 and the
	// requantization rq (Res set per run); add8 for an unfused Add; q for
	// conversions (OpQuantize, OpDequantize), uint8 padding and the input
	// of GlobalAvgPool, whose output parameters are qOut.
	int8 bool
	w8   kernels.PackedB8
	rq   kernels.Requant
	add8 kernels.Add8Params
	q    graph.QParams
	qOut graph.QParams

	wino8 *kernels.Winograd8 // set when an int8 conv runs as Winograd8 (then w8 is unused)
}

type concatPart struct {
	off   int
	shape graph.Shape
	at    int // offset along the axis
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
	// of them can be read with Exec.Value after Run (calibration).
	KeepValues bool

	// MaxBytes, when > 0, is the memory budget of the plan with one
	// executor at one thread: the arena is checked before any weights are
	// packed, and the running total after each step's packing, so a plan
	// over budget fails with ErrBudget having allocated at most one layer's
	// weights beyond it (and never the arena).
	MaxBytes int64
}

// Precision is the arithmetic of a plan.
type Precision uint8

const (
	FP32 Precision = iota
	Int8
)

func (p Precision) String() string {
	if p == Int8 {
		return "int8"
	}
	return "fp32"
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

// Compile fuses g and builds its plan for the GEMM kernel selected now,
// with the default options.
func Compile(g *graph.Graph) (*Plan, error) { return CompileWith(g, CompileOptions{}) }

// CompileWith is Compile with options.
func CompileWith(g *graph.Graph, opt CompileOptions) (*Plan, error) {
	switch opt.Winograd {
	case WinogradAuto:
		w, err := winogradFromEnv()
		if err != nil {
			return nil, err
		}
		opt.Winograd = w
	case WinogradOff, 2, 4, 6:
	default:
		return nil, fmt.Errorf("resnet: CompileOptions.Winograd = %d: want WinogradAuto, WinogradOff, 2, 4 or 6", opt.Winograd)
	}
	f, err := graph.Fuse(g)
	if err != nil {
		return nil, err
	}
	p := &Plan{Graph: f, Kernel: kernels.PathName(), Precision: opt.Precision}
	n := len(f.Nodes)
	p.u8 = make([]bool, n)
	switch opt.Precision {
	case FP32:
	case Int8:
		if !HasInt8(f) {
			return nil, fmt.Errorf("resnet: int8 plan: %w: model has no int8 data", graph.ErrInvalid)
		}
		p.u8 = int8Nodes(f)
	default:
		return nil, fmt.Errorf("resnet: CompileOptions.Precision = %d: want FP32 or Int8", opt.Precision)
	}
	// Times: node i's step runs at 2i, the conversion of its value to the
	// other precision (when a consumer needs it) at 2i+1. A value lives
	// until its last consumer runs; the output lives to the end.
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
	use(f.Output, end, false)
	var ts []arena.Tensor
	convIndex := make([]int, n)
	for i, nd := range f.Nodes {
		b := int64(nd.Shape.Size())
		if !p.u8[i] {
			b *= 4
		}
		l := last[i]
		if opt.KeepValues {
			l = end
		}
		ts = append(ts, arena.Tensor{Size: b, First: 2 * i, Last: l})
	}
	for i, nd := range f.Nodes {
		convIndex[i] = -1
		if lastConv[i] < 0 {
			continue
		}
		b := int64(nd.Shape.Size())
		if p.u8[i] {
			b *= 4 // converted to float32
		}
		convIndex[i] = len(ts)
		ts = append(ts, arena.Tensor{Size: b, First: 2*i + 1, Last: lastConv[i]})
	}
	p.Layout, err = arena.Plan(ts)
	if err != nil {
		return nil, err
	}
	p.floats = int((p.Layout.Total + 3) / 4)
	p.offsets = make([]int, n)
	p.convOffs = make([]int, n)
	for i := range p.offsets {
		p.offsets[i] = int(p.Layout.Offsets[i] / 4)
		p.convOffs[i] = -1
		if c := convIndex[i]; c >= 0 {
			p.convOffs[i] = int(p.Layout.Offsets[c] / 4)
		}
	}
	p.result = p.valueOff(f.Output, false)
	if opt.MaxBytes > 0 && p.Layout.Total > opt.MaxBytes {
		return nil, p.budgetError(opt.MaxBytes, 0, p.Layout.Total, 0, 1)
	}
	var weights int64
	// step is large (~700 B): growing the slice by append cost more than
	// compiling an 80,000-node chain itself.
	p.steps = make([]step, 0, n)
	for i := 0; i < n; i++ {
		if i > 0 {
			st, err := p.compileStep(i, &opt)
			if err != nil {
				return nil, err
			}
			p.steps = append(p.steps, st)
			weights += st.weightBytes()
			if opt.MaxBytes > 0 && weights+p.ArenaBytes(1) > opt.MaxBytes {
				return nil, p.budgetError(opt.MaxBytes, weights, 4*int64(p.floats), p.ScratchBytes(), 1)
			}
		}
		if p.convOffs[i] >= 0 {
			p.steps = append(p.steps, p.convertStep(i))
		}
	}
	return p, nil
}

// valueOff is the arena offset of node j's value in the wanted precision.
func (p *Plan) valueOff(j int, u8 bool) int {
	if p.u8[j] == u8 {
		return p.offsets[j]
	}
	return p.convOffs[j]
}

func (p *Plan) compileStep(i int, opt *CompileOptions) (step, error) {
	g := p.Graph
	nd := g.Nodes[i]
	st := step{node: i, op: nd.Op, out: p.offsets[i], in2: -1, outShape: nd.Shape, relu: nd.Relu, int8: p.u8[i]}
	st.in = p.valueOff(nd.Inputs[0], st.int8)
	st.inShape = g.Nodes[nd.Inputs[0]].Shape
	if len(nd.Inputs) > 1 && nd.Op != graph.OpConcat {
		st.in2 = p.valueOff(nd.Inputs[1], st.int8)
	}
	if st.int8 {
		return p.compileStep8(st, opt)
	}
	x, o := st.inShape, nd.Shape
	switch nd.Op {
	case graph.OpConv:
		c := nd.Conv
		st.conv = kernels.ConvGeom{
			H: x.H, W: x.W, C: x.C, OH: o.H, OW: o.W, Cout: o.C,
			KH: c.KH, KW: c.KW, StrideH: c.StrideH, StrideW: c.StrideW,
			DilH: c.DilH, DilW: c.DilW, PadTop: c.Pad.Top, PadLeft: c.Pad.Left,
		}
		st.bias = c.Bias
		if m := winogradChoice(&st.conv, opt.Winograd); m > 0 {
			wg, err := kernels.NewWinograd(&st.conv, m, c.FloatWeight())
			if err != nil {
				return step{}, g.Errorf(i, "%v", err)
			}
			st.wino = wg
			p.scratch = max(p.scratch, wg.Scratch())
			break
		}
		st.w = kernels.PackB(c.FloatWeight(), st.conv.K(), c.Cout)
		p.scratch = max(p.scratch, kernels.ConvScratch(&st.conv))
	case graph.OpDense:
		st.w = kernels.PackB(nd.Dense.FloatWeight(), nd.Dense.In, nd.Dense.Out)
		st.bias = nd.Dense.Bias
	case graph.OpMaxPool, graph.OpAvgPool:
		pl := nd.Pool
		st.pool = kernels.PoolGeom{
			H: x.H, W: x.W, C: x.C, OH: o.H, OW: o.W, KH: pl.KH, KW: pl.KW,
			StrideH: pl.StrideH, StrideW: pl.StrideW, PadTop: pl.Pad.Top, PadLeft: pl.Pad.Left,
			PadBottom: pl.Pad.Bottom, PadRight: pl.Pad.Right, CountIncludePad: pl.CountIncludePad,
		}
	case graph.OpAffine:
		st.affine = nd.Affine
	case graph.OpPad:
		st.pad = nd.Pad
	case graph.OpSlice:
		st.slice = nd.Slice
	case graph.OpConcat:
		at := 0
		for _, in := range nd.Inputs {
			s := g.Nodes[in].Shape
			st.concat = append(st.concat, concatPart{off: p.valueOff(in, st.int8), shape: s, at: at})
			at += [3]int{s.H, s.W, s.C}[nd.Axis]
		}
	case graph.OpRelu, graph.OpAdd, graph.OpGlobalAvgPool, graph.OpFlatten, graph.OpSoftmax:
	default:
		return step{}, g.Errorf(i, "no kernel for this op")
	}
	return st, nil
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
		len(p.steps), p.Layout.Total, p.Layout.Sum, p.ScratchBytes(), p.Kernel)
}

// StepInfo describes one step of a plan for profiles and reports.
type StepInfo struct {
	Node   int    // index in graph.Graph.Nodes
	Name   string // the node's name
	Op     graph.Op
	MACs   int64
	Kernel string // how the step is computed, e.g. "im2col+gemm/generic"
	Int8   bool   // the step computes on uint8 values

	// Winograd8 reports an int8 conv step that runs Winograd8, and
	// Winograd8Eligible one that could (3x3 stride 1, exact in int32).
	Winograd8, Winograd8Eligible bool
}

// Steps describes the plan's steps in execution order.
func (p *Plan) Steps() []StepInfo {
	out := make([]StepInfo, len(p.steps))
	for i := range p.steps {
		st := &p.steps[i]
		n := p.Graph.Nodes[st.node]
		k := st.op.String()
		switch st.op {
		case graph.OpConv:
			if st.int8 {
				if st.wino8 != nil {
					k = "int8 " + st.wino8.Name() + "/" + st.wino8.Impl()
				} else if st.conv.Direct8() {
					k = "int8 gemm/" + st.w8.Kernel()
				} else {
					k = "int8 im2col+gemm/" + st.w8.Kernel()
				}
			} else if st.wino != nil {
				k = st.wino.Name() + "/" + p.Kernel
			} else if st.conv.Direct() {
				k = "gemm/" + p.Kernel
			} else {
				k = "im2col+gemm/" + p.Kernel
			}
		case graph.OpDense:
			k = "gemm/" + p.Kernel
			if st.int8 {
				k = "int8 gemm/" + st.w8.Kernel() // the kernel chosen for these weights (PackB8)
			}
		default:
			if st.int8 {
				k = "int8 " + k
			}
		}
		macs := p.Graph.MACs(st.node)
		if st.op == graph.OpQuantize || st.op == graph.OpDequantize {
			macs = 0
		}
		out[i] = StepInfo{Node: st.node, Name: n.Name, Op: st.op, MACs: macs, Kernel: k, Int8: st.int8,
			Winograd8: st.wino8 != nil, Winograd8Eligible: st.op == graph.OpConv && st.int8 && kernels.Winograd8Applies(&st.conv)}
	}
	return out
}
