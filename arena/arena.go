// Package arena plans where tensors live in one preallocated buffer and
// allocates that buffer aligned, so that inference needs no heap
// allocation: every activation is an offset fixed at load time.
package arena

import (
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

func overlaps(a, b Tensor) bool { return a.First <= b.Last && b.First <= a.Last }

// Plan places the tensors greedily by decreasing size, each in the smallest
// gap between already placed tensors whose lifetimes overlap its own (best
// fit), else after the highest of them. This is the "greedy by size"
// strategy of TFLite's and MNN's memory planners; for ResNets it reaches
// the lower bound (the largest set of simultaneously live tensors) or
// comes close.
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
	type span struct{ off, end int64 }
	var placed []int // indices into ts, already placed
	var busy []span
	for _, i := range order {
		size := alignUp(ts[i].Size)
		busy = busy[:0]
		for _, j := range placed {
			if overlaps(ts[i], ts[j]) {
				busy = append(busy, span{l.Offsets[j], l.Offsets[j] + alignUp(ts[j].Size)})
			}
		}
		slices.SortFunc(busy, func(a, b span) int {
			switch {
			case a.off < b.off:
				return -1
			case a.off > b.off:
				return 1
			}
			return 0
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
		l.Offsets[i] = best
		l.Total = max(l.Total, best+size)
		placed = append(placed, i)
	}
	return l, nil
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
