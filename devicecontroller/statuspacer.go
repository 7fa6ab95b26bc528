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
// answers them slowly, a mean over 20 ms in a second (in make bench's
// pool of 10,000 devices, with telemetry flowing, a status write took 8
// to 10 ms), requests queue there, and the pool's status write rate is
// halved; while it answers them within 15 ms the rate grows back by a
// quarter and one write each second, from the floor of one write a second
// to 1,000 in half a minute, so that the statuses held back while the API
// server was slow are written soon after it recovers. With twenty pools'
// telemetry on one busy API server, a person's kubectl patch otherwise
// waited seconds behind the status writes.
//
// The pools settle where the mean sits near the threshold, so the
// threshold sets how loaded the pools keep the API server, whatever a
// write costs it: at 50 ms, make bench's twenty pools wrote 65 to 75
// statuses a second and a person's patch took up to a second at p99 (row
// 9e); once the bridges emptied managedFields (managedfields.go), which
// halved the cost of each write, the pools simply wrote more (119 a
// second) at the same latency. At 20 ms they write fewer, and the API
// server has room for people.
//
// A threshold of 20 ms with growth only under 10 ms was tried before
// managedFields were emptied: a single large pool on a busy but healthy
// API server, which answers in 10 to 20 ms, then never grew its rate
// back, and in row 7 its status backlog outlasted the bench's three-minute
// wait between trials. Growth under 15 ms leaves it room. A threshold
// relative to the quickest answers seen (three times them) was tried and
// dropped for the same reason.
const (
	// statusWriteSlow is the mean write time above which the API server is
	// taken to be queueing; below statusWriteQuick, it is taken to have
	// room.
	statusWriteSlow  = 20 * time.Millisecond
	statusWriteQuick = 15 * time.Millisecond
	// statusPacePeriod is how often the rate is reconsidered.
	statusPacePeriod = time.Second
	// statusPaceFloor keeps status moving however slow the API server is.
	statusPaceFloor = 1.0
	// statusPaceCeiling is the rate a pool starts at and returns to: far
	// above what 10,000 devices reporting every 10 s need.
	statusPaceCeiling = 2000.0
	// statusBudgetWindow is how long the operator's status write budget
	// (Options.StatusWriteRate) is averaged over: a pool that wrote none
	// for that long may spend that long's worth at once. The API server
	// holds every write in its watch cache for at least 75 s, so what its
	// memory follows is the rate over such a window, not within it.
	statusBudgetWindow = 75 * time.Second
)

// statusPacer spaces a pool's telemetry status writes by how fast the API
// server answers them.
type statusPacer struct {
	limiter *rate.Limiter
	limit   prometheus.Gauge
	// budget is the operator's share of the API server for the pool's
	// telemetry (Options.StatusWriteRate), nil when none is set.
	budget *rate.Limiter

	mu          sync.Mutex
	periodStart time.Time
	writes      int
	took        time.Duration
	// unpacedUntil lets a catch-up go at full speed (see unpace).
	unpacedUntil time.Time
}

// statusCatchUp is how long the statuses held back during a cloud outage
// are written unpaced once it answers again.
const statusCatchUp = 10 * time.Second

// unpace lifts the pacing for statusCatchUp from now: the cloud answers
// again after an outage and the statuses held back meanwhile, at most one
// write per device and StatusWriters at a time, are written at once. The
// API server is slow for a moment then anyway (every client relists), and
// pacing those writes by it held a pool of 1,000 devices 23 s behind
// instead of 5 s (TestChaosCloudOutageOfTenMinutes).
func (p *statusPacer) unpace(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unpacedUntil = now.Add(statusCatchUp)
	p.periodStart, p.writes, p.took = time.Time{}, 0, 0
	p.limiter.SetLimitAt(now, statusPaceCeiling)
	p.limit.Set(statusPaceCeiling)
}

// newStatusPacer paces up to burst writes at once; budget, when above 0,
// caps the telemetry writes a second on average over statusBudgetWindow.
func newStatusPacer(burst int, budget float64, limit prometheus.Gauge) *statusPacer {
	limit.Set(statusPaceCeiling)
	p := &statusPacer{limiter: rate.NewLimiter(statusPaceCeiling, max(burst, 1)), limit: limit}
	if budget > 0 {
		p.budget = rate.NewLimiter(rate.Limit(budget), max(1, int(budget*statusBudgetWindow.Seconds())))
	}
	return p
}

// wait blocks until the next write that yields to the API server's other
// clients may start.
func (p *statusPacer) wait(ctx context.Context) error {
	return p.limiter.Wait(ctx)
}

// waitBudgeted is wait for a telemetry status write, which the operator's
// budget bounds too. Emptying managedFields is not budgeted: it is one
// write per object in its life, and budgeted it would hold a new pool's
// first readings back for minutes.
func (p *statusPacer) waitBudgeted(ctx context.Context) error {
	if p.budget != nil {
		if err := p.budget.Wait(ctx); err != nil {
			return err
		}
	}
	return p.limiter.Wait(ctx)
}

// observe records how long one status write took, at now, and adjusts the
// rate once a period has passed.
func (p *statusPacer) observe(now time.Time, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Before(p.unpacedUntil) {
		return
	}
	if p.periodStart.IsZero() {
		p.periodStart = now
	}
	p.writes++
	p.took += took
	elapsed := now.Sub(p.periodStart)
	if elapsed < statusPacePeriod {
		return
	}
	current := float64(p.limiter.Limit())
	next := nextStatusRate(current, float64(p.writes)/elapsed.Seconds(), p.took/time.Duration(p.writes))
	if next != current {
		p.limiter.SetLimitAt(now, rate.Limit(next))
		p.limit.Set(next)
	}
	p.periodStart, p.writes, p.took = now, 0, 0
}

// nextStatusRate is the status write rate (writes/s) after a period in
// which writes completed at done per second and took mean on average.
func nextStatusRate(current, done float64, mean time.Duration) float64 {
	switch {
	case mean > statusWriteSlow:
		// Halve what actually went through, not the allowance, which may
		// be far above it.
		return max(statusPaceFloor, 0.5*min(current, done))
	case mean < statusWriteQuick:
		return min(statusPaceCeiling, current*1.25+1)
	}
	return current
}
