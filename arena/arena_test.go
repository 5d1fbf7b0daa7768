package arena

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"
)

func overlaps(a, b Tensor) bool { return a.First <= b.Last && b.First <= a.Last }

// checkLayout fails unless l places every tensor aligned, inside Total,
// and apart from every tensor whose lifetime overlaps its own.
func checkLayout(t *testing.T, ts []Tensor, l Layout) {
	t.Helper()
	if l.Total > l.Sum {
		t.Fatalf("total %d exceeds the no-reuse sum %d", l.Total, l.Sum)
	}
	for i := range ts {
		if l.Offsets[i]%Align != 0 || l.Offsets[i] < 0 || l.Offsets[i]+ts[i].Size > l.Total {
			t.Fatalf("tensor %d misplaced at %d (total %d)", i, l.Offsets[i], l.Total)
		}
	}
	// A sweep over time: the tensors live at each time, sorted by offset,
	// must not share bytes.
	type event struct{ time, i int }
	var starts []event
	for i, x := range ts {
		if x.Size > 0 {
			starts = append(starts, event{x.First, i})
		}
	}
	slices.SortFunc(starts, func(a, b event) int { return cmp.Compare(a.time, b.time) })
	var live []int
	for k := 0; k < len(starts); {
		now := starts[k].time
		live = slices.DeleteFunc(live, func(i int) bool { return ts[i].Last < now })
		for ; k < len(starts) && starts[k].time == now; k++ {
			live = append(live, starts[k].i)
		}
		slices.SortFunc(live, func(a, b int) int { return cmp.Compare(l.Offsets[a], l.Offsets[b]) })
		for j := 1; j < len(live); j++ {
			a, b := live[j-1], live[j]
			if l.Offsets[a]+ts[a].Size > l.Offsets[b] {
				t.Fatalf("live tensors %d %v at %d and %d %v at %d share memory", a, ts[a], l.Offsets[a], b, ts[b], l.Offsets[b])
			}
		}
	}
}

// planReference is the quadratic greedy-by-size best fit that Plan
// reproduces with an index over time: for each tensor, every placed one
// is checked for overlap.
func planReference(ts []Tensor) Layout {
	l := Layout{Offsets: make([]int64, len(ts))}
	order := make([]int, len(ts))
	for i, t := range ts {
		order[i] = i
		l.Sum += alignUp(t.Size)
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmp.Compare(ts[b].Size, ts[a].Size); c != 0 {
			return c
		}
		return ts[a].First - ts[b].First
	})
	var placed []int
	for _, i := range order {
		var busy []span
		for _, j := range placed {
			if overlaps(ts[i], ts[j]) {
				busy = append(busy, span{l.Offsets[j], l.Offsets[j] + alignUp(ts[j].Size)})
			}
		}
		l.Offsets[i] = bestFit(busy, alignUp(ts[i].Size))
		l.Total = max(l.Total, l.Offsets[i]+alignUp(ts[i].Size))
		placed = append(placed, i)
	}
	return l
}

func randomTensors(r *rand.Rand, n, times, maxLife int) []Tensor {
	ts := make([]Tensor, n)
	for i := range ts {
		first := r.IntN(times) - times/4 // negative times too
		ts[i] = Tensor{Size: int64(r.IntN(5000)), First: first, Last: first + r.IntN(maxLife+1)}
	}
	return ts
}

func TestPlanNoOverlap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for trial := 0; trial < 300; trial++ {
		ts := randomTensors(r, 1+r.IntN(200), 1+r.IntN(300), r.IntN(40))
		l, err := Plan(ts)
		if err != nil {
			t.Fatal(err)
		}
		checkLayout(t, ts, l)
	}
}

// Plan is the reference algorithm whenever no tensor overlaps more than
// maxOverlaps placed ones, and where every pair overlaps (as in KeepValues
// plans).
func TestPlanMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for trial := 0; trial < 300; trial++ {
		var ts []Tensor
		switch trial % 3 {
		case 0:
			ts = randomTensors(r, 1+r.IntN(60), 1+r.IntN(30), r.IntN(6))
		case 1:
			ts = randomTensors(r, 1+r.IntN(maxOverlaps), 1+r.IntN(20), r.IntN(20))
		case 2: // all overlapping, many more than maxOverlaps
			n := 1 + r.IntN(4*maxOverlaps)
			for range n {
				ts = append(ts, Tensor{Size: int64(r.IntN(3000)), First: r.IntN(n), Last: n + r.IntN(3)})
			}
		}
		l, err := Plan(ts)
		if err != nil {
			t.Fatal(err)
		}
		want := planReference(ts)
		for i := range ts {
			if ts[i].Size == 0 { // anywhere will do; Plan puts them at 0
				want.Offsets[i] = 0
			}
		}
		if l.Total != want.Total || l.Sum != want.Sum || !slices.Equal(l.Offsets, want.Offsets) {
			t.Fatalf("trial %d: %v\nplaced %v total %d, reference %v total %d", trial, ts, l.Offsets, l.Total, want.Offsets, want.Total)
		}
	}
}

