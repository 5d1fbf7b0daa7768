package engine

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/arena"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// Exec runs a Plan. It owns the arena (activations and per-worker scratch)
// and a fixed pool of worker goroutines; Run allocates nothing. An Exec is
// used by one goroutine at a time: a Run while another is running returns
// ErrBusy, and a Run after Close returns ErrClosed; neither waits.
type Exec struct {
	plan     *Plan
	mem      []float32
	bytes    []byte // mem as bytes, for uint8 values
	scratch  [][]float32
	scratch8 [][]byte          // scratch as bytes
	rq       []kernels.Requant // per worker: the int8 epilogue of the running step
	threads  int

	// The worker pool (threads > 1): the calling goroutine is worker 0.
	team *team

	state atomic.Int32 // execIdle, execRunning or execClosed
}

const (
	execIdle = iota
	execRunning
	execClosed
)

// NewExec allocates the arena for threads workers (at least 1) and starts
// the pool.
func NewExec(p *Plan, threads int) (*Exec, error) {
	if p.Kernel != kernels.PathName() {
		return nil, fmt.Errorf("resnet: plan packed for kernel %q, but %q is selected", p.Kernel, kernels.PathName())
	}
	threads = max(threads, 1)
	e := &Exec{plan: p, threads: threads}
	all := arena.Float32s(p.floats + threads*p.scratch)
	e.mem = all[:p.floats]
	e.bytes = asBytes(e.mem)
	e.rq = make([]kernels.Requant, threads)
	for w := range threads {
		off := p.floats + w*p.scratch
		sc := all[off : off+p.scratch : off+p.scratch]
		e.scratch = append(e.scratch, sc)
		e.scratch8 = append(e.scratch8, asBytes(sc))
	}
	if threads > 1 {
		e.team = newTeam(threads, e.partIndex)
	}
	return e, nil
}

// Threads is the number of workers.
func (e *Exec) Threads() int { return e.threads }

// Close stops the worker goroutines, after waiting for a Run in progress
// on another goroutine. Later runs return ErrClosed; Close may be called
// more than once.
func (e *Exec) Close() {
	for {
		switch e.state.Load() {
		case execClosed:
			return
		case execIdle:
			if e.state.CompareAndSwap(execIdle, execClosed) {
				if e.team != nil {
					e.team.close()
				}
				return
			}
		default:
			time.Sleep(50 * time.Microsecond) // a run is in progress
		}
	}
}

// acquire marks the Exec running for one call; release ends it.
func (e *Exec) acquire() error {
	if e.state.CompareAndSwap(execIdle, execRunning) {
		return nil
	}
	if e.state.Load() == execClosed {
		return fmt.Errorf("resnet: run: %w", ErrClosed)
	}
	return fmt.Errorf("resnet: run: %w", ErrBusy)
}

func (e *Exec) release() { e.state.Store(execIdle) }

// partIndex is part w of step s (the team's task), with scratch w: each
// part is run once, by whichever worker claims it.
func (e *Exec) partIndex(s, w int) { e.part(&e.plan.steps[s], w) }

// Input is the arena view Run reads the NHWC input from; callers may write
// the input here directly and call Run(nil) to skip a copy.
func (e *Exec) Input() []float32 {
	return e.view(e.plan.offsets[0], e.plan.Graph.Input())
}

func (e *Exec) view(off int, s graph.Shape) []float32 {
	n := s.Size()
	return e.mem[off : off+n : off+n]
}

// Run executes the plan on an NHWC input (nil: the input is already in
// Input()) and returns the output, a view of the arena valid until the next
// Run.
func (e *Exec) Run(input []float32) ([]float32, error) {
	if err := e.acquire(); err != nil {
		return nil, err
	}
	defer e.release()
	if input != nil {
		dst := e.Input()
		if len(input) != len(dst) {
			return nil, fmt.Errorf("resnet: input has %d values, want %d (%v)", len(input), len(dst), e.plan.Graph.Input())
		}
		copy(dst, input)
	}
	for s := range e.plan.steps {
		e.step(s)
	}
	return e.view(e.plan.result, e.plan.Graph.OutputShape()), nil
}

