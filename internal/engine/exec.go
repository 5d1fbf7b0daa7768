package engine

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

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
	n        int // samples of the run in progress, or of the last run

	// The worker pool (threads > 1): the calling goroutine is worker 0.
	team *team
	cpus []int // the CPU of each worker, or nil (NewExecOn)

	state atomic.Int32 // execIdle, execRunning or execClosed
}

const (
	execIdle = iota
	execRunning
	execClosed
)

// NewExec allocates the arena for threads workers (at least 1) and starts
// the pool.
func NewExec(p *Plan, threads int) (*Exec, error) { return NewExecOn(p, threads, nil) }

// NewExecOn is NewExec with each worker bound to a CPU: worker w's thread
// to cpus[w] (len(cpus) == threads, distinct CPUs this process may use),
// the calling goroutine's to cpus[0] for the length of each run. nil cpus
// binds nothing. Linux only.
func NewExecOn(p *Plan, threads int, cpus []int) (*Exec, error) {
	threads = max(threads, 1)
	if err := checkCPUs(cpus, threads); err != nil {
		return nil, err
	}
	e := &Exec{plan: p, threads: threads, cpus: cpus}
	all := arena.Float32s(p.floats + threads*p.scratch)
	prefault(all)
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
		e.team = newTeam(threads, e.partIndex, cpus)
	}
	return e, nil
}

// errNoPinning is NewExecOn's error where this build cannot bind threads
// to CPUs.
var errNoPinning = errors.New("resnet: binding threads to CPUs is supported on Linux only")

// checkCPUs checks a NewExecOn CPU list: one distinct CPU per worker, each
// one this process may run on.
func checkCPUs(cpus []int, threads int) error {
	if cpus == nil {
		return nil
	}
	if len(cpus) != threads {
		return fmt.Errorf("resnet: %d CPUs for %d threads: want one per thread", len(cpus), threads)
	}
	allowed, _, err := CPUSpeeds()
	if err != nil {
		return err
	}
	if !pinningSupported {
		return errNoPinning
	}
	seen := map[int]bool{}
	for _, c := range cpus {
		if seen[c] || !slices.Contains(allowed, c) {
			return fmt.Errorf("resnet: CPU %d: repeated, or not one this process may use (%v)", c, allowed)
		}
		seen[c] = true
	}
	return nil
}

