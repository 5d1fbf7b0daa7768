// Package arena plans where tensors live in one preallocated buffer and
// allocates that buffer aligned, so that inference needs no heap
// allocation: every activation is an offset fixed at load time.
package arena

import (
	"cmp"
	"fmt"
	"slices"
	"unsafe"
)

// Align is the alignment of the arena and of every tensor in it, in bytes:
// a cache line, and the width of an AVX-512 register.
const Align = 64

// Tensor is a request for memory: Size bytes, live from step First to
// step Last inclusive (steps are the plan's execution order).
type Tensor struct {
	Size        int64
	First, Last int
}

// Layout is a solution: Offsets[i] is where tensor i starts; Total is the
// arena size. Two tensors whose lifetimes overlap never share a byte.
type Layout struct {
	Offsets []int64
	Total   int64
	Sum     int64 // the sum of all (aligned) sizes: what no reuse would cost
}

func alignUp(n int64) int64 { return (n + Align - 1) &^ (Align - 1) }

// Plan places the tensors greedily by decreasing size, each in the smallest
// gap between already placed tensors whose lifetimes overlap its own (best
// fit), else after the highest of them. This is the "greedy by size"
// strategy of TFLite's and MNN's memory planners; for ResNets it reaches
// the lower bound (the largest set of simultaneously live tensors) or
// comes close.
//
// The placed tensors that overlap a tensor's lifetime are found through
// an index over time (timeIndex) instead of a scan of every placed
// tensor, so Plan takes O(n log n) time plus O(k log k) per tensor for the
// k overlapping ones, which is a handful in a network (at most 5 in the
// ResNets, however deep). When more than maxOverlaps overlap, which only
// happens when many values are live at once (a KeepValues plan, a hostile
// graph), the tensor goes on top of them instead (counting them and
// finding the top take O(log n)): where every pair of tensors overlaps,
// as in KeepValues plans, that is where best fit puts it too, and in any
// case it bounds the time. Empty tensors are placed at 0.
func Plan(ts []Tensor) (Layout, error) {
	l := Layout{Offsets: make([]int64, len(ts))}
	order := make([]int, len(ts))
	for i, t := range ts {
		if t.Size < 0 || t.First > t.Last {
			return Layout{}, fmt.Errorf("arena: tensor %d: size %d, lifetime [%d,%d]", i, t.Size, t.First, t.Last)
		}
		order[i] = i
		l.Sum += alignUp(t.Size)
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if ts[a].Size != ts[b].Size {
			if ts[a].Size > ts[b].Size {
				return -1
			}
			return 1
		}
		return ts[a].First - ts[b].First
	})
	ix := newTimeIndex(ts)
	var busy []span
	for _, i := range order {
		size := alignUp(ts[i].Size)
		if size == 0 {
			continue // empty: at offset 0, sharing no byte with anything
		}
		var best int64
		if ix.count(i) <= maxOverlaps {
			busy = ix.overlapping(i, busy[:0])
			best = bestFit(busy, size)
		} else {
			best = ix.top(i)
		}
		l.Offsets[i] = best
		l.Total = max(l.Total, best+size)
		ix.insert(i, span{best, best + size})
	}
	return l, nil
}

// maxOverlaps bounds the overlapping tensors Plan sorts to find a gap.
const maxOverlaps = 64

// span is the bytes [off, end) of a placed tensor.
type span struct{ off, end int64 }

// bestFit returns the start of the smallest gap of at least size bytes
// between the busy spans, else the end of the highest one.
func bestFit(busy []span, size int64) int64 {
	slices.SortFunc(busy, func(a, b span) int {
		if c := cmp.Compare(a.off, b.off); c != 0 {
			return c
		}
		return cmp.Compare(a.end, b.end)
	})
	best, bestGap := int64(-1), int64(-1)
	var cur int64
	for _, s := range busy {
		if gap := s.off - cur; gap >= size && (bestGap < 0 || gap < bestGap) {
			best, bestGap = cur, gap
		}
		cur = max(cur, s.end)
	}
	if best < 0 {
		best = cur
	}
	return best
}

// Float32s returns a zeroed []float32 of n values whose first element is
// Align-byte aligned.
func Float32s(n int) []float32 {
	const per = Align / 4
	buf := make([]float32, n+per)
	skip := 0
	if r := uintptr(unsafe.Pointer(unsafe.SliceData(buf))) % Align; r != 0 {
		skip = int((Align - r) / 4)
	}
	return buf[skip : skip+n : skip+n]
}