// step runs step s, split across the workers when that pays.
func (e *Exec) step(s int) {
	st := &e.plan.steps[s]
	if e.team != nil && parallel(st) {
		e.team.do(s)
	} else {
		e.serial(st)
	}
}

// parallel reports whether a step is worth splitting across workers.
func parallel(st *step) bool {
	if st.int8 {
		return parallel8(st)
	}
	switch st.op {
	case graph.OpConv:
		return true
	case graph.OpMaxPool, graph.OpAvgPool:
		return st.outShape.Size() >= 1<<14
	case graph.OpDense:
		return st.w.K*st.w.N >= 1<<16
	}
	return false
}

// split returns worker w's share [lo, hi) of n items, in units of unit.
func split(n, unit, w, workers int) (lo, hi int) {
	blocks := (n + unit - 1) / unit
	lo = blocks * w / workers * unit
	hi = min(n, blocks*(w+1)/workers*unit)
	return min(lo, n), hi
}

// part runs worker w's share of a parallel step. Every output element is
// computed by exactly one worker in the same order as serially, so results
// do not depend on the thread count.
func (e *Exec) part(st *step, w int) {
	if st.int8 {
		e.part8(st, w)
		return
	}
	n := e.threads
	switch st.op {
	case graph.OpConv:
		mr := kernels.GemmMR()
		if wg := st.wino; wg != nil {
			// Tiles in units of MR keep every tile at the same place in
			// the GEMM's row tiles. Split channels only when there is not
			// one MR block of tiles per worker: then each worker transforms
			// all input tiles itself, work that a tile split does not
			// repeat (28x28 F(4x4) at 2 threads: 0.31 -> 0.22 ms).
			tiles, panels := wg.Tiles(), wg.Panels()
			if tiles < mr*n && panels >= n {
				p0, p1 := split(panels, 1, w, n)
				e.winograd(st, w, 0, tiles, p0, p1)
			} else {
				q0, q1 := split(tiles, mr, w, n)
				e.winograd(st, w, q0, q1, 0, panels)
			}
			return
		}
		px := st.conv.Pixels()
		panels := st.w.Panels()
		// Few pixels (late layers): split output channels instead.
		if px < 4*mr*n && panels >= n {
			p0, p1 := split(panels, 1, w, n)
			e.conv(st, w, 0, px, p0, p1)
		} else {
			x0, x1 := split(px, mr, w, n)
			e.conv(st, w, x0, x1, 0, panels)
		}
	case graph.OpMaxPool, graph.OpAvgPool:
		x0, x1 := split(st.outShape.H*st.outShape.W, 1, w, n)
		e.poolRange(st, x0, x1)
	case graph.OpDense:
		p0, p1 := split(st.w.Panels(), 1, w, n)
		e.dense(st, p0, p1)
	}
}

func (e *Exec) conv(st *step, w, px0, px1, p0, p1 int) {
	if px0 >= px1 || p0 >= p1 {
		return
	}
	ep := kernels.Epilogue{Bias: st.bias, Relu: st.relu}
	if st.in2 >= 0 {
		ep.Res = e.view(st.in2, st.outShape)
	}
	kernels.Conv(&st.conv, e.view(st.in, st.inShape), &st.w, e.view(st.out, st.outShape), &ep, px0, px1, p0, p1, e.scratch[w])
}

func (e *Exec) winograd(st *step, w, q0, q1, p0, p1 int) {
	if q0 >= q1 || p0 >= p1 {
		return
	}
	ep := kernels.Epilogue{Bias: st.bias, Relu: st.relu}
	if st.in2 >= 0 {
		ep.Res = e.view(st.in2, st.outShape)
	}
	st.wino.Run(e.view(st.in, st.inShape), e.view(st.out, st.outShape), &ep, q0, q1, p0, p1, e.scratch[w])
}