// prefault writes a zero to every page of mem, which is zero already:
// the kernel maps a fresh allocation's pages at their first write, and
// that would otherwise slow the first run (2.5x the steady state on the
// built-in model, Intel Xeon family 6 model 167), where the session's
// creation should pay it.
func prefault(mem []float32) {
	const page = 4096 / 4
	for i := 0; i < len(mem); i += page {
		mem[i] = 0
	}
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
func (e *Exec) partIndex(s, w int) {
	st := &e.plan.steps[s]
	st.k.run(e, st, w, e.threads)
}

// Input is the arena view Run reads the NHWC input from: room for the
// plan's Batch samples, one after the other. Callers may write the input
// here directly and call Run(nil) (or RunN) to skip a copy.
func (e *Exec) Input() []float32 {
	n := e.plan.Batch * e.plan.Graph.Input().Size()
	off := e.plan.offsets[0]
	return e.mem[off : off+n : off+n]
}

// view is sample b of the float32 value of shape s at arena offset off
// (in float32s).
func (e *Exec) view(off int, s graph.Shape, b int) []float32 {
	n := s.Size()
	off += b * n
	return e.mem[off : off+n : off+n]
}

// viewAll is the float32 value of shape s at off for every sample of this
// run.
func (e *Exec) viewAll(off int, s graph.Shape) []float32 {
	n := e.n * s.Size()
	return e.mem[off : off+n : off+n]
}

// Run executes the plan on NHWC input, one or more samples after each
// other (at most the plan's Batch; nil: all Batch samples, already in
// Input()), and returns the outputs of as many samples, a view of the
// arena valid until the next run.
func (e *Exec) Run(input []float32) ([]float32, error) { return e.run(input, 0, nil) }

// RunN runs the first n samples already written to Input().
func (e *Exec) RunN(n int) ([]float32, error) {
	if n < 1 || n > e.plan.Batch {
		return nil, fmt.Errorf("resnet: run of %d samples: want 1 to %d", n, e.plan.Batch)
	}
	return e.run(nil, n, nil)
}

// RunProfile is Run that also stores each step's wall time in times
// (len(times) >= len(Plan.Steps())). It is for `bench --profile`; the
// timer calls make it slightly slower than Run.
func (e *Exec) RunProfile(input []float32, times []time.Duration) ([]float32, error) {
	if len(times) < len(e.plan.steps) {
		return nil, fmt.Errorf("resnet: %d profile slots for %d steps", len(times), len(e.plan.steps))
	}
	return e.run(input, 0, times)
}

// run runs the samples of input, or n samples already in Input() (0: all).
func (e *Exec) run(input []float32, n int, times []time.Duration) ([]float32, error) {
	if err := e.acquire(); err != nil {
		return nil, err
	}
	defer e.release()
	if input != nil {
		size := e.plan.Graph.Input().Size()
		if len(input) == 0 || len(input)%size != 0 || len(input)/size > e.plan.Batch {
			return nil, fmt.Errorf("resnet: input has %d values, want %d (%v) per sample for 1 to %d samples", len(input), size, e.plan.Graph.Input(), e.plan.Batch)
		}
		n = len(input) / size
		copy(e.Input(), input)
	}
	if n == 0 {
		n = e.plan.Batch
	}
	if e.cpus != nil {
		if undo, err := pinThread(e.cpus[0]); err == nil {
			defer undo()
		}
	}
	e.n = n
	for s := range e.plan.steps {
		if times != nil {
			t0 := time.Now()
			e.step(s)
			times[s] = time.Since(t0)
		} else {
			e.step(s)
		}
	}
	return e.viewAll(e.plan.results[0], e.plan.Graph.OutputShape()), nil
}

// step runs step s, split across the workers when that pays.
func (e *Exec) step(s int) {
	st := &e.plan.steps[s]
	if e.team != nil && st.k.parts(st, e.threads) > 1 {
		e.team.do(s)
	} else {
		st.k.run(e, st, 0, 1)
	}
}

// asBytes views float32 memory as bytes (uint8 values share the arena).
func asBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

// view8 is sample b of the uint8 value of shape s at arena offset off (in
// float32s).
func (e *Exec) view8(off int, s graph.Shape, b int) []uint8 {
	n := s.Size()
	o := 4*off + b*n
	return e.bytes[o : o+n : o+n]
}

// view8All is view8 for every sample of this run.
func (e *Exec) view8All(off int, s graph.Shape) []uint8 {
	n := e.n * s.Size()
	return e.bytes[4*off : 4*off+n : 4*off+n]
}

// Output returns output k (Graph.Outputs order; 0 is what Run returns) of
// the last run, a view of the arena valid until the next run, or nil for k
// out of range.
func (e *Exec) Output(k int) []float32 {
	p := e.plan
	if k < 0 || k >= len(p.results) {
		return nil
	}
	node := p.Graph.Output
	if k > 0 {
		node = p.Graph.Extra[k-1]
	}
	return e.viewAll(p.results[k], p.Graph.Nodes[node].Shape)
}

// Value returns node i's value after Run when it is stored as float32 and
// still in the arena (plans compiled with KeepValues keep them all), or
// nil.
func (e *Exec) Value(i int) []float32 {
	p := e.plan
	if i < 0 || i >= len(p.offsets) || p.u8[i] {
		return nil
	}
	return e.viewAll(p.offsets[i], p.Graph.Nodes[i].Shape)
}

// ValueBytes returns node i's value as the plan stores it: uint8 values as
// they are, float32 values by their little-endian bits (as Value keeps them
// alive, it needs CompileOptions.KeepValues), or nil for an index out of range.
func (e *Exec) ValueBytes(i int) []byte {
	p := e.plan
	if i < 0 || i >= len(p.offsets) {
		return nil
	}
	if p.u8[i] {
		return e.view8All(p.offsets[i], p.Graph.Nodes[i].Shape)
	}
	return asBytes(e.viewAll(p.offsets[i], p.Graph.Nodes[i].Shape))
}
