package edgeresnet

import (
	"fmt"
	"slices"
	"sync"

	"github.com/edge-resnet/edge-resnet/internal/engine"
)

// pinnedCPUs counts, per CPU, the threads of this process's live sessions
// bound to it (WithPinning): a new session takes the fastest CPUs that
// the fewest bound threads use, so that several sessions (serve's pool)
// get cores of their own while there are enough.
var pinnedCPUs = struct {
	sync.Mutex
	uses map[int]int
}{uses: map[int]int{}}

// pinCPUs picks and reserves threads CPUs for a session: the least used
// first, the fastest among equals (CPUSpeeds' order).
func pinCPUs(threads int) ([]int, error) {
	all, _, err := engine.CPUSpeeds()
	if err != nil {
		return nil, fmt.Errorf("%w: WithPinning: %w", ErrInput, err)
	}
	if threads > len(all) {
		return nil, fmt.Errorf("%w: WithPinning: %d threads, but this process may use %d CPUs", ErrInput, threads, len(all))
	}
	pinnedCPUs.Lock()
	defer pinnedCPUs.Unlock()
	order := slices.Clone(all)
	slices.SortStableFunc(order, func(a, b int) int { return pinnedCPUs.uses[a] - pinnedCPUs.uses[b] })
	cpus := order[:threads]
	for _, c := range cpus {
		pinnedCPUs.uses[c]++
	}
	return cpus, nil
}

// unpinCPUs releases a closed session's CPUs.
func unpinCPUs(cpus []int) {
	pinnedCPUs.Lock()
	defer pinnedCPUs.Unlock()
	for _, c := range cpus {
		if pinnedCPUs.uses[c]--; pinnedCPUs.uses[c] <= 0 {
			delete(pinnedCPUs.uses, c)
		}
	}
}