// The index answers as a scan of every placed tensor would: which
// overlap, how many, and the highest end among them.
func TestTimeIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for trial := 0; trial < 200; trial++ {
		ts := randomTensors(r, 1+r.IntN(120), 1+r.IntN(100), r.IntN(30))
		ix := newTimeIndex(ts)
		var placed []int
		for _, i := range r.Perm(len(ts)) {
			var want []span
			top := int64(0)
			for _, j := range placed {
				if overlaps(ts[i], ts[j]) {
					want = append(want, ix.spans[j])
					top = max(top, ix.spans[j].end)
				}
			}
			got := ix.overlapping(i, nil)
			byOff := func(a, b span) int { return cmp.Or(cmp.Compare(a.off, b.off), cmp.Compare(a.end, b.end)) }
			slices.SortFunc(got, byOff)
			slices.SortFunc(want, byOff)
			if !slices.Equal(got, want) || ix.count(i) != len(want) || ix.top(i) != top {
				t.Fatalf("trial %d, tensor %d %v: overlapping %v (count %d, top %d), want %v (top %d)",
					trial, i, ts[i], got, ix.count(i), ix.top(i), want, top)
			}
			off := int64(r.IntN(10000))
			ix.insert(i, span{off, off + 1 + int64(r.IntN(1000))})
			placed = append(placed, i)
		}
	}
}

// A chain where each tensor dies as the next is made needs two slots.
func TestPlanChainReuses(t *testing.T) {
	var ts []Tensor
	for i := 0; i < 10; i++ {
		ts = append(ts, Tensor{Size: 1000, First: i, Last: i + 1})
	}
	l, err := Plan(ts)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * alignUp(1000); l.Total != want {
		t.Fatalf("total %d, want %d", l.Total, want)
	}
}

func TestPlanRejectsBadLifetime(t *testing.T) {
	for _, ts := range [][]Tensor{{{Size: 4, First: 3, Last: 2}}, {{Size: -1, First: 0, Last: 0}}} {
		if _, err := Plan(ts); err == nil {
			t.Fatalf("%v: want an error", ts)
		}
	}
	if l, err := Plan(nil); err != nil || l.Total != 0 {
		t.Fatalf("no tensors: %v, %v", l, err)
	}
}

// planGraph is the lifetimes of a graph of n nodes in the shape of a long
// network (what engine.Compile asks for, times 2i and 2i+1 per node):
// residual blocks whose input lives across the block, sizes varying by
// stage; wide adds the case of values that all stay live to the end.
func planGraph(n int, wide bool) []Tensor {
	ts := make([]Tensor, n)
	for i := range ts {
		last := 2*i + 2
		if i%3 == 0 {
			last = 2*i + 6 // a block input, read by the block's add
		}
		if wide {
			last = 2 * n
		}
		ts[i] = Tensor{Size: int64(4096 << (i % 4)), First: 2 * i, Last: last}
	}
	return ts
}

// Plan is O(n log n): 8 times the tensors cost about 10 times the time
// (8 log(160k)/log(20k)), where the quadratic planner took 64 times (and
// 11.6 s for 80,000 nodes). The bound, 20 times, leaves room for a busy
// machine; each size is timed at its best of five runs to damp noise.
func TestPlanScales(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	best := func(ts []Tensor) time.Duration {
		d := time.Duration(1 << 62)
		for range 5 {
			t0 := time.Now()
			l, err := Plan(ts)
			d = min(d, time.Since(t0))
			if err != nil {
				t.Fatal(err)
			}
			if l.Total > l.Sum {
				t.Fatal("total above sum")
			}
		}
		return d
	}
	for _, wide := range []bool{false, true} {
		small, large := best(planGraph(10_000, wide)), best(planGraph(80_000, wide))
		t.Logf("wide=%v: 10,000 tensors %v, 80,000 %v (%.1fx)", wide, small, large, float64(large)/float64(small))
		if large > 20*small+50*time.Millisecond || large > 5*time.Second {
			t.Errorf("wide=%v: 80,000 tensors take %v, 10,000 take %v: not O(n log n)", wide, large, small)
		}
	}
}

func BenchmarkPlan80k(b *testing.B) {
	ts := planGraph(80_000, false)
	for b.Loop() {
		if _, err := Plan(ts); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFloat32sAligned(t *testing.T) {
	for n := 1; n < 100; n++ {
		s := Float32s(n)
		if len(s) != n || uintptr(unsafe.Pointer(&s[0]))%Align != 0 {
			t.Fatalf("n=%d: len %d, addr %p", n, len(s), &s[0])
		}
	}
}
