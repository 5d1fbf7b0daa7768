package arena

import "slices"

// timeIndex finds, for Plan, the placed tensors whose lifetimes overlap a
// tensor's. Times are compressed to the distinct First and Last values (a
// leaf each of a complete binary tree; overlap only depends on their
// order), and a placed tensor is recorded twice:
//
//   - by lifetime, at the O(log n) nodes that exactly cover it (a segment
//     tree): the tensors live at time t are those listed on the path from
//     t's leaf to the root, each exactly once;
//   - by start, at the leaf of its first time.
//
// The tensors overlapping [a, b] are those live at a and those starting in
// (a, b], two disjoint sets, so each is listed once: O(log n + k) for k of
// them. Counting them, and the highest end among them (Plan's fallback),
// take O(log n).
type timeIndex struct {
	p           int     // leaves: a power of two, at least the number of distinct times
	first, last []int32 // per tensor: its lifetime as leaf numbers
	spans       []span  // per tensor, once placed

	cover  []int32 // per node: head of the list of tensors covering it, -1 if none
	covers []int32 // per node: the length of that list
	ownEnd []int64 // per node: the highest end of the tensors listed there, -1 if none
	subEnd []int64 // per node: the highest ownEnd in its subtree

	start   []int32 // per leaf: head of the list of tensors starting there
	started []int32 // per node: how many tensors start at the leaves below it

	next, item []int32 // list entries: the next entry (-1 at the end) and the tensor
}

func newTimeIndex(ts []Tensor) *timeIndex {
	times := make([]int, 0, 2*len(ts))
	for _, t := range ts {
		times = append(times, t.First, t.Last)
	}
	slices.Sort(times)
	times = slices.Compact(times)
	p := 1
	for p < len(times) {
		p *= 2
	}
	ix := &timeIndex{
		p:     p,
		first: make([]int32, len(ts)), last: make([]int32, len(ts)),
		spans: make([]span, len(ts)),
		cover: make([]int32, 2*p), covers: make([]int32, 2*p),
		ownEnd: make([]int64, 2*p), subEnd: make([]int64, 2*p),
		start: make([]int32, p), started: make([]int32, 2*p),
		next: make([]int32, 0, 4*len(ts)), item: make([]int32, 0, 4*len(ts)),
	}
	for i, t := range ts {
		a, _ := slices.BinarySearch(times, t.First)
		b, _ := slices.BinarySearch(times, t.Last)
		ix.first[i], ix.last[i] = int32(a), int32(b)
	}
	for x := range ix.cover {
		ix.cover[x], ix.ownEnd[x], ix.subEnd[x] = -1, -1, -1
	}
	for x := range ix.start {
		ix.start[x] = -1
	}
	return ix
}

// push prepends tensor i to the list whose head is *head.
func (ix *timeIndex) push(head *int32, i int) {
	ix.next = append(ix.next, *head)
	ix.item = append(ix.item, int32(i))
	*head = int32(len(ix.item) - 1)
}

// insert records tensor i, placed at s.
func (ix *timeIndex) insert(i int, s span) {
	ix.spans[i] = s
	a, b := int(ix.first[i]), int(ix.last[i])
	for l, r := a+ix.p, b+ix.p+1; l < r; l, r = l/2, r/2 {
		if l&1 == 1 {
			ix.coverNode(l, i, s.end)
			l++
		}
		if r&1 == 1 {
			r--
			ix.coverNode(r, i, s.end)
		}
	}
	// The parent of a node that covers part of [a, b] covers a or b and
	// more: the nodes whose subtrees changed are on the paths from the
	// leaves a and b to the root. Path b goes last, over their common part.
	for _, leaf := range [2]int{a + ix.p, b + ix.p} {
		for y := leaf / 2; y >= 1; y /= 2 {
			ix.subEnd[y] = max(ix.ownEnd[y], ix.subEnd[2*y], ix.subEnd[2*y+1])
		}
	}
	ix.push(&ix.start[a], i)
	for x := a + ix.p; x >= 1; x /= 2 {
		ix.started[x]++
	}
}

func (ix *timeIndex) coverNode(x, i int, end int64) {
	ix.push(&ix.cover[x], i)
	ix.covers[x]++
	ix.ownEnd[x] = max(ix.ownEnd[x], end)
	ix.subEnd[x] = max(ix.subEnd[x], end)
}

// count returns how many placed tensors overlap tensor i's lifetime.
func (ix *timeIndex) count(i int) int {
	a, b := int(ix.first[i]), int(ix.last[i])
	n := 0
	for x := a + ix.p; x >= 1; x /= 2 {
		n += int(ix.covers[x])
	}
	// Those starting in (a, b]: the started counts of the nodes that
	// exactly cover those leaves.
	for l, r := a+1+ix.p, b+ix.p+1; l < r; l, r = l/2, r/2 {
		if l&1 == 1 {
			n += int(ix.started[l])
			l++
		}
		if r&1 == 1 {
			r--
			n += int(ix.started[r])
		}
	}
	return n
}

// overlapping appends the spans of the placed tensors whose lifetimes
// overlap tensor i's to dst.
func (ix *timeIndex) overlapping(i int, dst []span) []span {
	a, b := int(ix.first[i]), int(ix.last[i])
	for x := a + ix.p; x >= 1; x /= 2 {
		for e := ix.cover[x]; e >= 0; e = ix.next[e] {
			dst = append(dst, ix.spans[ix.item[e]])
		}
	}
	return ix.starting(1, 0, ix.p-1, a+1, b, dst)
}

// starting appends the spans of the tensors that start in [a, b] within
// node x, which spans the leaves [lo, hi].
func (ix *timeIndex) starting(x, lo, hi, a, b int, dst []span) []span {
	if ix.started[x] == 0 || hi < a || lo > b {
		return dst
	}
	if x >= ix.p {
		for e := ix.start[x-ix.p]; e >= 0; e = ix.next[e] {
			dst = append(dst, ix.spans[ix.item[e]])
		}
		return dst
	}
	mid := (lo + hi) / 2
	return ix.starting(2*x+1, mid+1, hi, a, b, ix.starting(2*x, lo, mid, a, b, dst))
}

// top returns the highest end among the placed tensors whose lifetimes
// overlap tensor i's (0 if none): the tensors listed at the nodes that
// cover part of [a, b] (the canonical nodes of [a, b] and everything below
// them, through subEnd) or all of it and more (the nodes on the paths
// from the leaves a and b to the root, through ownEnd).
func (ix *timeIndex) top(i int) int64 {
	a, b := int(ix.first[i]), int(ix.last[i])
	var t int64
	for x := a + ix.p; x >= 1; x /= 2 {
		t = max(t, ix.ownEnd[x])
	}
	for x := b + ix.p; x >= 1; x /= 2 {
		t = max(t, ix.ownEnd[x])
	}
	for l, r := a+ix.p, b+ix.p+1; l < r; l, r = l/2, r/2 {
		if l&1 == 1 {
			t = max(t, ix.subEnd[l])
			l++
		}
		if r&1 == 1 {
			r--
			t = max(t, ix.subEnd[r])
		}
	}
	return t
}
