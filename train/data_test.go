package train

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		n, val int
		seed   uint64
	}{{0, 0, 1}, {10, 0, 1}, {10, 10, 1}, {10, 3, 1}, {60000, 5000, 1}, {60000, 5000, 2}, {7, 1, 99}} {
		tr, val := Split(tc.n, tc.val, tc.seed)
		if len(val) != tc.val || len(tr) != tc.n-tc.val {
			t.Fatalf("%+v: %d train, %d val", tc, len(tr), len(val))
		}
		all := slices.Concat(tr, val)
		slices.Sort(all)
		for i, v := range all {
			if v != i {
				t.Fatalf("%+v: not a partition of 0..n-1 (at %d: %d)", tc, i, v)
			}
		}
		if !slices.IsSorted(tr) || !slices.IsSorted(val) {
			t.Errorf("%+v: parts not sorted", tc)
		}
		tr2, val2 := Split(tc.n, tc.val, tc.seed)
		if !slices.Equal(tr, tr2) || !slices.Equal(val, val2) {
			t.Errorf("%+v: not reproducible", tc)
		}
	}
	_, a := Split(1000, 100, 1)
	_, b := Split(1000, 100, 2)
	if slices.Equal(a, b) {
		t.Error("seeds 1 and 2 give the same split")
	}
}

func TestSplitPanics(t *testing.T) {
	for _, tc := range [][2]int{{10, 11}, {10, -1}, {-1, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Split(%d, %d) did not panic", tc[0], tc[1])
				}
			}()
			Split(tc[0], tc[1], 1)
		}()
	}
}

func TestBatches(t *testing.T) {
	idx, _ := Split(1000, 100, 3) // 900 samples, not 0..n-1
	for _, tc := range []struct {
		size, wantLen, lastLen int
		drop                   bool
	}{
		{128, 8, 900 - 7*128, false},
		{128, 7, 128, true},
		{100, 9, 100, false},
		{100, 9, 100, true},
		{1, 900, 1, false},
		{1000, 1, 900, false},
		{1000, 0, 0, true},
	} {
		b := NewBatches(idx, tc.size, 7)
		b.DropLast = tc.drop
		if b.Len() != tc.wantLen {
			t.Errorf("%+v: Len %d", tc, b.Len())
		}
		var prev []int
		for e := 0; e < 3; e++ {
			ep := b.Epoch(e)
			if len(ep) != tc.wantLen || (len(ep) > 0 && len(ep[len(ep)-1]) != tc.lastLen) {
				t.Fatalf("%+v epoch %d: %d batches", tc, e, len(ep))
			}
			flat := slices.Concat(ep...)
			if !tc.drop || 900%tc.size == 0 {
				got := slices.Sorted(slices.Values(flat))
				if !slices.Equal(got, idx) {
					t.Fatalf("%+v epoch %d: batches do not cover every index once", tc, e)
				}
			}
			if again := slices.Concat(NewBatches(idx, tc.size, 7).Epoch(e)...); !tc.drop && !slices.Equal(again, flat) {
				t.Errorf("%+v epoch %d: not the same order for the same seed and epoch", tc, e)
			}
			if e > 0 && len(flat) > 1 && slices.Equal(prev, flat) {
				t.Errorf("%+v: epochs %d and %d in the same order", tc, e-1, e)
			}
			prev = flat
		}
	}
	// A dropped last batch leaves distinct samples, each at most once.
	b := &Batches{Indices: idx, Size: 128, Seed: 7, DropLast: true, Shuffle: true}
	flat := slices.Concat(b.Epoch(0)...)
	if s := slices.Compact(slices.Sorted(slices.Values(flat))); len(s) != 7*128 {
		t.Errorf("drop last: %d distinct samples, want %d", len(s), 7*128)
	}
	if slices.Equal(slices.Concat(NewBatches(idx, 128, 8).Epoch(0)...), slices.Concat(NewBatches(idx, 128, 7).Epoch(0)...)) {
		t.Error("seeds 7 and 8 give the same order")
	}
	noShuffle := &Batches{Indices: idx, Size: 128}
	if !slices.Equal(slices.Concat(noShuffle.Epoch(4)...), idx) {
		t.Error("Shuffle false: not in the order of Indices")
	}
}
