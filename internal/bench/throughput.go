package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// maxLag is how far behind the bridge may fall during a throughput trial,
// and how long it may take to catch up after it, for the rate to count as
// ingested: a bounded lag, measured in seconds of readings.
const maxLag = 2 * time.Second

// throughputTrial is one rate held for one window.
type throughputTrial struct {
	RequestedPerSecond float64 `json:"requestedReadingsPerSecond"`
	AchievedPerSecond  float64 `json:"publishedReadingsPerSecond"`
	WindowSeconds      float64 `json:"windowSeconds"`
	Published          int64   `json:"readingsPublished"`
	Received           float64 `json:"readingsReceived"`
	// DropReports counts the times the bridge's subscription reported
	// discarding messages because its handler was behind (each report
	// covers one run of drops; the bridge counts them as event decode
	// errors). Lost readings are Published - Received.
	DropReports      float64 `json:"dropReports"`
	MaxLagSeconds    float64 `json:"maxLagSeconds"`
	DrainSeconds     float64 `json:"drainSeconds"`
	StatusWritesPerS float64 `json:"statusWritesPerSecond"`
	BridgeCores      float64 `json:"bridgeCores"`
	GeneratorLimited bool    `json:"generatorLimited"`
	OtherCores       float64 `json:"otherProcessesCores"`
	Passed           bool    `json:"passed"`
	Why              string  `json:"why,omitempty"`
}

// throughputResult is the highest rate held for a whole confirmation
// window with no loss and a bounded lag.
type throughputResult struct {
	ReadingsPerSecond float64           `json:"readingsPerSecond"`
	GeneratorLimited  bool              `json:"generatorLimited"`
	Probes            []throughputTrial `json:"probes"`
	Confirmations     []throughputTrial `json:"confirmations"`
	MaxLagSeconds     float64           `json:"lagBoundSeconds"`
	ChangingShare     float64           `json:"changingShare"`
	ReadingsPerEvent  int               `json:"readingsPerEvent"`
}

// measureThroughput finds the highest rate the bridge ingests (see
// searchRates), probing for the probe window and holding for the
// throughput window.
func (p *pool) measureThroughput(ctx context.Context, gen *telemetryGen) throughputResult {
	cfg := p.rig.cfg
	res := throughputResult{MaxLagSeconds: maxLag.Seconds(), ChangingShare: cfg.changingShare, ReadingsPerEvent: gen.perEvent}
	searchRates(ctx, cfg.startRate, &res,
		func(rate float64) throughputTrial {
			t := p.trial(ctx, gen, rate, cfg.probeWindow)
			logf("  probe %.0f readings/s: %s", rate, t.verdict())
			return t
		},
		func(rate float64) throughputTrial {
			t := p.trial(ctx, gen, rate, cfg.throughputWindow)
			logf("  hold %.0f readings/s for %s: %s", rate, cfg.throughputWindow, t.verdict())
			return t
		})
	return res
}

// searchRates looks for the highest rate with short probes that double the
// rate from start (or halve it, if start fails), narrows the gap between
// the best rate and the first the bridge could not take with two probes
// halfway between, then holds the best for the full window, stepping down
// by a quarter if it cannot be held. A generator that cannot publish a
// rate the bridge kept up with caps the result, marked generator-limited;
// it says nothing against lower rates already held.
func searchRates(ctx context.Context, start float64, res *throughputResult, probe, hold func(rate float64) throughputTrial) {
	best, tooMuch := 0.0, 0.0
	for rate := start; rate <= 1e6 && ctx.Err() == nil; rate *= 2 {
		t := probe(rate)
		res.Probes = append(res.Probes, t)
		if !t.Passed {
			if t.GeneratorLimited && t.keptUp() && t.AchievedPerSecond > best {
				best, res.GeneratorLimited = t.AchievedPerSecond, true
			}
			if !t.keptUp() {
				tooMuch = t.missedAt()
			}
			break
		}
		best = rate
	}
	for rate := start / 2; best == 0 && rate >= 250 && ctx.Err() == nil; rate /= 2 {
		t := probe(rate)
		res.Probes = append(res.Probes, t)
		if t.Passed {
			best = rate
		} else if !t.keptUp() {
			tooMuch = t.missedAt()
		}
	}
	// Doubling leaves the limit anywhere in a factor of two.
narrow:
	for i := 0; i < 2 && best > 0 && tooMuch > best && ctx.Err() == nil; i++ {
		rate := math.Round((best + tooMuch) / 2)
		t := probe(rate)
		res.Probes = append(res.Probes, t)
		switch {
		case t.Passed:
			best = rate
		case !t.keptUp():
			tooMuch = t.missedAt()
		default:
			break narrow // the generator, not the bridge, fell short
		}
	}
	for attempt := 0; attempt < 3 && best > 0 && ctx.Err() == nil; attempt++ {
		t := hold(best)
		res.Confirmations = append(res.Confirmations, t)
		if t.Passed || (t.GeneratorLimited && t.keptUp()) {
			res.ReadingsPerSecond = min(best, t.AchievedPerSecond)
			res.GeneratorLimited = res.GeneratorLimited || t.GeneratorLimited
			return
		}
		best = math.Round(best * 0.75)
	}
}

