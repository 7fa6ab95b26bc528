package devicecontroller

import (
	"context"
	"time"
)

// probeWhileDown is the recovery loop that EdgeX's health and the cloud's
// reachability share: after each signal on wake, while down says the peer
// is still away, it waits and probes, the wait doubling from first up to
// limit, each probe bounded by timeout. The probe reports its outcome
// itself (down reads it). It returns when ctx ends.
func probeWhileDown(ctx context.Context, wake <-chan struct{}, down func() bool,
	first, limit, timeout time.Duration, probe func(context.Context)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		for interval := first; down(); interval = min(interval*2, limit) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
			probeCtx, cancel := context.WithTimeout(ctx, timeout)
			probe(probeCtx)
			cancel()
		}
	}
}
