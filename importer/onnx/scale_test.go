package onnx

import (
	"fmt"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/internal/engine"
)

// chainModel is a graph of n nodes in a line, Relu and Add alternating
// (each Add reads the two values before it), on a small input.
func chainModel(n int) []byte {
	m := newModel(13)
	m.input(vinfo("x", dtFloat, 1, 3, 4, 4))
	prev, prev2 := "x", "x"
	for i := range n {
		out := fmt.Sprintf("v%d", i)
		if i%2 == 0 {
			m.node(node("Relu", "", io(prev), io(out)))
		} else {
			m.node(node("Add", "", io(prev, prev2), io(out)))
		}
		prev2, prev = prev, out
	}
	m.output(prev)
	return m.bytes()
}

// The whole load of a long graph (import, fusion, plan) grows as
// O(n log n): 80,000 nodes took 11.6 s with the quadratic arena planner,
// and now well under a second. 8 times the nodes cost about 10 times the
// time where a quadratic step would make it 64; the bound, 20 times (plus
// a little for noise on a small base), leaves room for a busy machine.
// Each size is timed at its best of three.
func TestLoadScales(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	load := func(data []byte) (time.Duration, int) {
		best, nodes := time.Duration(1<<62), 0
		for range 3 {
			t0 := time.Now()
			g, _, err := Import(data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := engine.Compile(g) // fuses, then plans
			if err != nil {
				t.Fatal(err)
			}
			best, nodes = min(best, time.Since(t0)), len(p.Graph.Nodes)
		}
		return best, nodes
	}
	small, n1 := load(chainModel(10_000))
	large, n2 := load(chainModel(80_000))
	t.Logf("%d nodes: %v; %d nodes: %v (%.1fx)", n1, small, n2, large, float64(large)/float64(small))
	if n2 != 80_001 {
		t.Fatalf("the plan has %d nodes, want 80,001", n2)
	}
	if large > 20*small+100*time.Millisecond || large > 10*time.Second {
		t.Errorf("loading 80,000 nodes takes %v, 10,000 take %v: not O(n log n)", large, small)
	}
}
