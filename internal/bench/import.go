package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// importResult is how long a bridge, started against an EdgeX that already
// holds N devices and a cluster that holds none, takes until every Device
// exists with synced: true and complete status; and what that cost.
type importResult struct {
	Devices int `json:"devices"`
	// Seconds runs from starting the bridge process to the last Device
	// becoming complete: what a user who deploys the bridge waits.
	Seconds            float64 `json:"seconds"`
	RatioToPhysical    float64 `json:"ratioToPhysicalLimit"`
	ReadySeconds       float64 `json:"readySeconds"`
	FirstDeviceSeconds float64 `json:"firstDeviceSeconds"`
	Completed          int     `json:"completed"`
	// APIWrites are the API server's write requests during the import, by
	// resource, from apiserver_request_total.
	APIWrites          map[string]float64 `json:"apiWrites"`
	APIWritesPerDevice float64            `json:"apiWritesPerDevice"`
	// APIReads are its reads (GET and LIST), by resource.
	APIReads       map[string]float64 `json:"apiReads"`
	EdgeXRequests  map[string]int64   `json:"edgexRequests"`
	BridgeCores    float64            `json:"bridgeCores"`
	APIServerCores float64            `json:"apiserverCores"`
	EtcdCores      float64            `json:"etcdCores"`
	BridgeRSSMB    float64            `json:"bridgeRssMB"`
	// ClientThrottleSeconds is how long the bridge's requests waited, in
	// all, for its own --kube-api-qps limiter (client-go's
	// rest_client_rate_limiter_duration_seconds). client-go logs only
	// waits over a second, so its log cannot tell.
	ClientThrottleSeconds float64 `json:"clientThrottleSeconds"`
	// ManagedFieldsEmptied is how many objects' managedFields the bridge
	// emptied once it was quiet after the import, one write each, and
	// EmptiedSeconds when it was done, from the bridge's start. Those
	// writes are not in APIWritesPerDevice.
	ManagedFieldsEmptied float64 `json:"managedFieldsEmptied"`
	EmptiedSeconds       float64 `json:"emptiedSeconds"`
	// WritesInFlight is how many of the bridge's writes the API server
	// was serving at once, on average over the import: the sum of their
	// durations over the import's time (row 1 keeps 32 in flight).
	WritesInFlight float64 `json:"apiWritesInFlight"`
	OtherCores     float64 `json:"otherProcessesCores"`
}

