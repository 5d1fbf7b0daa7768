package serve

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// entry is a version of a model name as the server serves it: its
// admission places and metrics, which outlive reloads, and the model
// loaded now (a "version" below is what a reload replaces).
type entry struct {
	name    string
	version string
	slots   chan struct{} // one per request admitted (running or waiting), across versions
	metrics *modelMetrics
	cur     atomic.Pointer[served]
}

// admit takes a place for a request without waiting: false when every
// place is taken.
func (e *entry) admit() bool {
	select {
	case e.slots <- struct{}{}:
		e.metrics.admitted.Add(1)
		e.metrics.inFlight.Inc()
		return true
	default:
		return false
	}
}

// leave gives back the place admit took.
func (e *entry) leave() {
	e.metrics.admitted.Add(-1)
	e.metrics.inFlight.Dec()
	<-e.slots
}

// acquire is the current version, held until release: a version that a
// reload replaced closes its sessions once its last holder released it.
func (e *entry) acquire() *served {
	for {
		v := e.cur.Load()
		v.refs.Add(1)
		if e.cur.Load() == v {
			return v
		}
		v.release() // replaced in between: take the new one
	}
}

// version is the part of served that reloads use.
type version struct {
	refs     atomic.Int64
	retired  atomic.Bool
	shutOnce sync.Once
	closed   chan struct{} // closed after the sessions are
}

func (v *served) release() {
	// retire stores retired before it reads refs, release the other way
	// round: one of them sees the other, so the last one shuts.
	if v.refs.Add(-1) == 0 && v.retired.Load() {
		v.shut()
	}
}

// retire marks v replaced and shuts it unless requests hold it.
func (v *served) retire() {
	v.retired.Store(true)
	if v.refs.Load() == 0 {
		v.shut()
	}
}

func (v *served) shut() {
	v.shutOnce.Do(func() {
		v.runner.close()
		close(v.closed)
	})
}

// Reload serves nm.Model under nm.Name and nm.Version, given to New, in
// place of the model served now, without dropping requests: requests that began
// before it finish on the old model's sessions, later ones run on the
// new model's. The returned channel is closed once the old sessions are
// closed: then the caller may close the old model. On error (the new
// model's sessions cannot be made) the old model stays served.
func (s *Server) Reload(nm Named) (oldClosed <-chan struct{}, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entryOf(nm)
	switch {
	case s.closed:
		return nil, errors.New("serve: reload after Close")
	case err != nil:
		return nil, err
	case nm.Model == nil:
		return nil, fmt.Errorf("serve: reload of %q: no model", nm.Name)
	}
	v, err := newServed(nm, s.opt, e.metrics)
	if err != nil {
		return nil, fmt.Errorf("serve: reload of %q: %w", nm.Name, err)
	}
	old := e.cur.Swap(v)
	old.retire()
	return old.closed, nil
}
