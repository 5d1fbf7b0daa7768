package engine

import (
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/edge-resnet/edge-resnet/resnet"
)

// memStore is a TuneStore in memory that counts its calls.
type memStore struct {
	mu        sync.Mutex
	m         map[string]TuneResult
	gets, put int
}

func (s *memStore) Get(sig string) (TuneResult, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	r, ok := s.m[sig]
	return r, ok
}

func (s *memStore) Put(sig string, r TuneResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put++
	if s.m == nil {
		s.m = map[string]TuneResult{}
	}
	s.m[sig] = r
}

// choices lists the Choice of every step that has one.
func choices(p *Plan) []string {
	var out []string
	for _, s := range p.Steps() {
		if s.Choice != "" {
			out = append(out, s.Kernel+": "+s.Choice)
		}
	}
	return out
}

// TestTuning checks the modes on a CIFAR ResNet whose 3x3 stride-1 convs
// have several candidates: measuring times each layer's candidates and
// stores one result per layer shape; cached reads them back without
// measuring; a stored choice is obeyed; cached without a measurement,
// and off, take the policy. Every plan computes the graph's function
// (within Winograd's rounding) at 1, 2 and 3 threads.
func TestTuning(t *testing.T) {
	g, err := resnet.Build(resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 8, Height: 16, Width: 16}, randomWeights(3))
	if err != nil {
		t.Fatal(err)
	}
	in := randInput(rand.New(rand.NewPCG(1, 2)), g.Input().Size())
	want, _ := g.Eval(in)
	tol := 1e-4 * maxAbs(want)
	store := &memStore{}
	compile := func(mode TuneMode, threads int) *Plan {
		t.Helper()
		p, err := CompileWith(g, CompileOptions{Tune: &Tuning{Mode: mode, Store: store, Threads: threads}})
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, p, in, want, tol)
		return p
	}
	p := compile(TuneMeasure, 2)
	n := count3x3s1(p)
	got := choices(p)
	if len(got) != n || n == 0 {
		t.Fatalf("%d steps with a choice, %d 3x3 stride-1 convs: %q", len(got), n, got)
	}
	measured := 0
	for _, c := range got {
		// A layer whose shape an earlier one had reads its measurement.
		if !(strings.Contains(c, "measured: ") || strings.Contains(c, "cached: ")) || !strings.Contains(c, "gemm ") || !strings.Contains(c, "winograd4 ") {
			t.Errorf("measured step: %q", c)
		}
		if strings.Contains(c, "measured: ") {
			measured++
		}
	}
	if measured != len(store.m) {
		t.Errorf("%d steps measured, %d layer shapes", measured, len(store.m))
	}
	if len(store.m) == 0 || store.put != len(store.m) || len(store.m) >= n {
		t.Errorf("%d results stored by %d puts for %d layers (shapes repeat)", len(store.m), store.put, n)
	}
	stored := maps.Clone(store.m)
	puts := store.put
	for _, c := range choices(compile(TuneCached, 2)) {
		if !strings.Contains(c, "cached: ") {
			t.Errorf("cached step: %q", c)
		}
	}
	compile(TuneMeasure, 2) // every layer stored: nothing measured
	if store.put != puts || !maps.EqualFunc(store.m, stored, func(a, b TuneResult) bool { return a.Choice == b.Choice }) {
		t.Errorf("measured again: %d puts after %d", store.put, puts)
	}
	for sig, r := range store.m {
		r.Choice = "gemm"
		store.m[sig] = r
	}
	if p := compile(TuneCached, 1); winogradSteps(p, 0) != 0 {
		t.Errorf("stored choice gemm, plan has %d Winograd steps", winogradSteps(p, 0))
	}
	store.m = nil
	for _, c := range choices(compile(TuneCached, 1)) {
		if !strings.HasSuffix(c, ": policy (not measured)") {
			t.Errorf("cached without a measurement: %q", c)
		}
	}
	for _, c := range choices(compile(TuneOff, 1)) {
		if !strings.HasSuffix(c, ": policy") {
			t.Errorf("off: %q", c)
		}
	}
}

// TestTuningSkipsForcedWinograd checks that a forced algorithm is not
// tuned: one candidate, no measurement.
func TestTuningSkipsForcedWinograd(t *testing.T) {
	g, err := resnet.Build(resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, Width: 8}, randomWeights(4))
	if err != nil {
		t.Fatal(err)
	}
	store := &memStore{}
	p, err := CompileWith(g, CompileOptions{Winograd: 2, Tune: &Tuning{Mode: TuneMeasure, Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	if store.put != 0 || len(choices(p)) != 0 || winogradSteps(p, 2) != count3x3s1(p) {
		t.Errorf("forced F(2x2): %d puts, choices %q", store.put, choices(p))
	}
}
