package engine

import (
	"runtime"
	"sync/atomic"
	"time"
)

// team is a fixed group of worker goroutines that run one task at a time
// together with the caller. A task has n parts (part p is the same slice
// of work whoever runs it, so results do not depend on scheduling); the
// caller and the workers claim parts until none is left. Between tasks the
// workers spin for a while before they park: waking a parked goroutine
// means waking an OS thread, which costs tens to hundreds of microseconds
// (more in a VM), as much as a whole convolution step, whereas a spinning
// worker picks the next step up within a microsecond. ONNX Runtime's and
// OpenMP's pools spin for the same reason. A worker that is parked, or
// whose thread the OS has not scheduled, holds nothing up: the caller runs
// the parts nobody has claimed. Nothing here allocates per task, parked or
// not: see parker for why parking does not use sync.Cond on Linux.
type team struct {
	n    int
	work func(task, part int)

	gen      atomic.Uint64 // incremented to publish a task
	task     atomic.Int64
	parts    atomic.Uint64 // the task's generation (high 32 bits) and its parts claimed so far (low 32)
	done     atomic.Int64  // parts of the task finished
	closed   atomic.Bool
	sleepers atomic.Int32
	seq      atomic.Uint32 // changed (after gen) by every publish and by close; parked workers wait on it
	park     parker
}

// teamSpin is how long an idle worker spins before parking.
const teamSpin = time.Millisecond

// newTeam starts the n-1 workers of a team of n; with cpus (len n), worker
// w runs on a thread bound to cpus[w] (the caller binds itself to cpus[0]
// for a run: Exec.run).
func newTeam(n int, work func(task, part int), cpus []int) *team {
	t := &team{n: n, work: work}
	t.park.init()
	for w := 1; w < n; w++ {
		go func() {
			if cpus != nil {
				// Checked by NewExec; a CPU that went away meanwhile leaves
				// the worker unbound, which only costs speed.
				if undo, err := pinThread(cpus[w]); err == nil {
					defer undo()
				}
			}
			t.worker()
		}()
	}
	return t
}

// do runs the n parts of task and returns when every one has finished.
// Only one goroutine at a time may call it (the Exec's owner).
func (t *team) do(task int) {
	t.task.Store(int64(task))
	t.done.Store(0)
	g := t.gen.Load() + 1
	t.parts.Store(uint64(uint32(g)) << 32) // before gen: a worker that sees g finds its parts
	t.gen.Store(g)
	t.seq.Add(1)
	if t.sleepers.Load() > 0 {
		// A worker counted itself a sleeper before it read seq: either it
		// sees the new seq and does not park, or this wakes it.
		t.park.wake(&t.seq)
	}
	t.runParts(g)
	for i := 1; t.done.Load() != int64(t.n); i++ {
		if i%1024 == 0 {
			runtime.Gosched() // in case a worker shares our P
		}
	}
}

// runParts claims and runs parts of generation g until none is left (or
// the team has moved on to a later task: a late worker then does nothing).
func (t *team) runParts(g uint64) {
	for {
		v := t.parts.Load()
		if v>>32 != uint64(uint32(g)) || int(uint32(v)) >= t.n {
			return
		}
		if !t.parts.CompareAndSwap(v, v+1) {
			continue
		}
		// The task cannot change before this part is done: do waits for it.
		t.work(int(t.task.Load()), int(uint32(v)))
		t.done.Add(1)
	}
}

func (t *team) close() {
	t.closed.Store(true)
	t.seq.Add(1)
	t.park.wake(&t.seq)
}

func (t *team) worker() {
	// Generation 0 is "no task yet": a worker that starts late must still
	// look at the task published before it looked.
	seen := uint64(0)
	for {
		g := t.wait(seen)
		if g == seen {
			return // closed
		}
		seen = g
		t.runParts(g)
	}
}

// wait returns the first generation after seen, spinning for teamSpin and
// then parking; it returns seen when the team is closed.
func (t *team) wait(seen uint64) uint64 {
	var start time.Time
	for i := 0; ; i++ {
		if g := t.gen.Load(); g != seen {
			return g
		}
		if t.closed.Load() {
			return seen
		}
		if i%256 != 255 {
			continue
		}
		if start.IsZero() {
			start = time.Now()
		} else if time.Since(start) > teamSpin {
			break
		}
		if i%4096 == 4095 {
			runtime.Gosched()
		}
	}
	t.sleepers.Add(1)
	defer t.sleepers.Add(-1)
	for {
		s := t.seq.Load()
		if g := t.gen.Load(); g != seen || t.closed.Load() {
			return g
		}
		t.park.sleep(&t.seq, s)
	}
}
