package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/edge-resnet/edge-resnet/arena"
)

// Errors of plans and their executors; returned errors wrap them.
var (
	// ErrBudget: a plan or an executor would need more memory than the
	// budget it was given.
	ErrBudget = errors.New("over the memory budget")
	// ErrBusy: an Exec (or a session) was called while another call on it
	// is running; it is for one goroutine at a time.
	ErrBusy = errors.New("busy: already running on another goroutine")
	// ErrClosed: the Exec (or session, or model) was closed.
	ErrClosed = errors.New("closed")
)

// WeightBytes is the memory of the plan's packed and transformed weights
// (shared by all its executors).
func (p *Plan) WeightBytes() int64 {
	var n int64
	for i := range p.steps {
		n += p.steps[i].k.weightBytes()
	}
	return n
}

// MemoryBytes is what the plan and one executor with the given number of
// threads hold together: packed weights, the arena and per-worker scratch.
func (p *Plan) MemoryBytes(threads int) int64 { return p.WeightBytes() + p.ArenaBytes(threads) }

// ExecsThatFit is how many of n single-thread executors fit in budget bytes
// together with the plan's weights (they share them), at least 1 (budget
// <= 0: n): callers that spread work over executors run fewer rather than
// exceed the budget; CheckBudget then tells whether even one fits.
func (p *Plan) ExecsThatFit(budget int64, n int) int {
	if budget <= 0 {
		return n
	}
	fit := (budget - p.WeightBytes()) / max(p.ArenaBytes(1), 1)
	return int(max(1, min(int64(n), fit)))
}

// CheckBudget returns an ErrBudget error when an executor of the plan with
// the given number of threads would take the plan's memory over budget
// bytes (budget <= 0: no limit).
func (p *Plan) CheckBudget(budget int64, threads int) error {
	if budget <= 0 {
		return nil
	}
	weights, arenaBytes := p.WeightBytes(), p.ArenaBytes(threads)
	if weights+arenaBytes <= budget {
		return nil
	}
	return p.budgetError(budget, weights, 4*int64(p.floats), int64(max(threads, 1))*p.ScratchBytes(), threads)
}

// budgetError names the need, its parts, the budget and the largest
// activations, which are what a hostile or mistaken input size inflates.
func (p *Plan) budgetError(budget, weights, acts, scratch int64, threads int) error {
	return fmt.Errorf("%w: the %s plan needs %s (activations %s, packed weights %s, scratch %s for %d thread(s)), the budget is %s; largest tensors: %s",
		ErrBudget, p.Precision, arena.FormatBytes(weights+acts+scratch), arena.FormatBytes(acts),
		arena.FormatBytes(weights), arena.FormatBytes(scratch), max(threads, 1), arena.FormatBytes(budget),
		p.largestTensors(3))
}

// largestTensors lists the n largest activations with their nodes.
func (p *Plan) largestTensors(n int) string {
	g := p.Graph
	idx := make([]int, len(g.Nodes))
	size := func(i int) int64 {
		b := int64(g.Nodes[i].Shape.Size())
		if !p.u8[i] {
			b *= 4
		}
		return b
	}
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		sa, sb := size(a), size(b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	var parts []string
	for _, i := range idx[:min(n, len(idx))] {
		nd := g.Nodes[i]
		kind := "fp32"
		if p.u8[i] {
			kind = "uint8"
		}
		parts = append(parts, fmt.Sprintf("node %d %q (%s) %v %s %s", i, nd.Name, nd.Op, nd.Shape, kind, arena.FormatBytes(size(i))))
	}
	return strings.Join(parts, ", ")
}
