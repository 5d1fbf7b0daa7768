package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	edgeresnet "github.com/edge-resnet/edge-resnet"
)

// batchFixture is a model served with batching, its served view, and a
// batch-1 session for reference logits.
func batchFixture(t *testing.T, opt Options) (*served, *edgeresnet.Session) {
	t.Helper()
	m, err := edgeresnet.Default()
	if err != nil {
		t.Fatal(err)
	}
	opt.Sessions, opt.ThreadsPerSession = 1, 1
	m0, err := newServed(Named{Name: "m", Model: m}, opt.withDefaults(), newMetrics().model("m", DefaultVersion))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := m.NewSession(edgeresnet.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m0.runner.close(); ref.Close(); m.Close() })
	return m0, ref
}

// sample is a deterministic input; poison puts a NaN in it.
func sample(seed int, poison bool) []float32 {
	x := make([]float32, 784)
	for i := range x {
		x[i] = float32(math.Sin(float64(i*(seed+3)) * 0.1))
	}
	if poison {
		x[100] = float32(math.NaN())
	}
	return x
}

// pause stops b's worker (its session kept), so that jobs queue;
// resume starts it again.
func pause(b *batcher) {
	b.mu.Lock()
	close(b.quit)
	b.mu.Unlock()
	b.workers.Wait()
	b.quit = make(chan struct{})
}

func resume(b *batcher) {
	b.workers.Add(1)
	go b.work(b.pool.all[0])
}

// waitFor polls cond until it holds (a state another goroutine reaches
// without telling; no fixed sleep decides anything).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("still waiting for %s after a minute", what)
		}
	}
}

// TestBatcher queues jobs on a paused batcher whose batch is exactly
// their samples and whose timeout is long, then starts it, so they run
// as one batch: the batch sizes run are checked, and every job's logits
// are a batch-1 Session.Run's bit for bit. A NaN input fails its own
// job only.
func TestBatcher(t *testing.T) {
	for _, tc := range []struct {
		name     string
		samples  []int // per job
		poison   int   // job with a NaN, -1: none
		maxBatch int
		want     []int // batch sizes run
	}{
		{"three jobs, one batch", []int{1, 1, 1}, -1, 3, []int{3}},
		{"two jobs in one batch", []int{3, 2}, -1, 5, []int{5}},
		{"jobs larger than the batch", []int{3, 2}, -1, 2, []int{1, 2, 2}},
		{"a NaN fails its job alone", []int{1, 1, 1}, 1, 3, []int{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ref := batchFixture(t, Options{MaxBatch: tc.maxBatch, BatchTimeout: time.Second})
			var mu sync.Mutex
			var sizes []int
			b := m.runner.(*batcher)
			b.observe = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }
			pause(b)
			jobs := make([]*job, len(tc.samples))
			errs := make([]error, len(tc.samples))
			var wg sync.WaitGroup
			for i, n := range tc.samples {
				j := &job{in: m.in, n: n}
				for s := range n {
					j.tensor = append(j.tensor, sample(10*i+s, i == tc.poison)...)
				}
				jobs[i] = j
				wg.Go(func() { errs[i] = b.run(context.Background(), j) })
			}
			waitFor(t, "the jobs to queue", func() bool { return len(b.jobs) == len(jobs) })
			resume(b)
			wg.Wait()
			slices.Sort(sizes)
			if !slices.Equal(sizes, tc.want) {
				t.Errorf("batches of %v, want %v", sizes, tc.want)
			}
			for i, j := range jobs {
				if i == tc.poison {
					if he, ok := errs[i].(*httpError); !ok || he.status != http.StatusBadRequest || !strings.Contains(he.msg, "NaN") {
						t.Errorf("job %d (NaN): %v, want a 400 naming the NaN", i, errs[i])
					}
					continue
				}
				if errs[i] != nil {
					t.Fatalf("job %d: %v", i, errs[i])
				}
				for s := range j.n {
					want, err := ref.Run(j.tensor[s*784 : (s+1)*784]) // 1x28x28: NCHW is NHWC
					if err != nil {
						t.Fatal(err)
					}
					if got := j.outs[0][s*10 : (s+1)*10]; !sameBits(got, want) {
						t.Errorf("job %d sample %d: %v, Session.Run %v", i, s, got, want)
					}
				}
			}
		})
	}
}

