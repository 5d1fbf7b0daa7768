//go:build !linux || condpark

package engine

import (
	"sync"
	"sync/atomic"
)

// parker parks idle team workers on a condition variable (see
// park_linux.go for the futex used on Linux; -tags condpark selects this
// one there too, to compare them).
type parker struct {
	mu   sync.Mutex
	cond sync.Cond
}

func (p *parker) init() { p.cond.L = &p.mu }

// sleep blocks while *seq == s; wake takes the lock, so it cannot slip in
// between the check and the wait.
func (p *parker) sleep(seq *atomic.Uint32, s uint32) {
	p.mu.Lock()
	for seq.Load() == s {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

func (p *parker) wake(*atomic.Uint32) {
	p.mu.Lock()
	p.cond.Broadcast()
	p.mu.Unlock()
}