func (e *Exec) dense(st *step, p0, p1 int) {
	ep := kernels.Epilogue{Bias: st.bias, Relu: st.relu}
	kernels.Gemm(1, e.view(st.in, st.inShape), st.w.K, &st.w, e.view(st.out, st.outShape), st.w.N, &ep, p0, p1)
}

func (e *Exec) poolRange(st *step, x0, x1 int) {
	in, out := e.view(st.in, st.inShape), e.view(st.out, st.outShape)
	if st.op == graph.OpMaxPool {
		kernels.MaxPool(&st.pool, in, out, x0, x1)
	} else {
		kernels.AvgPool(&st.pool, in, out, x0, x1)
	}
}

func dims(s graph.Shape) kernels.Dims3 { return kernels.Dims3{H: s.H, W: s.W, C: s.C} }

func (e *Exec) serial(st *step) {
	if st.int8 || st.op == graph.OpQuantize || st.op == graph.OpDequantize {
		e.serial8(st)
		return
	}
	in, out := e.view(st.in, st.inShape), e.view(st.out, st.outShape)
	switch st.op {
	case graph.OpConv:
		if st.wino != nil {
			e.winograd(st, 0, 0, st.wino.Tiles(), 0, st.wino.Panels())
		} else {
			e.conv(st, 0, 0, st.conv.Pixels(), 0, st.w.Panels())
		}
	case graph.OpDense:
		e.dense(st, 0, st.w.Panels())
	case graph.OpMaxPool, graph.OpAvgPool:
		e.poolRange(st, 0, st.outShape.H*st.outShape.W)
	case graph.OpGlobalAvgPool:
		kernels.GlobalAvgPool(in, st.inShape.H*st.inShape.W, st.inShape.C, out)
	case graph.OpAdd:
		kernels.Add(in, e.view(st.in2, st.inShape), out, st.relu)
	case graph.OpRelu:
		kernels.Relu(in, out)
	case graph.OpAffine:
		kernels.Affine(in, out, st.affine.Scale, st.affine.Shift, st.relu)
	case graph.OpSoftmax:
		kernels.Softmax(in, out)
	case graph.OpPad:
		kernels.Pad(in, dims(st.inShape), st.pad.Before, st.pad.After, st.pad.Value, out)
	case graph.OpSlice:
		kernels.Slice(in, dims(st.inShape), st.slice.Start, st.slice.Step, dims(st.outShape), out)
	case graph.OpConcat:
		for _, part := range st.concat {
			kernels.ConcatPart(e.view(part.off, part.shape), dims(part.shape), out, dims(st.outShape), int(e.plan.Graph.Nodes[st.node].Axis), part.at)
		}
	case graph.OpFlatten:
		kernels.FlattenNCHW(in, dims(st.inShape), out)
	}
}

// RunProfile is Run that also stores each step's wall time in times
// (len(times) >= len(Plan.Steps())). It is for `bench --profile`; the
// timer calls make it slightly slower than Run.
func (e *Exec) RunProfile(input []float32, times []time.Duration) ([]float32, error) {
	if len(times) < len(e.plan.steps) {
		return nil, fmt.Errorf("resnet: %d profile slots for %d steps", len(times), len(e.plan.steps))
	}
	if err := e.acquire(); err != nil {
		return nil, err
	}
	defer e.release()
	if input != nil {
		dst := e.Input()
		if len(input) != len(dst) {
			return nil, fmt.Errorf("resnet: input has %d values, want %d (%v)", len(input), len(dst), e.plan.Graph.Input())
		}
		copy(dst, input)
	}
	for s := range e.plan.steps {
		t0 := time.Now()
		e.step(s)
		times[s] = time.Since(t0)
	}
	return e.view(e.plan.result, e.plan.Graph.OutputShape()), nil
}
