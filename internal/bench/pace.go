package bench

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
	// Span runs from the start to one interval after the last action
	// started: the time the schedule took, without the last action's own
	// duration or the wait for workers to finish. Started/Span is the rate
	// the run published at; Elapsed would understate it by a few
	// milliseconds' worth whatever the generator managed.
	Span time.Duration
}

// pace runs fn(i) for i in [0, total), action i at start + i/perSecond, on
// workers goroutines, so that one slow action does not delay the rest of
// the schedule. It stops early when ctx ends.
func pace(ctx context.Context, total int, perSecond float64, workers int, fn func(ctx context.Context, i int)) paceResult {
	return paceAfter(ctx, 0, total, perSecond, workers, fn)
}

// paceAfter is pace with its schedule starting offset from now. Several
// schedules of one rate, offset by fractions of its interval, interleave
// instead of acting all at once.
func paceAfter(ctx context.Context, offset time.Duration, total int, perSecond float64, workers int, fn func(ctx context.Context, i int)) paceResult {
	start := time.Now().Add(offset)
	var next atomic.Int64
	var maxLate atomic.Int64
	var started atomic.Int64
	var lastStart atomic.Int64
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
				raiseTo(&maxLate, int64(time.Since(due)))
				raiseTo(&lastStart, int64(time.Since(start)))
				started.Add(1)
				fn(ctx, i)
			}
		}()
	}
	wg.Wait()
	res := paceResult{Started: int(started.Load()), Elapsed: time.Since(start), MaxLate: time.Duration(maxLate.Load())}
	if res.Started > 0 {
		res.Span = time.Duration(lastStart.Load()) + time.Duration(float64(time.Second)/perSecond)
	}
	return res
}

// raiseTo sets a to v if v is larger, whatever other goroutines store.
func raiseTo(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}
