package edgeresnet

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/kernels"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// mappedDefault writes the built-in model to a file and loads it from
// there, so that its weights live in a file mapping (where the platform
// maps), as for any model image a user loads.
func mappedDefault(t testing.TB) (*Model, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "default.ern")
	if err := os.WriteFile(path, defaultImage, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m, path
}

// inputs returns n distinct inputs for s and their outputs, computed by a
// separate session of the same model.
func inputs(t testing.TB, m *Model, n int) (ins, outs [][]float32) {
	t.Helper()
	ref, err := m.NewSession(WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	size := len(ref.Input())
	for i := range n {
		in := make([]float32, size)
		for j := range in {
			in[j] = float32(math.Sin(float64(i*size+j))) * 2
		}
		out, err := ref.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		ins, outs = append(ins, in), append(outs, append([]float32(nil), out...))
	}
	return ins, outs
}

// TestSessionConcurrentMisuse calls one session from several goroutines at
// once: every call either returns exactly the right output or ErrBusy, and
// none hangs.
func TestSessionConcurrentMisuse(t *testing.T) {
	m, _ := mappedDefault(t)
	defer m.Close()
	ins, outs := inputs(t, m, 4)
	for _, threads := range []int{1, 2} {
		t.Run("threads="+string(rune('0'+threads)), func(t *testing.T) {
			s, err := m.NewSession(WithThreads(threads))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const perG = 150
			var ok, busy, wrong atomic.Int64
			var wg sync.WaitGroup
			done := make(chan struct{})
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					dst := make([]float32, len(outs[g]))
					for range perG {
						err := s.RunInto(dst, ins[g])
						switch {
						case errors.Is(err, ErrBusy):
							busy.Add(1)
						case err != nil:
							t.Error(err)
							return
						case maxDiff(dst, outs[g]) != 0:
							wrong.Add(1)
						default:
							ok.Add(1)
						}
					}
				}()
			}
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("concurrent RunInto hangs")
			}
			t.Logf("%d right, %d ErrBusy, %d wrong", ok.Load(), busy.Load(), wrong.Load())
			if wrong.Load() != 0 || ok.Load() == 0 {
				t.Fatalf("%d wrong outputs, %d right", wrong.Load(), ok.Load())
			}
			// The session still works after the contention.
			out, err := s.Run(ins[0])
			if err != nil || maxDiff(out, outs[0]) != 0 {
				t.Fatalf("after contention: %v", err)
			}
		})
	}
}

// TestRunAfterClose: every call after Session.Close or Model.Close returns
// ErrClosed at once (at 1 and 2 threads), instead of running on stopped
// workers or unmapped weights.
func TestRunAfterClose(t *testing.T) {
	for _, threads := range []int{1, 2} {
		m, _ := mappedDefault(t)
		in, _ := inputs(t, m, 1)
		s, err := m.NewSession(WithThreads(threads))
		if err != nil {
			t.Fatal(err)
		}
		s2, err := m.NewSession(WithThreads(threads))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s.Close() // twice is fine
		expectClosed(t, "after Session.Close", s, in[0])
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, "after Model.Close", s2, in[0])
		if _, err := m.NewSession(); !errors.Is(err, ErrClosed) {
			t.Fatalf("NewSession after Model.Close: %v, want ErrClosed", err)
		}
		if err := m.WriteFile(filepath.Join(t.TempDir(), "x.ern")); !errors.Is(err, ErrClosed) {
			t.Fatalf("WriteFile after Model.Close: %v, want ErrClosed", err)
		}
		s2.Close()
		if err := m.Close(); err != nil {
			t.Fatalf("second Model.Close: %v", err)
		}
	}
}

func expectClosed(t *testing.T, what string, s *Session, in []float32) {
	t.Helper()
	t0 := time.Now()
	_, err := s.Run(in)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Run %s: %v, want ErrClosed", what, err)
	}
	if _, err := s.RunNCHW([]int{1, 1, 28, 28}, in); !errors.Is(err, ErrClosed) {
		t.Fatalf("RunNCHW %s: %v, want ErrClosed", what, err)
	}
	if err := s.RunInto(make([]float32, 10), in); !errors.Is(err, ErrClosed) {
		t.Fatalf("RunInto %s: %v, want ErrClosed", what, err)
	}
	if s.TopK(make([]float32, 10), 3) != nil {
		t.Fatalf("TopK %s: want nil", what)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("ErrClosed %s took %v", what, d)
	}
}

