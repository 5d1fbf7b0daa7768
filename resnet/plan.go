package resnet

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/edge-resnet/edge-resnet/arena"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// Plan is a fused graph compiled for execution: packed weights, kernel
// geometry per step and the arena layout of every activation. It is
// immutable and shared by all sessions of a model.
type Plan struct {
	Graph  *Graph // the fused graph the plan runs
	Layout arena.Layout
	Kernel string // kernel path the weights were packed for

	steps   []step
	offsets []int // per node: offset of its value in the arena, in float32s
	floats  int   // activation part of the arena, in float32s
	scratch int   // per-worker scratch, in float32s
}

type step struct {
	node     int
	op       Op
	in, in2  int // arena offsets of the inputs (in2: residual or second operand, -1 if none)
	out      int
	inShape  Shape
	outShape Shape
	relu     bool

	conv   kernels.ConvGeom
	wino   *kernels.Winograd // set when the conv runs as Winograd (then w is unused)
	w      kernels.PackedB   // conv or dense weights
	bias   []float32
	pool   kernels.PoolGeom
	affine *Affine
	pad    *PadOp
	slice  *SliceOp
	concat []concatPart
}

type concatPart struct {
	off   int
	shape Shape
	at    int // offset along the axis
}

// CompileOptions tune Compile.
type CompileOptions struct {
	// Winograd chooses the algorithm of 3x3 stride-1 convolutions:
	// WinogradAuto (the per-layer policy, see winogradPolicy; the
	// EDGE_RESNET_WINOGRAD environment variable overrides it),
	// WinogradOff (im2col+GEMM), or 2, 4 or 6 to force F(m x m, 3x3).
	Winograd int
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
func Compile(g *Graph) (*Plan, error) { return CompileWith(g, CompileOptions{}) }

// CompileWith is Compile with options.
func CompileWith(g *Graph, opt CompileOptions) (*Plan, error) {
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
	f, err := Fuse(g)
	if err != nil {
		return nil, err
	}
	p := &Plan{Graph: f, Kernel: kernels.PathName()}
	// Lifetimes: node i's value is made at step i and lives until its last
	// consumer runs; the output lives to the end.
	n := len(f.Nodes)
	last := make([]int, n)
	for i := range last {
		last[i] = i
	}
	for i, nd := range f.Nodes {
		for _, in := range nd.Inputs {
			last[in] = max(last[in], i)
		}
	}
	last[f.Output] = n
	ts := make([]arena.Tensor, n)
	for i, nd := range f.Nodes {
		ts[i] = arena.Tensor{Size: int64(nd.Shape.Size()) * 4, First: i, Last: last[i]}
	}
	p.Layout, err = arena.Plan(ts)
	if err != nil {
		return nil, err
	}
	p.floats = int(p.Layout.Total / 4)
	p.offsets = make([]int, n)
	for i := range p.offsets {
		p.offsets[i] = int(p.Layout.Offsets[i] / 4)
	}
	for i := 1; i < n; i++ {
		st, err := p.compileStep(i, &opt)
		if err != nil {
			return nil, err
		}
		p.steps = append(p.steps, st)
	}
	return p, nil
}

func (p *Plan) compileStep(i int, opt *CompileOptions) (step, error) {
	g := p.Graph
	nd := g.Nodes[i]
	st := step{node: i, op: nd.Op, out: p.offsets[i], in2: -1, outShape: nd.Shape, relu: nd.Relu}
	st.in = p.offsets[nd.Inputs[0]]
	st.inShape = g.Nodes[nd.Inputs[0]].Shape
	if len(nd.Inputs) > 1 && nd.Op != OpConcat {
		st.in2 = p.offsets[nd.Inputs[1]]
	}
	x, o := st.inShape, nd.Shape
	switch nd.Op {
	case OpConv:
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
				return step{}, g.errf(i, "%v", err)
			}
			st.wino = wg
			p.scratch = max(p.scratch, wg.Scratch())
			break
		}
		st.w = kernels.PackB(c.FloatWeight(), st.conv.K(), c.Cout)
		p.scratch = max(p.scratch, kernels.ConvScratch(&st.conv))
	case OpDense:
		st.w = kernels.PackB(nd.Dense.FloatWeight(), nd.Dense.In, nd.Dense.Out)
		st.bias = nd.Dense.Bias
	case OpMaxPool, OpAvgPool:
		pl := nd.Pool
		st.pool = kernels.PoolGeom{
			H: x.H, W: x.W, C: x.C, OH: o.H, OW: o.W, KH: pl.KH, KW: pl.KW,
			StrideH: pl.StrideH, StrideW: pl.StrideW, PadTop: pl.Pad.Top, PadLeft: pl.Pad.Left,
			PadBottom: pl.Pad.Bottom, PadRight: pl.Pad.Right, CountIncludePad: pl.CountIncludePad,
		}
	case OpAffine:
		st.affine = nd.Affine
	case OpPad:
		st.pad = nd.Pad
	case OpSlice:
		st.slice = nd.Slice
	case OpConcat:
		at := 0
		for _, in := range nd.Inputs {
			s := g.Nodes[in].Shape
			st.concat = append(st.concat, concatPart{off: p.offsets[in], shape: s, at: at})
			at += [3]int{s.H, s.W, s.C}[nd.Axis]
		}
	case OpRelu, OpAdd, OpGlobalAvgPool, OpFlatten, OpSoftmax:
	default:
		return step{}, g.errf(i, "no kernel for this op")
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
func (p *Plan) InputShape() Shape  { return p.Graph.Input() }
func (p *Plan) OutputShape() Shape { return p.Graph.OutputShape() }

func (p *Plan) String() string {
	return fmt.Sprintf("plan: %d steps, arena %d B (tensors %d B), scratch %d B/worker, kernel %s",
		len(p.steps), p.Layout.Total, p.Layout.Sum, p.ScratchBytes(), p.Kernel)
}

// StepInfo describes one step of a plan for profiles and reports.
type StepInfo struct {
	Node   int    // index in Graph.Nodes
	Name   string // the node's name
	Op     Op
	MACs   int64
	Kernel string // how the step is computed, e.g. "im2col+gemm/generic"
}

// Steps describes the plan's steps in execution order.
func (p *Plan) Steps() []StepInfo {
	out := make([]StepInfo, len(p.steps))
	for i := range p.steps {
		st := &p.steps[i]
		n := p.Graph.Nodes[st.node]
		k := st.op.String()
		switch st.op {
		case OpConv:
			if st.wino != nil {
				k = st.wino.Name() + "/" + p.Kernel
			} else if st.conv.Direct() {
				k = "gemm/" + p.Kernel
			} else {
				k = "im2col+gemm/" + p.Kernel
			}
		case OpDense:
			k = "gemm/" + p.Kernel
		}
		out[i] = StepInfo{Node: st.node, Name: n.Name, Op: st.op, MACs: p.Graph.MACs(st.node), Kernel: k}
	}
	return out
}
