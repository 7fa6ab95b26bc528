package devicecontroller

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Telemetry's status writes are the one load the bridge can shed without
// losing anything: a write that waits carries newer readings when its turn
// comes. So they yield to everything else on the API server. When it
// answers them slowly, which means requests queue there, the pool's status
// write rate is halved; while it answers quickly the rate grows back by a
// tenth and one write each second. "Slowly" is three times the quickest
// answers seen lately (the API server's own time, without queueing), kept
// between 10 and 50 ms: a healthy write takes 5 to 10 ms. With twenty
// pools' telemetry on one busy API server, a person's kubectl patch
// otherwise waited seconds behind the status writes.
const (
	// statusWriteSlowMin and statusWriteSlowMax bound the mean write time
	// above which the API server is taken to be queueing.
	statusWriteSlowMin = 10 * time.Millisecond
	statusWriteSlowMax = 50 * time.Millisecond
	// statusPacePeriod is how often the rate is reconsidered.
	statusPacePeriod = time.Second
	// statusPaceFloor keeps status moving however slow the API server is.
	statusPaceFloor = 1.0
	// statusPaceCeiling is the rate a pool starts at and returns to: far
	// above what 10,000 devices reporting every 10 s need.
	statusPaceCeiling = 2000.0
)

// statusPacer spaces a pool's telemetry status writes by how fast the API
// server answers them.
type statusPacer struct {
	limiter *rate.Limiter
	limit   prometheus.Gauge

	mu          sync.Mutex
	periodStart time.Time
	writes      int
	took        time.Duration
	// quickest is the lowest mean of a period lately: it creeps up by 1 %
	// a period, so that a server that became slower for good is not taken
	// for a queueing one for long.
	quickest time.Duration
}

func newStatusPacer(burst int, limit prometheus.Gauge) *statusPacer {
	limit.Set(statusPaceCeiling)
	return &statusPacer{limiter: rate.NewLimiter(statusPaceCeiling, max(burst, 1)), limit: limit}
}

// wait blocks until the next status write may start.
func (p *statusPacer) wait(ctx context.Context) error {
	return p.limiter.Wait(ctx)
}

// observe records how long one status write took, at now, and adjusts the
// rate once a period has passed.
func (p *statusPacer) observe(now time.Time, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.periodStart.IsZero() {
		p.periodStart = now
	}
	p.writes++
	p.took += took
	elapsed := now.Sub(p.periodStart)
	if elapsed < statusPacePeriod {
		return
	}
	mean := p.took / time.Duration(p.writes)
	if p.quickest == 0 || mean < p.quickest {
		p.quickest = mean
	} else {
		p.quickest += p.quickest / 100
	}
	current := float64(p.limiter.Limit())
	next := nextStatusRate(current, float64(p.writes)/elapsed.Seconds(), mean, slowWrite(p.quickest))
	if next != current {
		p.limiter.SetLimitAt(now, rate.Limit(next))
		p.limit.Set(next)
	}
	p.periodStart, p.writes, p.took = now, 0, 0
}

// slowWrite is the mean write time that means queueing, given the
// quickest period's mean.
func slowWrite(quickest time.Duration) time.Duration {
	return min(statusWriteSlowMax, max(statusWriteSlowMin, 3*quickest))
}

// nextStatusRate is the status write rate (writes/s) after a period in
// which writes completed at done per second and took mean on average.
func nextStatusRate(current, done float64, mean, slow time.Duration) float64 {
	switch {
	case mean > slow:
		// Halve what actually went through, not the allowance, which may
		// be far above it.
		return max(statusPaceFloor, 0.5*min(current, done))
	case mean < slow/2:
		return min(statusPaceCeiling, current*1.1+1)
	}
	return current
}
