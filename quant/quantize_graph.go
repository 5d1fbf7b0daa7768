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
	bits := opt.WeightBits
	if bits == 0 {
		bits = 8
	}
	if bits != 7 && bits != 8 {
		return nil, nil, fmt.Errorf("resnet: quantize: weight bits %d (7 or 8)", opt.WeightBits)
	}
	f, err := graph.Fuse(g)
	if err != nil {
		return nil, nil, err
	}
	nn := len(f.Nodes)
	keep := make([]bool, nn)
	for _, k := range opt.KeepFP32 {
		if k < 0 || k >= nn || (f.Nodes[k].Op != graph.OpConv && f.Nodes[k].Op != graph.OpDense) {
			return nil, nil, fmt.Errorf("resnet: quantize: node %d is not a conv or dense layer", k)
		}
		keep[k] = true
	}
	ops := int8Ops(f, keep)
	// Values that need parameters: outputs and inputs of int8 ops.
	need := make([]bool, nn)
	for i, nd := range f.Nodes {
		if ops[i] {
			need[i] = true
			for _, in := range nd.Inputs {
				need[in] = true
			}
		}
	}
	p, err := engine.CompileWith(f, engine.CompileOptions{KeepValues: true, Winograd: engine.WinogradOff, MaxBytes: opt.MaxBytes})
	if err != nil {
		return nil, nil, err
	}
	if len(p.Graph.Nodes) != nn {
		return nil, nil, fmt.Errorf("resnet: quantize: the graph is not fused (%d nodes, %d after fusion)", nn, len(p.Graph.Nodes))
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n))
	workers = p.ExecsThatFit(opt.MaxBytes, workers)
	if err := p.CheckBudget(opt.MaxBytes, 1); err != nil {
		return nil, nil, err
	}
	progress := 0
	var progMu sync.Mutex
	tick := func() {
		if opt.Progress != nil {
			progMu.Lock()
			progress++
			opt.Progress(progress, 2*n)
			progMu.Unlock()
		}
	}
	// run calls visit(worker, exec) after running each input.
	run := func(visit func(w int, e *engine.Exec)) error {
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := range workers {
			e, err := engine.NewExec(p, 1)
			if err != nil {
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer e.Close()
				for i := w; i < n; i += workers {
					if err := input(w, i, e.Input()); err != nil {
						errs[w] = fmt.Errorf("calibration input %d: %w", i, err)
						return
					}
					if _, err := e.Run(nil); err != nil {
						errs[w] = err
						return
					}
					visit(w, e)
					tick()
				}
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	// Pass 1: ranges (min and max commute, so any split gives the same).
	lo := make([][]float64, workers)
	hi := make([][]float64, workers)
	for w := range workers {
		lo[w], hi[w] = make([]float64, nn), make([]float64, nn)
		for i := range nn {
			lo[w][i], hi[w][i] = math.Inf(1), math.Inf(-1)
		}
	}
	err = run(func(w int, e *engine.Exec) {
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
		return nil, nil, err
	}
	absMax := make([]float64, nn)
	for i := range nn {
		for w := range workers {
			absMax[i] = max(absMax[i], math.Abs(lo[w][i]), math.Abs(hi[w][i]))
		}
	}
	// Pass 2: histograms of a fixed width (integer counts add up the same
	// in any order).
	obs := make([][]*Observer, workers)
	for w := range workers {
		obs[w] = make([]*Observer, nn)
		for i := range nn {
			if need[i] {
				obs[w][i] = NewObserver(absMax[i])
			}
		}
	}
	err = run(func(w int, e *engine.Exec) {
		for i, o := range obs[w] {
			if o != nil {
				o.Add(e.Value(i))
			}
		}
	})
	if err != nil {
		return nil, nil, err
	}
	layers := make([]LayerQuant, nn)
	for i := range nn {
		layers[i] = LayerQuant{Node: i, SharedWith: -1, Int8: ops[i]}
		if !need[i] {
			continue
		}
		o := obs[0][i]
		for w := 1; w < workers; w++ {
			if err := o.Merge(obs[w][i]); err != nil {
				return nil, nil, err
			}
		}
		l, h, err := o.Range(opt.Method)
		if err != nil {
			return nil, nil, f.Errorf(i, "calibration: %v", err)
		}
		layers[i].Lo, layers[i].Hi = l, h
		layers[i].ObservedMin, layers[i].ObservedMax = o.Min, o.Max
	}
	// Values joined by ops that move values share one range: the union.
	root := make([]int, nn)
	for i := range root {
		root[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for root[i] != i {
			root[i] = root[root[i]]
			i = root[i]
		}
		return i
	}
	for i, nd := range f.Nodes {
		if ops[i] && nd.Int8() == graph.Int8Move {
			for _, in := range nd.Inputs {
				a, b := find(in), find(i)
				if a != b {
					root[max(a, b)] = min(a, b)
				}
			}
		}
	}
	groupLo, groupHi := make([]float64, nn), make([]float64, nn)
	for i := range groupLo {
		groupLo[i], groupHi[i] = math.Inf(1), math.Inf(-1)
	}
	for i := range nn {
		if need[i] {
			r := find(i)
			groupLo[r] = min(groupLo[r], layers[i].Lo)
			groupHi[r] = max(groupHi[r], layers[i].Hi)
		}
	}
	out := &graph.Graph{Output: f.Output}
	for i, nd := range f.Nodes {
		c := *nd
		c.Inputs = append([]int(nil), nd.Inputs...)
		if need[i] {
			r := find(i)
			if r != i {
				layers[i].SharedWith = r
			}
			l, h := groupLo[r], groupHi[r]
			layers[i].Lo, layers[i].Hi = l, h
			s, z := Params(l, h)
			c.Quant = &graph.QParams{Scale: s, Zero: z}
			layers[i].Quant = c.Quant
		} else {
			c.Quant = nil
		}
		if ops[i] && (nd.Op == graph.OpConv || nd.Op == graph.OpDense) {
			var qw graph.QWeights
			if nd.Op == graph.OpConv {
				cv := *nd.Conv
				qw.Q, qw.Scale = WeightsBits(cv.FloatWeight(), cv.Cout, bits)
				cv.Weight, cv.Quant = nil, &qw
				c.Conv = &cv
			} else {
				d := *nd.Dense
				qw.Q, qw.Scale = WeightsBits(d.FloatWeight(), d.Out, bits)
				d.Weight, d.Quant = nil, &qw
				c.Dense = &d
			}
			layers[i].WeightsQuantized = true
			layers[i].WeightScaleMin, layers[i].WeightScaleMax = qw.Scale[0], qw.Scale[0]
			for _, s := range qw.Scale {
				layers[i].WeightScaleMin = min(layers[i].WeightScaleMin, s)
				layers[i].WeightScaleMax = max(layers[i].WeightScaleMax, s)
			}
		}
		out.Add(&c)
	}
	if err := out.InferShapes(); err != nil {
		return nil, nil, err
	}
	return out, layers, nil
}