// TestModelCloseDuringRuns closes a mapped model while sessions are running
// on other goroutines: Close waits for the runs in progress, later runs get
// ErrClosed, and nothing reads the unmapped weights.
func TestModelCloseDuringRuns(t *testing.T) {
	for _, threads := range []int{1, 2} {
		m, _ := mappedDefault(t)
		ins, outs := inputs(t, m, 2)
		var wg sync.WaitGroup
		var closedSeen atomic.Int64
		for g := range 2 {
			s, err := m.NewSession(WithThreads(threads))
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer s.Close()
				dst := make([]float32, len(outs[g]))
				for {
					err := s.RunInto(dst, ins[g])
					if errors.Is(err, ErrClosed) {
						closedSeen.Add(1)
						return
					}
					if err != nil || maxDiff(dst, outs[g]) != 0 {
						t.Errorf("run: %v", err)
						return
					}
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if closedSeen.Load() != 2 {
			t.Fatalf("%d of 2 sessions saw ErrClosed", closedSeen.Load())
		}
	}
}

// TestOpenCloseCycles loads, runs and closes a mapped model 1,000 times
// (-short, as under the race detector and qemu: 50) and checks that goroutines, file descriptors and mappings
// come back to where they started.
func TestOpenCloseCycles(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 50
	}
	path := filepath.Join(t.TempDir(), "default.ern")
	if err := os.WriteFile(path, defaultImage, 0o644); err != nil {
		t.Fatal(err)
	}
	cycle := func() {
		m, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := m.NewSession(WithThreads(2))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Run(nil); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cycle()
	settle := func() {
		for range 50 {
			runtime.GC()
			time.Sleep(2 * time.Millisecond)
		}
	}
	settle()
	g0, fd0, maps0 := runtime.NumGoroutine(), countDir("/proc/self/fd"), countLines("/proc/self/maps")
	for range n {
		cycle()
	}
	settle()
	g1, fd1, maps1 := runtime.NumGoroutine(), countDir("/proc/self/fd"), countLines("/proc/self/maps")
	t.Logf("%d cycles: goroutines %d -> %d, fds %d -> %d, mappings %d -> %d", n, g0, g1, fd0, fd1, maps0, maps1)
	if g1 > g0 {
		t.Errorf("goroutines leak: %d -> %d", g0, g1)
	}
	if fd1 > fd0 {
		t.Errorf("file descriptors leak: %d -> %d", fd0, fd1)
	}
	// The Go heap may map a few more arenas; a leak per cycle would be n.
	if maps1 > maps0+20 {
		t.Errorf("mappings leak: %d -> %d", maps0, maps1)
	}
}

// countDir and countLines return -1 where /proc does not exist.
func countDir(dir string) int {
	e, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	return len(e)
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	return strings.Count(string(b), "\n")
}

// TestMemoryBudget: a plan over the load budget or a session over its own
// fails with ErrBudget before the arena is allocated, naming the sizes,
// the budget and the largest tensors; a budget that fits works.
func TestMemoryBudget(t *testing.T) {
	cfg, err := ParseArch("cifar-resnet20")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Height, cfg.Width = 256, 256
	g, err := resnet.Build(cfg, resnet.HeInit(1))
	if err != nil {
		t.Fatal(err)
	}
	fm := &firmware.Model{Graph: g}
	_, err = FromModel(fm, LoadMaxMemory(1<<20))
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("1 MiB budget: %v, want ErrBudget", err)
	}
	for _, want := range []string{"budget is 1.0 MiB", "largest tensors", "256x256x16", "activations"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	m, err := FromModel(fm, LoadMaxMemory(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	need := m.Plan().MemoryBytes(2)
	if _, err := m.NewSession(WithThreads(2), WithMaxMemory(need-1)); !errors.Is(err, ErrBudget) {
		t.Fatalf("session budget %d < need %d: %v, want ErrBudget", need-1, need, err)
	}
	s, err := m.NewSession(WithThreads(2), WithMaxMemory(need))
	if err != nil {
		t.Fatalf("session budget = need: %v", err)
	}
	s.Close()
	// More threads need more scratch: the budget counts them.
	if _, err := m.NewSession(WithThreads(8), WithMaxMemory(need)); !errors.Is(err, ErrBudget) {
		t.Fatalf("8 threads in a 2-thread budget: %v, want ErrBudget", err)
	}
	if s, err := m.NewSession(WithThreads(8), WithMaxMemory(0)); err != nil {
		t.Fatalf("no limit: %v", err)
	} else {
		s.Close()
	}
	// Evaluate's parallel sessions: as many as fit together.
	p := m.Plan()
	m2, err := FromModel(fm, LoadMaxMemory(p.WeightBytes()+5*p.ArenaBytes(1)/2))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if n, err := m2.sessionsThatFit(PrecisionAuto, 8); err != nil || n != 2 {
		t.Fatalf("sessionsThatFit = %d, %v; want 2", n, err)
	}
}

func TestBudgetFor(t *testing.T) {
	const mib, gib = int64(1 << 20), int64(1 << 30)
	for _, c := range []struct{ phys, want int64 }{
		{0, 4 * gib},
		{512 * mib, 256 * mib},
		{4 * gib, 2 * gib},
		{8 * gib, 2 * gib},
		{24 * gib, 6 * gib},
		{256 * gib, 64 * gib},
	} {
		if got := budgetFor(c.phys); got != c.want {
			t.Errorf("budgetFor(%d) = %d, want %d", c.phys, got, c.want)
		}
	}
	if d := DefaultMaxMemory(); os.Getenv(EnvMaxMemory) == "" && d <= 0 {
		t.Errorf("DefaultMaxMemory() = %d", d)
	}
}

// TestNonFiniteOutput: NaN or Inf in the input reach the output; Run and
// Classify report ErrNonFinite instead of a prediction.
func TestNonFiniteOutput(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession(WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		in := make([]float32, len(s.Input()))
		in[100] = v
		if _, err := s.Run(in); !errors.Is(err, ErrNonFinite) {
			t.Errorf("input with %v: %v, want ErrNonFinite", v, err)
		}
		if _, err := s.RunNCHW([]int{1, 1, 28, 28}, in); !errors.Is(err, ErrNonFinite) {
			t.Errorf("RunNCHW with %v: %v, want ErrNonFinite", v, err)
		}
	}
	if _, err := s.Run(make([]float32, len(s.Input()))); err != nil {
		t.Fatalf("finite input after non-finite ones: %v", err)
	}
}

// TestKernelsEnvRefused runs this test binary again with a bad
// EDGE_RESNET_KERNELS: the child checks that loads and sessions refuse it.
func TestKernelsEnvRefused(t *testing.T) {
	if os.Getenv("EDGE_RESNET_TEST_ENV_CHILD") == "1" {
		err := kernels.EnvError()
		if !errors.Is(err, ErrKernels) || !strings.Contains(err.Error(), "available: ") {
			t.Fatalf("EnvError() = %v", err)
		}
		if _, err := Default(); !errors.Is(err, ErrKernels) {
			t.Fatalf("Default() under a bad %s: %v", kernels.EnvKernels, err)
		}
		if _, err := LoadBytes(defaultImage); !errors.Is(err, ErrKernels) {
			t.Fatalf("LoadBytes under a bad %s: %v", kernels.EnvKernels, err)
		}
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary: runs in the full (non -short) run, not under qemu")
	}
	for _, v := range []string{"bogus", "neon-on-the-wrong-cpu", map[string]string{"amd64": "neon", "arm64": "avx2", "arm": "avx2"}[runtime.GOARCH]} {
		if v == "" {
			continue
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKernelsEnvRefused$", "-test.count=1")
		cmd.Env = append(os.Environ(), "EDGE_RESNET_TEST_ENV_CHILD=1", kernels.EnvKernels+"="+v)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s=%s: %v\n%s", kernels.EnvKernels, v, err, out)
		}
	}
}

// TestReadLabelsFileBounded: a labels file is read up to MaxLabelsBytes, so
// a device without end is an error, not a hang.
func TestReadLabelsFileBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "labels.txt")
	if err := os.WriteFile(path, []byte("cat\ndog\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := ReadLabelsFile(path); err != nil || len(l) != 2 || l[1] != "dog" {
		t.Fatalf("ReadLabelsFile = %q, %v", l, err)
	}
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	if _, err := ReadLabelsFile("/dev/zero"); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "/dev/zero") {
		t.Fatalf("/dev/zero: %v", err)
	}
}
