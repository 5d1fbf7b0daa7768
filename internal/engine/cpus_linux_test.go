//go:build linux

package engine

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/resnet"
)

// TestRankCPUs reads a fake sysfs: big.LITTLE capacities (RK3588-like:
// four A55 of capacity 414 and four A76 of 1024), clocks where there is
// no capacity, and neither.
func TestRankCPUs(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []int
		speed []int64
	}{
		{"capacity", map[string]string{"cpu0/cpu_capacity": "414", "cpu1/cpu_capacity": "414", "cpu4/cpu_capacity": "1024\n", "cpu5/cpu_capacity": "1024"},
			[]int{4, 5, 0, 1}, []int64{1024, 1024, 414, 414}},
		{"clock", map[string]string{"cpu0/cpufreq/cpuinfo_max_freq": "1800000", "cpu1/cpufreq/cpuinfo_max_freq": "2208000",
			"cpu4/cpufreq/cpuinfo_max_freq": "1800000", "cpu5/cpufreq/cpuinfo_max_freq": "2208000"},
			[]int{1, 5, 0, 4}, []int64{2208000, 2208000, 1800000, 1800000}},
		{"nothing or garbage", map[string]string{"cpu0/cpu_capacity": "big"}, []int{0, 1, 4, 5}, []int64{1, 1, 1, 1}},
	}
	keep := sysCPU
	defer func() { sysCPU = keep }()
	for _, tc := range cases {
		sysCPU = t.TempDir()
		for f, v := range tc.files {
			p := filepath.Join(sysCPU, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cpus, speed := rankCPUs([]int{0, 1, 4, 5})
		if !slices.Equal(cpus, tc.want) || !slices.Equal(speed, tc.speed) {
			t.Errorf("%s: %v %v, want %v %v", tc.name, cpus, speed, tc.want, tc.speed)
		}
	}
}

// TestPinnedTeam runs a team bound to CPUs: every part runs on a thread
// bound to the CPU of the worker that ran it (the caller's thread, bound
// by Exec.run, is left alone here), and the binding ends with the team.
func TestPinnedTeam(t *testing.T) {
	cpus, _, err := CPUSpeeds()
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) < 2 {
		t.Skipf("this process may use %d CPU(s): binding workers to distinct CPUs needs 2", len(cpus))
	}
	n := min(len(cpus), 4)
	var mu sync.Mutex
	seen := map[string]int{}
	tm := newTeam(n, func(task, part int) {
		time.Sleep(100 * time.Microsecond) // long enough for the workers to claim parts
		got := threadCPUs()
		mu.Lock()
		seen[fmt.Sprint(got)]++
		mu.Unlock()
	}, cpus[:n])
	// Until a worker has run a part (on a loaded machine the caller may
	// run them all for a while).
	for task := 0; task < 20000; task++ {
		tm.do(task)
		mu.Lock()
		k := len(seen)
		mu.Unlock()
		if k >= 2 && task >= 50 {
			break
		}
	}
	tm.close()
	for set := range seen {
		ok := set == fmt.Sprint(threadCPUs()) // the caller's own parts
		for _, c := range cpus[:n] {
			ok = ok || set == fmt.Sprint([]int{c})
		}
		if !ok {
			t.Errorf("a part ran on a thread bound to %s; workers were bound to one of %v", set, cpus[:n])
		}
	}
	if len(seen) < 2 {
		t.Errorf("parts ran on thread sets %v only", seen)
	}
}

// TestExecOnChecks checks NewExecOn's refusals and that a bound Exec
// computes what an unbound one does, leaving the caller's thread as it
// was.
func TestExecOnChecks(t *testing.T) {
	g, err := resnet.Build(resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, Width: 8}, randomWeights(6))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(g)
	if err != nil {
		t.Fatal(err)
	}
	cpus, _, _ := CPUSpeeds()
	for _, bad := range [][]int{{cpus[0]}, {cpus[0], cpus[0]}, {cpus[0], 4096}} {
		if _, err := NewExecOn(p, 2, bad); err == nil {
			t.Errorf("NewExecOn(2 threads, %v) accepted", bad)
		}
	}
	before := threadCPUs()
	in := randInput(rand.New(rand.NewPCG(7, 7)), p.Graph.Input().Size())
	ref, _ := NewExec(p, 1)
	want, _ := ref.Run(in)
	want = slices.Clone(want)
	e, err := NewExecOn(p, 1, cpus[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got, err := e.Run(in)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("bound run: %v, equal %v", err, slices.Equal(got, want))
	}
	if after := threadCPUs(); !slices.Equal(after, before) {
		t.Errorf("the caller's thread ended bound to %v, was %v", after, before)
	}
}
