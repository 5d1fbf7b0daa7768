//go:build linux && !condpark

package engine

import (
	"math"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// parker parks idle team workers on a futex. Go's own blocking primitives
// (sync.Cond, channels, mutexes) take a runtime sudog per wait; when the
// per-P sudog caches run dry, which happens after every GC under load,
// the runtime allocates new ones, and a busy machine made Session.Run
// report allocations (448 B/op at 2 threads with the other core loaded).
// A futex wait is a plain blocking system call and allocates nothing.
type parker struct{}

const (
	futexWaitPrivate = 0 | 128 // FUTEX_WAIT | FUTEX_PRIVATE_FLAG
	futexWakePrivate = 1 | 128 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
)

func (p *parker) init() {}

// sleep blocks while *seq == s; it may return early (spuriously).
func (p *parker) sleep(seq *atomic.Uint32, s uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(seq)), futexWaitPrivate, uintptr(s), 0, 0, 0)
}

// wake wakes every worker sleeping on seq.
func (p *parker) wake(seq *atomic.Uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(seq)), futexWakePrivate, math.MaxInt32, 0, 0, 0)
}