// trial publishes rate readings a second for window and watches the
// bridge's count of received readings.
func (p *pool) trial(ctx context.Context, gen *telemetryGen, rate float64, window time.Duration) throughputTrial {
	t := throughputTrial{RequestedPerSecond: rate}
	if err := p.awaitQuiet(ctx); err != nil {
		t.Why = err.Error()
		return t
	}
	before, err := p.snapshot(ctx, true)
	if err != nil {
		t.Why = err.Error()
		return t
	}
	base := before.bridge.sum("edgebridge_readings_total", nil)
	startPublished := gen.readings.Load()
	published := func() float64 { return float64(gen.readings.Load() - startPublished) }

	lagCtx, stopLag := context.WithCancel(ctx)
	var lagMu sync.Mutex
	var worstLag float64
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		p.watchLag(lagCtx, base, published, func(lag float64) {
			lagMu.Lock()
			worstLag = max(worstLag, lag/rate)
			lagMu.Unlock()
		})
	}()
	profile := p.bridge.cpuProfile(ctx, window, p.profilePath(fmt.Sprintf("throughput-%.0f", rate)))
	run := gen.run(ctx, rate/float64(gen.perEvent), window, 16)
	stopLag()
	if err := <-profile; err != nil {
		logf("  throughput profile: %v", err)
	}
	<-lagDone
	t.Published = int64(published())
	t.WindowSeconds = run.Span.Seconds()
	t.AchievedPerSecond = float64(t.Published) / t.WindowSeconds

	drainStart := time.Now()
	t.Received = p.drain(ctx, base, float64(t.Published))
	t.DrainSeconds = time.Since(drainStart).Seconds()
	after, err := p.snapshot(ctx, true)
	if err != nil {
		t.Why = err.Error()
		return t
	}
	events := map[string]string{"type": "event"}
	t.DropReports = after.bridge.sum("edgebridge_decode_errors_total", events) - before.bridge.sum("edgebridge_decode_errors_total", events)
	t.StatusWritesPerS = (after.bridge.sum("edgebridge_status_writes_total", nil) - before.bridge.sum("edgebridge_status_writes_total", nil)) /
		after.at.Sub(before.at).Seconds()
	t.BridgeCores = cores(before.bridgeProc, after.bridgeProc)
	t.MaxLagSeconds = worstLag
	t.OtherCores = p.rig.load.othersCores(before.at, after.at)
	t.judge(rate)
	return t
}

// judge decides whether the trial's rate was ingested.
func (t *throughputTrial) judge(rate float64) {
	t.GeneratorLimited = t.AchievedPerSecond < 0.95*rate
	switch {
	case t.Received < float64(t.Published) || t.DropReports > 0:
		t.Why = fmt.Sprintf("lost %.0f of %d readings (the subscription reported dropping %.0f times)",
			float64(t.Published)-t.Received, t.Published, t.DropReports)
	case t.MaxLagSeconds > maxLag.Seconds():
		t.Why = fmt.Sprintf("fell %.1f s behind", t.MaxLagSeconds)
	case t.DrainSeconds > maxLag.Seconds():
		t.Why = fmt.Sprintf("took %.1f s to catch up", t.DrainSeconds)
	case t.GeneratorLimited:
		t.Why = fmt.Sprintf("the generator published only %.0f readings/s", t.AchievedPerSecond)
	default:
		t.Passed = true
	}
}

// missedAt is the rate a trial the bridge did not keep up with shows it
// cannot take: the one requested, or less when the generator fell short,
// since the bridge fell behind whatever the generator managed.
func (t throughputTrial) missedAt() float64 {
	return min(t.RequestedPerSecond, math.Round(t.AchievedPerSecond))
}

// keptUp says whether the bridge ingested everything that was published,
// whatever the generator managed.
func (t throughputTrial) keptUp() bool {
	return t.Received >= float64(t.Published) && t.DropReports == 0 &&
		t.MaxLagSeconds <= maxLag.Seconds() && t.DrainSeconds <= maxLag.Seconds()
}

func (t throughputTrial) verdict() string {
	if t.Passed {
		return fmt.Sprintf("ok (lag %.2f s, %.2f cores, %.0f status writes/s)", t.MaxLagSeconds, t.BridgeCores, t.StatusWritesPerS)
	}
	return "no: " + t.Why
}

// drain waits until the bridge has counted every published reading, or its
// count stops moving for a second (the rest were lost), or three lag bounds
// pass; it returns how many it counted.
func (p *pool) drain(ctx context.Context, base, published float64) float64 {
	received, last := 0.0, -1.0
	var still time.Time
	_ = poll(ctx, 3*maxLag, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		m, err := p.bridge.metrics(ctx)
		if err != nil {
			return false, err
		}
		received = m.sum("edgebridge_readings_total", nil) - base
		if received != last {
			last, still = received, time.Now()
		}
		return received >= published || time.Since(still) > time.Second, nil
	})
	return received
}

// watchLag reports, about once a second, how many published readings the
// bridge has not counted yet.
func (p *pool) watchLag(ctx context.Context, base float64, published func() float64, report func(float64)) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sent := published()
		m, err := p.bridge.metrics(ctx)
		if err != nil {
			continue
		}
		report(sent - (m.sum("edgebridge_readings_total", nil) - base))
	}
}

// awaitQuiet waits until the bridge has counted everything published and
// its queues are empty, so that a trial does not pay for the last one's
// backlog. Status writes the coalescing interval still holds back are not
// waited for: under continuing telemetry they would come anyway.
func (p *pool) awaitQuiet(ctx context.Context) error {
	last := -1.0
	stable := 0
	// Three minutes: after a trial the bridge could not take, the API
	// server was slow and the bridge paced its status writes down; the
	// statuses it held back take a while to write once it recovers.
	return poll(ctx, 3*time.Minute, 500*time.Millisecond, func(ctx context.Context) (bool, error) {
		m, err := p.bridge.metrics(ctx)
		if err != nil {
			return false, err
		}
		received := m.sum("edgebridge_readings_total", nil)
		if received == last && m.sum("workqueue_depth", nil) == 0 {
			stable++
		} else {
			stable = 0
		}
		last = received
		return stable >= 2, nil
	})
}
