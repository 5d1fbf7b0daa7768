package serve

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	edgeresnet "github.com/edge-resnet/edge-resnet"
)

// batcher is the runner that merges the samples of concurrent jobs into
// one RunBatch: one worker per session (each made WithBatch(MaxBatch))
// takes jobs from a shared queue and runs them as one batch, splitting
// the outputs back. A job larger than the batch stays with the worker
// that took it (its "carry") and fills its next batches.
//
// A worker waits for more jobs only when waiting can pay: it takes every
// job already queued (up to the batch), and then waits, at most
// BatchTimeout from when its first job arrived or the session became
// free (the later), only while no other worker is idle and more jobs are
// on their way: more requests are admitted than queued or held by
// workers (some are being read), or the worker is in a busy spell and
// has fewer jobs than were admitted when its last run began (several,
// and this batch's first job came within BatchTimeout of that run's
// end: the clients answered then will most likely send again, though a
// fast model's clients spend most of their cycle outside the server,
// unseen by admission). A lone request on an idle server runs at once;
// while the sessions are busy, the queue gathers the next batches.
type batcher struct {
	pool    *pool
	jobs    chan *job // bounded by admission: never more than its places
	wait    time.Duration
	quit    chan struct{}
	mu      sync.Mutex // guards closed against enqueue
	closed  bool
	workers sync.WaitGroup
	idle    atomic.Int32      // workers waiting for the first job of a batch
	held    atomic.Int32      // jobs taken off the queue, not finished
	observe func(samples int) // after each run (tests); may be nil
}

func newBatcher(p *pool, opt Options) *batcher {
	b := &batcher{pool: p, jobs: make(chan *job, opt.places()), wait: opt.BatchTimeout, quit: make(chan struct{})}
	for _, s := range p.all {
		b.workers.Add(1)
		go b.work(s)
	}
	return b
}

// run queues j and waits for its end or ctx's.
func (b *batcher) run(ctx context.Context, j *job) error {
	j.ctx, j.arrived, j.done = ctx, time.Now(), make(chan struct{})
	b.mu.Lock()
	closed := b.closed
	if !closed {
		select {
		case b.jobs <- j:
			b.pool.metrics.queued.Inc()
		default: // admission bounds the queue: cannot happen, but never block
			b.mu.Unlock()
			return errorf(http.StatusTooManyRequests, "the batch queue is full")
		}
	}
	b.mu.Unlock()
	if closed {
		return errorf(http.StatusServiceUnavailable, "the server is shutting down")
	}
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		return waitError(ctx, "a batch")
	}
}

// waitError is the 503 of a request whose context ended while it waited.
func waitError(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errorf(http.StatusServiceUnavailable, "timed out waiting for %s", what)
	}
	return errorf(http.StatusServiceUnavailable, "request canceled while waiting for %s: %v", what, ctx.Err())
}

// finish ends j with err (nil: its outputs are complete), once.
func (b *batcher) finish(j *job, err error) {
	if j.finished {
		return
	}
	if j.taken {
		b.held.Add(-1)
	}
	j.finished, j.err = true, err
	close(j.done)
}

// coming says whether waiting for more jobs can pay: no other worker is
// idle, and the batch has fewer jobs than a busy spell promises, or
// requests are admitted beyond those queued or held.
func (b *batcher) coming(bt *batch) bool {
	return b.idle.Load() == 0 && (len(bt.segs) < bt.want || b.pool.metrics.admitted.Load() > int64(len(b.jobs))+int64(b.held.Load()))
}

// spell is a worker's last run: the requests admitted when it began
// (its jobs, those queued, those being read or answered) and when it
// ended.
type spell struct {
	admitted int
	end      time.Time
}

// segment is samples off to off+k of a job, placed in one batch.
type segment struct {
	j      *job
	off, k int
}

// batch is the segments one run computes, and the latest time it may
// start: wait after its first job arrived or free, the later.
type batch struct {
	segs     []segment
	n        int
	free     time.Time // when the worker began collecting it
	last     spell     // the worker's previous batch
	want     int       // in a busy spell, the jobs worth waiting for; else 0
	deadline time.Time
}

// add places as many of j's remaining samples as fit and says whether
// some are left (j is then the worker's carry).
func (bt *batch) add(j *job, size int, wait time.Duration) bool {
	k := min(j.n-j.next, size-bt.n)
	bt.segs = append(bt.segs, segment{j, j.next, k})
	j.next += k
	bt.n += k
	if bt.deadline.IsZero() {
		if bt.last.admitted > 1 && j.arrived.Sub(bt.last.end) < wait {
			bt.want = bt.last.admitted
		}
		bt.deadline = j.arrived
		if bt.free.After(j.arrived) {
			bt.deadline = bt.free
		}
		bt.deadline = bt.deadline.Add(wait)
	}
	return j.next < j.n
}

