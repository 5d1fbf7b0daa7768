package engine

import (
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// step is one node of the plan (or the conversion of a value to the other
// precision), bound to the kernel that computes it.
type step struct {
	node     int
	op       graph.Op
	in, in2  int // arena offsets (in float32s) of the inputs; in2 is the residual or second operand, -1 if none
	out      int
	inShape  graph.Shape
	outShape graph.Shape
	relu     bool
	clamp    bool    // the node's fused Clip (graph.Node.Clamp), its Relu folded into lo (relu is then false)
	lo, hi   float32 // the bounds of clamp
	int8     bool    // the step computes on uint8 values
	k        kernel
	choice   string // why k: "policy", or the tuning's measurements
}

// kernel is what a step computes, with its data (geometry, packed
// weights). A step runs as parts(workers) parts (1: serially on the
// calling goroutine); run computes part `part` of `parts` with worker
// scratch `part`. Every output element belongs to one part and is
// computed in the same order whatever the split, so results do not depend
// on the thread count.
type kernel interface {
	parts(st *step, workers int) int
	run(e *Exec, st *step, part, parts int)
	describe(p *Plan, st *step) string // how the step computes, for Plan.Steps
	weightBytes() int64                // packed weights it owns
}

// serialKernel is embedded by kernels that never split.
type serialKernel struct{}

func (serialKernel) parts(*step, int) int { return 1 }
func (serialKernel) weightBytes() int64   { return 0 }

// compileFunc builds the kernel of step st (shapes and arena offsets set)
// for node nd of the plan being compiled.
type compileFunc func(c *compiler, st *step, nd *graph.Node) (kernel, error)

// compilers are the step kinds, by precision and op. Each step file
// registers its own.
var compilers = map[Precision]map[graph.Op]compileFunc{}

func registerStep(prec Precision, f compileFunc, ops ...graph.Op) {
	if compilers[prec] == nil {
		compilers[prec] = map[graph.Op]compileFunc{}
	}
	for _, op := range ops {
		compilers[prec][op] = f
	}
}

// compiler is the state of one CompileWith: the plan so far and options.
type compiler struct {
	p       *Plan
	opt     *CompileOptions
	weights int64 // packed weights of the steps so far, in bytes
	timing  *Exec // tuning's (tune.go), or nil
}

// needScratch grows the per-worker scratch to at least n bytes.
func (c *compiler) needScratch(n int) { c.p.scratch = max(c.p.scratch, (n+3)/4) }

// quant returns node j's activation quantization (set on every input of an
// int8 step).
func (c *compiler) quant(j int) graph.QParams { return *c.p.Graph.Nodes[j].Quant }

// compileStep binds node i to the kernel of its op and precision.
func (c *compiler) compileStep(i int) (step, error) {
	p := c.p
	g := p.Graph
	nd := g.Nodes[i]
	st := step{node: i, op: nd.Op, out: p.offsets[i], in2: -1, outShape: nd.Shape, relu: nd.Relu, int8: p.u8[i]}
	st.setClamp(nd)
	st.in = p.valueOff(nd.Inputs[0], st.int8)
	st.inShape = g.Nodes[nd.Inputs[0]].Shape
	if len(nd.Inputs) > 1 && nd.Op != graph.OpConcat {
		st.in2 = p.valueOff(nd.Inputs[1], st.int8)
	}
	prec, what := FP32, "no kernel for this op"
	if st.int8 {
		prec, what = Int8, "no int8 kernel for this op"
	}
	f := compilers[prec][nd.Op]
	if f == nil {
		return step{}, g.Errorf(i, "%s", what)
	}
	k, err := f(c, &st, nd)
	if err != nil {
		return step{}, g.Errorf(i, "%w", err)
	}
	st.k = k
	return st, nil
}

// setClamp takes node nd's fused Clip as one clamp: with a fused ReLU,
// min(max(max(x, 0), Min), Max) is min(max(x, lo), Max) for
// lo = min(max(Min, 0), Max) (also when Min < 0 or Max < 0, NaN passing
// either way), which keeps lo <= hi for the kernels' Activation.
func (st *step) setClamp(nd *graph.Node) {
	c := nd.Clamp
	if c == nil {
		return
	}
	st.clamp, st.lo, st.hi = true, c.Min, c.Max
	if st.relu {
		st.lo, st.relu = min(max(st.lo, 0), st.hi), false
	}
}

// act is the step's activation for the direct kernels (depthwise, grouped).
func (st *step) act() kernels.Activation {
	switch {
	case st.clamp:
		return kernels.Clip(st.lo, st.hi)
	case st.relu:
		return kernels.ReLU()
	}
	return kernels.Activation{}
}

// clampedChunks calls f(i0, i1) over [0, len(out)) and, when the step has
// a clamp, does so in chunks of about 16 KiB (multiples of unit values),
// clamping out[i0:i1] after each while it is in L1.
func (st *step) clampedChunks(ks *kernels.Set, out []float32, unit int, f func(i0, i1 int)) {
	if !st.clamp {
		f(0, len(out))
		return
	}
	chunk := max(1, 4096/unit) * unit
	for i0 := 0; i0 < len(out); i0 += chunk {
		i1 := min(len(out), i0+chunk)
		f(i0, i1)
		ks.Clamp(out[i0:i1], out[i0:i1], st.lo, st.hi)
	}
}

// split returns part w's share [lo, hi) of n items, in units of unit.
func split(n, unit, w, parts int) (lo, hi int) {
	blocks := (n + unit - 1) / unit
	lo = blocks * w / parts * unit
	hi = min(n, blocks*(w+1)/parts*unit)
	return min(lo, n), hi
}

// gridPart splits a grid of rows (output pixels or Winograd tiles, in
// units of the GEMM's MR so that each row keeps its place in the GEMM's
// row tiles) by output-channel panels: by rows, unless there are fewer
// than minBlocks units of rows per part, then by panels (late layers with
// few pixels).
func gridPart(rows, unit, panels, minBlocks, part, parts int) (r0, r1, p0, p1 int) {
	if parts > 1 && rows < minBlocks*unit*parts && panels >= parts {
		p0, p1 = split(panels, 1, part, parts)
		return 0, rows, p0, p1
	}
	r0, r1 = split(rows, unit, part, parts)
	return r0, r1, 0, panels
}

// partsIf is workers when the step is big enough to split, else 1.
func partsIf(big bool, workers int) int {
	if big {
		return workers
	}
	return 1
}
