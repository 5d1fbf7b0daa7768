package resnet

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// team is a fixed group of worker goroutines that run one task at a time
// together with the caller (worker 0). Between tasks the workers spin for a
// while before they park: waking a parked goroutine means waking an OS
// thread, which costs tens to hundreds of microseconds (more in a VM), as
// much as a whole convolution step, whereas a spinning worker picks the next
// step up within a microsecond. ONNX Runtime's and OpenMP's pools spin for
// the same reason. Nothing here allocates per task.
type team struct {
	n    int
	work func(task, w int)

	gen      atomic.Uint64 // incremented to publish a task
	task     atomic.Int64
	pending  atomic.Int64 // workers (besides the caller) still running the task
	closed   atomic.Bool
	sleepers atomic.Int32
	mu       sync.Mutex
	cond     sync.Cond
}

// teamSpin is how long an idle worker spins before parking.
const teamSpin = time.Millisecond

func newTeam(n int, work func(task, w int)) *team {
	t := &team{n: n, work: work}
	t.cond.L = &t.mu
	for w := 1; w < n; w++ {
		go t.worker(w)
	}
	return t
}

// do runs task on all n workers and returns when every one has finished.
func (t *team) do(task int) {
	t.task.Store(int64(task))
	t.pending.Store(int64(t.n - 1))
	t.gen.Add(1)
	if t.sleepers.Load() > 0 {
		// A worker that saw no new task is parked or about to park under
		// mu; the lock orders this broadcast after its check.
		t.mu.Lock()
		t.cond.Broadcast()
		t.mu.Unlock()
	}
	t.work(task, 0)
	for i := 1; t.pending.Load() != 0; i++ {
		if i%1024 == 0 {
			runtime.Gosched() // in case a worker shares our P
		}
	}
}

func (t *team) close() {
	t.closed.Store(true)
	t.mu.Lock()
	t.cond.Broadcast()
	t.mu.Unlock()
}

func (t *team) worker(w int) {
	// Generation 0 is "no task yet": a worker that starts late must still
	// run the tasks published before it looked.
	seen := uint64(0)
	for {
		g := t.wait(seen)
		if g == seen {
			return // closed
		}
		seen = g
		t.work(int(t.task.Load()), w)
		t.pending.Add(-1)
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
	t.mu.Lock()
	t.sleepers.Add(1)
	g := t.gen.Load()
	for g == seen && !t.closed.Load() {
		t.cond.Wait()
		g = t.gen.Load()
	}
	t.sleepers.Add(-1)
	t.mu.Unlock()
	return g
}