// measureImport starts the pool's bridge and waits for the import.
func (p *pool) measureImport(ctx context.Context, physicalSeconds float64) (importResult, error) {
	n := len(p.fleet)
	res := importResult{Devices: n}
	tracker := newCompletionTracker(p.fleet)
	cancel := p.watch.observe(func(ch deviceChange) {
		if ch.kind != deviceDeleted && importComplete(ch.dev) {
			tracker.complete(v1alpha1.EdgeXName(ch.dev), ch.at)
		}
	})
	defer cancel()

	apiBefore, err := p.rig.apiserverMetrics(ctx)
	if err != nil {
		return res, err
	}
	edgeBefore := p.edgexRequests()
	cpAPI, cpEtcd := p.rig.controlPlane()

	start := time.Now()
	if err := p.startBridge("rest"); err != nil {
		return res, err
	}
	b := p.bridge
	bridgeStart := procSample{at: start}
	profile := b.cpuProfile(ctx, importProfileWindow(physicalSeconds), p.profilePath("import"))
	readyAt := make(chan time.Time, 1)
	go func() {
		if b.waitReady(ctx, 10*time.Minute) == nil {
			readyAt <- time.Now()
		}
		close(readyAt)
	}()

	timeout := 2*time.Minute + time.Duration(20*physicalSeconds*float64(time.Second))
	waitErr := tracker.wait(ctx, timeout, b.alive, func(done int) {
		if p.quiet {
			return
		}
		logf("  import %s: %d/%d devices complete, %.0fs", p.name, done, n, time.Since(start).Seconds())
	})
	end := tracker.last()
	res.Completed = tracker.count()
	if waitErr != nil {
		logf("  import %s incomplete: %v", p.name, waitErr)
		end = time.Now()
	}
	bridgeEnd := b.sample()
	apiAfterCP, etcdAfterCP := p.rig.controlPlane()
	res.Seconds = end.Sub(start).Seconds()
	if physicalSeconds > 0 {
		res.RatioToPhysical = res.Seconds / physicalSeconds
	}
	res.FirstDeviceSeconds = tracker.first().Sub(start).Seconds()
	if t, ok := <-readyAt; ok {
		res.ReadySeconds = t.Sub(start).Seconds()
	}
	res.BridgeCores = (bridgeEnd.cpu - bridgeStart.cpu).Seconds() / end.Sub(start).Seconds()
	res.APIServerCores, res.EtcdCores = cores(cpAPI, apiAfterCP), cores(cpEtcd, etcdAfterCP)
	res.BridgeRSSMB = mb(bridgeEnd.rss)
	res.OtherCores = p.rig.load.othersCores(start, end)

	// The bridge then empties every object's managedFields, a write each,
	// once it is quiet: whatever the rows measure next comes after it.
	// Polled once a second: twenty bridges' metrics read ten times a
	// second took the CPU the API server needed for those writes.
	if err := b.awaitEmptied(ctx, 10*time.Minute); err != nil {
		logf("  import %s: managedFields not all emptied: %v", p.name, err)
	}
	res.EmptiedSeconds = time.Since(start).Seconds()
	// Writes that trail the last complete Device (Events, say) belong to
	// the import too.
	if err := b.waitIdle(ctx, time.Minute); err != nil {
		logf("  import %s: bridge not idle: %v", p.name, err)
	}
	apiAfter, err := p.rig.apiserverMetrics(ctx)
	if err != nil {
		return res, err
	}
	if m, err := b.metrics(ctx); err == nil {
		res.ManagedFieldsEmptied = m.sum("edgebridge_managed_fields_emptied_total", nil)
	}
	res.APIWrites = diffCounts(apiWrites(apiBefore), apiWrites(apiAfter))
	res.APIWritesPerDevice = (total(res.APIWrites) - res.ManagedFieldsEmptied) / float64(n)
	res.APIReads = diffCounts(apiReads(apiBefore), apiReads(apiAfter))
	res.EdgeXRequests = diffCounts(edgeBefore, p.edgexRequests())
	busy := diffCounts(groupSums(apiBefore, "apiserver_request_duration_seconds_sum", apiRequestName),
		groupSums(apiAfter, "apiserver_request_duration_seconds_sum", apiRequestName))
	res.WritesInFlight = total(busy) / res.Seconds
	if m, err := b.metrics(ctx); err == nil {
		res.ClientThrottleSeconds = m.sum("rest_client_rate_limiter_duration_seconds_sum", nil)
	} else {
		logf("  import %s: bridge metrics unreadable: %v", p.name, err)
	}
	if err := <-profile; err != nil {
		logf("  import profile: %v", err)
	}
	return res, waitErr
}

// importProfileWindow is how long the import's CPU profile runs: about as
// long as a good import takes, so that it shows the import, not the rest.
func importProfileWindow(physicalSeconds float64) time.Duration {
	return time.Duration(max(5, min(60, 1.5*physicalSeconds))) * time.Second
}

func (p *pool) profilePath(phase string) string {
	return filepath.Join(p.rig.cfg.out, "profiles", fmt.Sprintf("%s-%s.pprof", p.name, phase))
}

// completionTracker records when each expected device first became
// complete.
type completionTracker struct {
	mu       sync.Mutex
	expected map[string]bool
	at       map[string]time.Time
	firstAt  time.Time
	lastAt   time.Time
	all      chan struct{}
}

func newCompletionTracker(names []string) *completionTracker {
	t := &completionTracker{expected: make(map[string]bool, len(names)), at: map[string]time.Time{}, all: make(chan struct{})}
	for _, n := range names {
		t.expected[n] = true
	}
	return t
}

func (t *completionTracker) complete(name string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.expected[name] {
		return
	}
	if _, seen := t.at[name]; seen {
		return
	}
	t.at[name] = at
	if t.firstAt.IsZero() || at.Before(t.firstAt) {
		t.firstAt = at
	}
	if at.After(t.lastAt) {
		t.lastAt = at
	}
	if len(t.at) == len(t.expected) {
		close(t.all)
	}
}

func (t *completionTracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.at)
}

func (t *completionTracker) first() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstAt
}

func (t *completionTracker) last() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastAt
}

// wait waits until every expected device is complete, reporting progress
// every five seconds; alive stops the wait early when the bridge died.
func (t *completionTracker) wait(ctx context.Context, timeout time.Duration, alive func() error, progress func(int)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-t.all:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%d of %d devices complete after %s: %w", t.count(), len(t.expected), timeout, errTimeout)
		case <-tick.C:
			if err := alive(); err != nil {
				return err
			}
			progress(t.count())
		}
	}
}

func mb(bytes int64) float64 { return float64(bytes) / (1 << 20) }
