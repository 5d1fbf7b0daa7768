package quant

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/internal/engine"
)

// QuantizeOptions control QuantizeGraph.
type QuantizeOptions struct {
	Method   Method
	KeepFP32 []int // indices of conv and dense nodes to keep in float32
	Workers  int   // parallel executors (default GOMAXPROCS)
	// WeightBits is 8 (the default, also for 0) or 7: weights in [-63, 63],
	// which x86 CPUs without VNNI multiply faster (see WeightsBits).
	WeightBits int
	// Progress is called after each calibration input of each of the two
	// passes (done counts to 2n), from one goroutine at a time.
	Progress func(done, total int)
	// MaxBytes, when > 0, bounds the calibration plan (every value kept)
	// with its executors: fewer workers run when not all fit, and none
	// fitting is an ErrBudget error, before anything is allocated.
	MaxBytes int64
}

// LayerQuant is what QuantizeGraph decided for one node.
type LayerQuant struct {
	Node             int
	Quant            *graph.QParams // nil: the value stays float32
	Lo, Hi           float64        // the range chosen by the method (after sharing)
	ObservedMin      float64
	ObservedMax      float64
	WeightScaleMin   float32 // int8 weights: the smallest and largest per-channel scale
	WeightScaleMax   float32
	Int8             bool // the node runs in int8 (its inputs and output are uint8)
	SharedWith       int  // another node whose parameters this one shares, or -1
	WeightsQuantized bool
}

// InputFunc writes calibration input i into dst (the graph's NHWC input).
// Calls from different workers may run concurrently; worker < Workers.
type InputFunc func(worker, i int, dst []float32) error

// int8Ops marks the nodes a quantized graph runs in int8: conv and dense
// (not kept in float32), add, global average pooling, and the ops that
// move values (max pooling, zero padding, slicing, concatenation,
// flattening).
func int8Ops(g *graph.Graph, keep []bool) []bool {
	ops := make([]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		switch n.Int8() {
		case graph.Int8Weights:
			ops[i] = !keep[i]
		case graph.Int8Requant, graph.Int8Move:
			ops[i] = true
		}
	}
	return ops
}

// QuantizeGraph calibrates the fused graph g on n inputs and returns a
// quantized copy: activation parameters on every value an int8 plan keeps
// (or converts) in uint8, int8 weights in place of the float weights of
// the quantized conv and dense layers. Calibration runs g in float32 with
// every value kept (CompileOptions.KeepValues): a first pass finds each
// value's range, a second fills histograms of that fixed width, so the
// result does not depend on the number of workers.
func QuantizeGraph(g *graph.Graph, n int, input InputFunc, opt QuantizeOptions) (*graph.Graph, []LayerQuant, error) {
	if n < 1 {
		return nil, nil, errors.New("resnet: quantize: no calibration inputs")
	}
	bits, err := resolveWeightBits(opt.WeightBits)
	if err != nil {
		return nil, nil, err
	}
	f, err := graph.Fuse(g)
	if err != nil {
		return nil, nil, err
	}
	keep, err := keepMask(f, opt.KeepFP32)
	if err != nil {
		return nil, nil, err
	}
	ops := int8Ops(f, keep)
	need := needParams(f, ops)
	c, err := newCalibration(f, n, input, opt)
	if err != nil {
		return nil, nil, err
	}
	absMax, err := c.ranges(need)
	if err != nil {
		return nil, nil, err
	}
	obs, err := c.histograms(need, absMax)
	if err != nil {
		return nil, nil, err
	}
	layers, err := chooseRanges(f, ops, need, obs, opt.Method)
	if err != nil {
		return nil, nil, err
	}
	shareRanges(f, ops, need, layers)
	out := quantizedCopy(f, ops, layers, bits)
	if err := out.InferShapes(); err != nil {
		return nil, nil, err
	}
	return out, layers, nil
}

// resolveWeightBits checks QuantizeOptions.WeightBits and returns the
// width it means (0 means 8).
func resolveWeightBits(bits int) (int, error) {
	b := bits
	if b == 0 {
		b = 8
	}
	if b != 7 && b != 8 {
		return 0, fmt.Errorf("resnet: quantize: weight bits %d (7 or 8)", bits)
	}
	return b, nil
}

// keepMask marks the nodes of the fused graph f that QuantizeOptions.KeepFP32
// keeps in float32; only conv and dense layers can be kept.
func keepMask(f *graph.Graph, kept []int) ([]bool, error) {
	nn := len(f.Nodes)
	keep := make([]bool, nn)
	for _, k := range kept {
		if k < 0 || k >= nn || (f.Nodes[k].Op != graph.OpConv && f.Nodes[k].Op != graph.OpDense) {
			return nil, fmt.Errorf("resnet: quantize: node %d is not a conv or dense layer", k)
		}
		keep[k] = true
	}
	return keep, nil
}