func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestBatcherTimeout: a job that waits longer than its context gets 503,
// and is not run when a worker takes it later; the next job runs.
func TestBatcherTimeout(t *testing.T) {
	m, _ := batchFixture(t, Options{MaxBatch: 2})
	b := m.runner.(*batcher)
	pause(b)
	var runs []int
	b.observe = func(n int) { runs = append(runs, n) }

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := b.run(ctx, &job{in: m.in, n: 1, tensor: sample(0, false)})
	if he, ok := err.(*httpError); !ok || he.status != http.StatusServiceUnavailable || !strings.Contains(he.msg, "timed out") {
		t.Fatalf("%v, want a 503 timeout", err)
	}
	resume(b)
	if err := b.run(context.Background(), &job{in: m.in, n: 1, tensor: sample(1, false)}); err != nil {
		t.Fatal(err)
	}
	b.close()
	if !slices.Equal(runs, []int{1}) {
		t.Errorf("runs of %v, want one of 1 sample (the timed-out job not run)", runs)
	}
}

// TestBatcherLoneJob: a job alone on an idle batcher runs at once, not
// after the batch timeout (an hour here: the old batcher waited it out,
// and the job's minute ran out first).
func TestBatcherLoneJob(t *testing.T) {
	m, _ := batchFixture(t, Options{MaxBatch: 8})
	b := m.runner.(*batcher)
	b.wait = time.Hour // past Options' bound: set after the checks
	var runs []int
	b.observe = func(n int) { runs = append(runs, n) }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 3 { // a new one each time: the session is idle again
		b.pool.metrics.admitted.Add(1) // as the handler counts it
		err := b.run(ctx, &job{in: m.in, n: 1, tensor: sample(i, false)})
		b.pool.metrics.admitted.Add(-1)
		if err != nil {
			t.Fatalf("job %d: %v, want it run at once", i, err)
		}
	}
	if !slices.Equal(runs, []int{1, 1, 1}) {
		t.Errorf("runs of %v, want three of 1", runs)
	}
}

// TestBatcherGathers: a worker with a partial batch waits for more jobs
// while they are on their way: while more requests are admitted than
// queued or held (one still being read), or in a busy spell (two
// requests were admitted when its last run began, none now) until it has
// as many jobs. The timeout is an hour: the batch runs when the second
// job comes, not before and not after, and the two run as one batch.
func TestBatcherGathers(t *testing.T) {
	for _, spell := range []bool{false, true} {
		t.Run(fmt.Sprintf("busy spell %v", spell), func(t *testing.T) {
			m, _ := batchFixture(t, Options{MaxBatch: 8})
			b := m.runner.(*batcher)
			b.wait = time.Hour
			var mu sync.Mutex
			var runs []int
			b.observe = func(n int) { mu.Lock(); runs = append(runs, n); mu.Unlock() }
			if spell { // two jobs queued at once make the last batch
				b.pool.metrics.admitted.Store(2)
				pause(b)
				errs := make(chan error, 2)
				for i := range 2 {
					go func() { errs <- b.run(context.Background(), &job{in: m.in, n: 1, tensor: sample(i, false)}) }()
				}
				waitFor(t, "two jobs to queue", func() bool { return len(b.jobs) == 2 })
				resume(b)
				for range 2 {
					if err := <-errs; err != nil {
						t.Fatal(err)
					}
				}
				b.pool.metrics.admitted.Store(0)
			} else {
				b.pool.metrics.admitted.Store(2)
			}
			first := make(chan error, 1)
			go func() { first <- b.run(context.Background(), &job{in: m.in, n: 1, tensor: sample(2, false)}) }()
			waitFor(t, "the worker to take the next job", func() bool { return b.held.Load() == 1 })
			select {
			case err := <-first:
				t.Fatalf("the job ended (%v) while another was on its way", err)
			default:
			}
			if err := b.run(context.Background(), &job{in: m.in, n: 1, tensor: sample(3, false)}); err != nil {
				t.Fatal(err)
			}
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := runs[len(runs)-1]; got != 2 || spell && !slices.Equal(runs, []int{2, 2}) {
				t.Errorf("runs of %v, want the last of 2 (and, in a busy spell, two of 2)", runs)
			}
		})
	}
}

// TestLoneRequestServed: through the handler (its admission counted), a
// lone request to a batching server runs at once, not after the batch
// timeout (an hour, set past Options' bound after New), three times over.
func TestLoneRequestServed(t *testing.T) {
	m, err := edgeresnet.Default()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := New([]Named{{Name: "m", Model: m}}, Options{Sessions: 1, ThreadsPerSession: 1, MaxBatch: 8, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v := s.models["m"].latest().cur.Load()
	v.runner.(*batcher).wait = time.Hour
	body, err := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": v.in.name, "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": sample(0, false)}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v2/models/m/infer", bytes.NewReader(body)))
		if w.Code != http.StatusOK {
			t.Fatalf("request %d: %d %s, want 200 at once", i, w.Code, w.Body)
		}
	}
}