func (b *batcher) work(s *edgeresnet.Session) {
	defer b.workers.Done()
	var carry *job
	var last spell
	for {
		bt, next, ok := b.collect(s.Batch(), carry, last)
		if !ok {
			return
		}
		admitted := int(b.pool.metrics.admitted.Load())
		b.runBatch(s, bt)
		carry, last = next, spell{admitted, time.Now()}
	}
}

// collect fills a batch: the carry's samples, then queued jobs until the
// batch is full, or none is queued and waiting cannot pay (coming), or
// its deadline passed; last is the worker's previous batch. ok is false
// when the batcher is closed and the batch is empty.
func (b *batcher) collect(size int, carry *job, last spell) (bt *batch, next *job, ok bool) {
	bt = &batch{free: time.Now(), last: last}
	if carry != nil && !carry.finished && carry.ctx.Err() == nil {
		if bt.add(carry, size, b.wait) {
			return bt, carry, true
		}
	} else if carry != nil {
		b.finish(carry, waitError(carry.ctx, "the rest of its batches"))
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for bt.n < size {
		j, open := b.take(bt, &timer)
		if j == nil {
			return bt, nil, open || bt.n > 0
		}
		if j.ctx.Err() != nil { // gave up while queued: do not run it
			b.finish(j, waitError(j.ctx, "a batch"))
			continue
		}
		if bt.add(j, size, b.wait) {
			return bt, j, true
		}
	}
	return bt, nil, true
}

// take is the next queued job: waited for without limit by an empty
// batch; by a started one, taken if queued, else waited for until the
// deadline while more jobs are coming. nil when the batch should run
// (open true) or the batcher closed (open false).
func (b *batcher) take(bt *batch, timer **time.Timer) (j *job, open bool) {
	if bt.n == 0 {
		b.idle.Add(1)
		defer b.idle.Add(-1)
		select {
		case j := <-b.jobs:
			return b.dequeued(j), true
		case <-b.quit:
			return nil, false
		}
	}
	select {
	case j := <-b.jobs:
		return b.dequeued(j), true
	default:
	}
	if !b.coming(bt) || !time.Now().Before(bt.deadline) {
		return nil, true
	}
	if *timer == nil {
		*timer = time.NewTimer(time.Until(bt.deadline))
	}
	select {
	case j := <-b.jobs:
		return b.dequeued(j), true
	case <-(*timer).C:
		return nil, true
	case <-b.quit:
		return nil, false
	}
}

func (b *batcher) dequeued(j *job) *job {
	b.pool.metrics.queued.Dec()
	b.held.Add(1)
	j.taken = true
	return j
}

// runBatch fills the session with the batch's samples, runs them at once
// and gives each job its outputs. A job whose samples fail to fill (a
// bad image) fails alone; when the run fails with several jobs in it (one
// job's NaN input makes the output non-finite), each runs alone, so that
// the error is its own job's.
func (b *batcher) runBatch(s *edgeresnet.Session, bt *batch) {
	var live []segment
	slot := 0
	for _, g := range bt.segs {
		if g.j.finished {
			continue
		}
		if err := fill(s, g.j, g.off, g.k, slot); err != nil {
			b.finish(g.j, runError(err))
			continue
		}
		live = append(live, g)
		slot += g.k
	}
	if slot == 0 {
		return
	}
	out, err := s.RunBatch(slot)
	if err != nil && len(live) > 1 && !errors.Is(err, edgeresnet.ErrClosed) {
		for _, g := range live {
			b.runBatch(s, &batch{segs: []segment{g}, n: g.k})
		}
		return
	}
	if err == nil {
		b.pool.metrics.batch.Observe(float64(slot))
		if b.observe != nil {
			b.observe(slot)
		}
	}
	total := slot
	slot = 0
	for _, g := range live {
		switch {
		case err != nil:
			b.finish(g.j, runError(err))
		default:
			g.j.collect(s, out, total, slot, g.off, g.k)
			if g.off+g.k == g.j.n {
				b.finish(g.j, nil)
			}
		}
		slot += g.k
	}
}

// close stops the workers after their batches in progress, fails the
// jobs still queued (503) and closes the sessions.
func (b *batcher) close() {
	b.mu.Lock()
	was := b.closed
	b.closed = true
	b.mu.Unlock()
	if !was {
		close(b.quit)
		b.workers.Wait()
	}
	for {
		select {
		case j := <-b.jobs:
			b.pool.metrics.queued.Dec()
			b.finish(j, errorf(http.StatusServiceUnavailable, "the server is shutting down"))
		default:
			b.pool.close()
			return
		}
	}
}
