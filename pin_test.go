package edgeresnet

import (
	"errors"
	"runtime"
	"slices"
	"testing"
)

// TestPinning checks WithPinning: one-thread sessions of a process take
// distinct CPUs while there are enough, a closed session's CPU goes back
// to the pool, the results equal an unbound session's, and more threads
// than CPUs is refused.
func TestPinning(t *testing.T) {
	if runtime.GOOS != "linux" {
		m, _ := Default()
		if _, err := m.NewSession(WithPinning()); err == nil {
			t.Fatal("WithPinning accepted off Linux")
		}
		return
	}
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	cpus := CPU().CPUs
	ref, err := m.NewSession(WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(runFixed(t, ref))
	var sessions []*Session
	var used []int
	for range len(cpus) {
		s, err := m.NewSession(WithThreads(1), WithPinning())
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
		used = append(used, s.cpus...)
		if got := runFixed(t, s); !slices.Equal(got, want) {
			t.Errorf("bound to %v: logits differ", s.cpus)
		}
	}
	if slices.Sort(used); !slices.Equal(used, slices.Sorted(slices.Values(cpus))) {
		t.Errorf("%d one-thread sessions bound to %v, this process has CPUs %v", len(cpus), used, cpus)
	}
	freed := sessions[0].cpus[0]
	sessions[0].Close()
	s, err := m.NewSession(WithThreads(1), WithPinning())
	if err != nil {
		t.Fatal(err)
	}
	if s.cpus[0] != freed {
		t.Errorf("after closing the session on CPU %d, a new one took CPU %d", freed, s.cpus[0])
	}
	for _, s := range append(sessions[1:], s) {
		s.Close()
	}
	if _, err := m.NewSession(WithThreads(len(cpus)+1), WithPinning()); !errors.Is(err, ErrInput) {
		t.Errorf("%d threads on %d CPUs: %v", len(cpus)+1, len(cpus), err)
	}
}

// runFixed runs s on a fixed input and returns its logits.
func runFixed(t *testing.T, s *Session) []float32 {
	t.Helper()
	in := s.Input()
	for i := range in {
		in[i] = float32(i%11)/5 - 1
	}
	out, err := s.RunBatch(1)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