// needParams marks the values that need activation parameters: the
// outputs and inputs of int8 ops.
func needParams(f *graph.Graph, ops []bool) []bool {
	need := make([]bool, len(f.Nodes))
	for i, nd := range f.Nodes {
		if ops[i] {
			need[i] = true
			for _, in := range nd.Inputs {
				need[in] = true
			}
		}
	}
	return need
}

// calibration runs the fused graph in float32 with every value kept, once
// per pass over the n inputs, on workers single-thread executors: worker w
// takes inputs w, w+workers, ...
type calibration struct {
	plan     *engine.Plan
	n        int // calibration inputs
	nodes    int // nodes of the fused graph (and of the plan)
	workers  int
	input    InputFunc
	progress func(done, total int) // QuantizeOptions.Progress, may be nil
	mu       sync.Mutex            // serializes progress calls
	done     int                   // inputs run so far, over both passes
}

// newCalibration compiles the fused graph f for calibration and decides
// how many workers run: at most one per input, and only as many as fit in
// QuantizeOptions.MaxBytes (an error when not even one does).
func newCalibration(f *graph.Graph, n int, input InputFunc, opt QuantizeOptions) (*calibration, error) {
	nn := len(f.Nodes)
	p, err := engine.CompileWith(f, engine.CompileOptions{Precision: engine.FP32, KeepValues: true, Winograd: engine.WinogradOff, MaxBytes: opt.MaxBytes})
	if err != nil {
		return nil, err
	}
	// Values are read by node index, so the plan must not fuse any further.
	if len(p.Graph.Nodes) != nn {
		return nil, fmt.Errorf("resnet: quantize: the graph is not fused (%d nodes, %d after fusion)", nn, len(p.Graph.Nodes))
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n))
	workers = p.ExecsThatFit(opt.MaxBytes, workers)
	if err := p.CheckBudget(opt.MaxBytes, 1); err != nil {
		return nil, err
	}
	return &calibration{plan: p, n: n, nodes: nn, workers: workers, input: input, progress: opt.Progress}, nil
}

// tick reports one more input run (done counts to 2n over the two passes).
func (c *calibration) tick() {
	if c.progress != nil {
		c.mu.Lock()
		c.done++
		c.progress(c.done, 2*c.n)
		c.mu.Unlock()
	}
}

