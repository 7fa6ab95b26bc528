package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// paceResult says how well a paced run kept its schedule.
type paceResult struct {
	Started int
	Elapsed time.Duration
	// MaxLate is how far behind its due time the latest action started: a
	// load generator that falls behind measures itself, not the bridge.
	MaxLate time.Duration
}

// pace runs fn(i) for i in [0, total), action i at start + i/perSecond, on
// workers goroutines, so that one slow action does not delay the rest of
// the schedule. It stops early when ctx ends.
func pace(ctx context.Context, total int, perSecond float64, workers int, fn func(ctx context.Context, i int)) paceResult {
	start := time.Now()
	var next atomic.Int64
	var maxLate atomic.Int64
	var started atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, max(total, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timer := time.NewTimer(0)
			defer timer.Stop()
			<-timer.C
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				due := start.Add(time.Duration(float64(i) / perSecond * float64(time.Second)))
				if wait := time.Until(due); wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-ctx.Done():
						return
					}
				} else if ctx.Err() != nil {
					return
				}
				late := time.Since(due)
				for {
					cur := maxLate.Load()
					if int64(late) <= cur || maxLate.CompareAndSwap(cur, int64(late)) {
						break
					}
				}
				started.Add(1)
				fn(ctx, i)
			}
		}()
	}
	wg.Wait()
	return paceResult{Started: int(started.Load()), Elapsed: time.Since(start), MaxLate: time.Duration(maxLate.Load())}
}
