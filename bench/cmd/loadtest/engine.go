package main

import (
	"math"
	"slices"
	"sync"
	"time"

	edgeresnet "github.com/edge-resnet/edge-resnet"
)

// engineRate is the engine alone, as the server's pool would run it
// without HTTP: sessions sessions of threads threads each running
// RunBatch(batch) over and over for about d, in images per second.
func engineRate(m *edgeresnet.Model, sessions, threads, batch int, d time.Duration) (float64, error) {
	// A run reuses the input's memory for later layers (Session.Input):
	// each run writes its input again, as the server copies each request's.
	var ss []*edgeresnet.Session
	var srcs [][]float32
	defer func() {
		for _, s := range ss {
			s.Close()
		}
	}()
	for range sessions {
		s, err := m.NewSession(edgeresnet.WithThreads(threads), edgeresnet.WithBatch(batch))
		if err != nil {
			return 0, err
		}
		for i := range batch {
			x := s.Sample(i)
			for k := range x {
				x[k] = float32(math.Sin(float64(k) * 0.37))
			}
		}
		ss = append(ss, s)
		srcs = append(srcs, slices.Clone(s.Input()))
		if _, err := s.RunBatch(batch); err != nil { // warm-up
			return 0, err
		}
	}
	var mu sync.Mutex
	var images int
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for i, s := range ss {
		wg.Go(func() {
			n := 0
			var err error
			for time.Since(start) < d && err == nil {
				copy(s.Input(), srcs[i])
				if _, err = s.RunBatch(batch); err == nil {
					n += batch
				}
			}
			mu.Lock()
			images += n
			firstErr = cmpOr(firstErr, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	return float64(images) / time.Since(start).Seconds(), firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