// run runs every input once, the workers in parallel, and calls
// visit(worker, exec) after running each input; it returns the errors of
// all workers, joined.
func (c *calibration) run(visit func(w int, e *engine.Exec)) error {
	var wg sync.WaitGroup
	errs := make([]error, c.workers)
	for w := range c.workers {
		e, err := engine.NewExec(c.plan, 1)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer e.Close()
			errs[w] = c.work(w, e, visit)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// work runs worker w's share of the inputs on its executor e, stopping at
// the first error.
func (c *calibration) work(w int, e *engine.Exec, visit func(w int, e *engine.Exec)) error {
	for i := w; i < c.n; i += c.workers {
		if err := c.input(w, i, e.Input()); err != nil {
			return fmt.Errorf("calibration input %d: %w", i, err)
		}
		if _, err := e.Run(nil); err != nil {
			return err
		}
		visit(w, e)
		c.tick()
	}
	return nil
}

// ranges is pass 1: the largest magnitude of each needed value over all
// inputs. Each worker keeps its own minima and maxima, merged at the end
// (min and max commute, so any split gives the same).
func (c *calibration) ranges(need []bool) ([]float64, error) {
	nn, workers := c.nodes, c.workers
	lo := make([][]float64, workers)
	hi := make([][]float64, workers)
	for w := range workers {
		lo[w], hi[w] = make([]float64, nn), make([]float64, nn)
		for i := range nn {
			lo[w][i], hi[w][i] = math.Inf(1), math.Inf(-1)
		}
	}
	err := c.run(func(w int, e *engine.Exec) {
		for i := range nn {
			if need[i] {
				for _, v := range e.Value(i) {
					lo[w][i] = min(lo[w][i], float64(v))
					hi[w][i] = max(hi[w][i], float64(v))
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	absMax := make([]float64, nn)
	for i := range nn {
		for w := range workers {
			absMax[i] = max(absMax[i], math.Abs(lo[w][i]), math.Abs(hi[w][i]))
		}
	}
	return absMax, nil
}

// histograms is pass 2: per worker, a histogram of the fixed width
// absMax[i] of each needed value i (nil for the others). Integer counts
// add up the same in any order, so the merged histograms do not depend on
// the split either.
func (c *calibration) histograms(need []bool, absMax []float64) ([][]*Observer, error) {
	obs := make([][]*Observer, c.workers)
	for w := range c.workers {
		obs[w] = make([]*Observer, c.nodes)
		for i := range c.nodes {
			if need[i] {
				obs[w][i] = NewObserver(absMax[i])
			}
		}
	}
	err := c.run(func(w int, e *engine.Exec) {
		for i, o := range obs[w] {
			if o != nil {
				o.Add(e.Value(i))
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return obs, nil
}

// chooseRanges merges the workers' histograms of each needed value and
// picks its range with method; the result has one entry per node of f.
func chooseRanges(f *graph.Graph, ops, need []bool, obs [][]*Observer, method Method) ([]LayerQuant, error) {
	layers := make([]LayerQuant, len(f.Nodes))
	for i := range layers {
		layers[i] = LayerQuant{Node: i, SharedWith: -1, Int8: ops[i]}
		if !need[i] {
			continue
		}
		o := obs[0][i]
		for w := 1; w < len(obs); w++ {
			if err := o.Merge(obs[w][i]); err != nil {
				return nil, err
			}
		}
		l, h, err := o.Range(method)
		if err != nil {
			return nil, f.Errorf(i, "calibration: %w", err)
		}
		layers[i].Lo, layers[i].Hi = l, h
		layers[i].ObservedMin, layers[i].ObservedMax = o.Min, o.Max
	}
	return layers, nil
}

// shareRanges gives the values joined by int8 ops that only move values
// one range, the union of theirs (so that those ops copy bytes without
// requantizing), and then sets every needed value's parameters from its
// group's range. A group is named by its lowest node (LayerQuant.SharedWith).
func shareRanges(f *graph.Graph, ops, need []bool, layers []LayerQuant) {
	nn := len(f.Nodes)
	groups := newUnionFind(nn)
	for i, nd := range f.Nodes {
		if ops[i] && nd.Int8() == graph.Int8Move {
			for _, in := range nd.Inputs {
				groups.union(in, i)
			}
		}
	}
	groupLo, groupHi := make([]float64, nn), make([]float64, nn)
	for i := range groupLo {
		groupLo[i], groupHi[i] = math.Inf(1), math.Inf(-1)
	}
	for i := range nn {
		if need[i] {
			r := groups.find(i)
			groupLo[r] = min(groupLo[r], layers[i].Lo)
			groupHi[r] = max(groupHi[r], layers[i].Hi)
		}
	}
	for i := range nn {
		if !need[i] {
			continue
		}
		r := groups.find(i)
		if r != i {
			layers[i].SharedWith = r
		}
		l, h := groupLo[r], groupHi[r]
		layers[i].Lo, layers[i].Hi = l, h
		s, z := Params(l, h)
		layers[i].Quant = &graph.QParams{Scale: s, Zero: z}
	}
}

// unionFind is a disjoint-set forest over node indices whose roots are the
// lowest members of their sets.
type unionFind []int

func newUnionFind(n int) unionFind {
	u := make(unionFind, n)
	for i := range u {
		u[i] = i
	}
	return u
}

// find returns the root of i's set, halving the path on the way.
func (u unionFind) find(i int) int {
	for u[i] != i {
		u[i] = u[u[i]]
		i = u[i]
	}
	return i
}

// union joins the sets of a and b under the lower of their roots.
func (u unionFind) union(a, b int) {
	a, b = u.find(a), u.find(b)
	if a != b {
		u[max(a, b)] = min(a, b)
	}
}

// quantizedCopy copies the fused graph f with the activation parameters
// of layers, and int8 weights of the given width in place of the float
// weights of its int8 conv and dense layers. f itself is not changed.
func quantizedCopy(f *graph.Graph, ops []bool, layers []LayerQuant, bits int) *graph.Graph {
	out := &graph.Graph{Output: f.Output, Batch: f.Batch, Extra: f.Extra, OutputNames: f.OutputNames}
	for i, nd := range f.Nodes {
		c := *nd
		c.Inputs = append([]int(nil), nd.Inputs...)
		c.Quant = layers[i].Quant // nil: the value stays float32
		if ops[i] && (nd.Op == graph.OpConv || nd.Op == graph.OpDense) {
			quantizeWeights(&c, bits, &layers[i])
		}
		out.Add(&c)
	}
	return out
}

// quantizeWeights replaces the float weights of the conv or dense node c
// (a copy: its Conv or Dense is copied before it changes) with int8
// weights per output channel, and records their scales' range in l.
func quantizeWeights(c *graph.Node, bits int, l *LayerQuant) {
	var qw graph.QWeights
	if c.Op == graph.OpConv {
		cv := *c.Conv
		qw.Q, qw.Scale = WeightsBits(cv.FloatWeight(), cv.Cout, bits)
		cv.Weight, cv.Quant = nil, &qw
		c.Conv = &cv
	} else {
		d := *c.Dense
		qw.Q, qw.Scale = WeightsBits(d.FloatWeight(), d.Out, bits)
		d.Weight, d.Quant = nil, &qw
		c.Dense = &d
	}
	l.WeightsQuantized = true
	l.WeightScaleMin, l.WeightScaleMax = qw.Scale[0], qw.Scale[0]
	for _, s := range qw.Scale {
		l.WeightScaleMin = min(l.WeightScaleMin, s)
		l.WeightScaleMax = max(l.WeightScaleMax, s)
	}
}
