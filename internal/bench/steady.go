package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// steadyResult is a pool at rest with telemetry flowing: what it costs
// EdgeX, the API server and the machine.
type steadyResult struct {
	Devices                  int     `json:"devicesWithTelemetry"`
	OtherDevices             int     `json:"otherDevices"`
	ChangingDevices          int     `json:"changingDevices"`
	WindowSeconds            float64 `json:"windowSeconds"`
	TelemetryIntervalSeconds float64 `json:"telemetryIntervalSeconds"`
	StatusIntervalSeconds    float64 `json:"statusIntervalSeconds"`
	ResyncPeriod             string  `json:"resyncPeriod"`

	EventsPublished   int64   `json:"eventsPublished"`
	ReadingsPublished int64   `json:"readingsPublished"`
	ReadingsReceived  float64 `json:"readingsReceived"`
	PublishFailures   int64   `json:"publishFailures"`

	EdgeXRequests          map[string]int64 `json:"edgexRequests"`
	EdgeXRequestsPerMinute float64          `json:"edgexRequestsPerMinute"`

	// APIWrites are from the API server's apiserver_request_total.
	APIWrites          map[string]float64 `json:"apiWrites"`
	APIWritesPerMinute float64            `json:"apiWritesPerMinute"`
	// APIWritesBound is the target: one write per device per coalescing
	// interval.
	APIWritesBoundPerMinute float64 `json:"apiWritesBoundPerMinute"`
	BridgeStatusWrites      float64 `json:"bridgeStatusWrites"`
	// The benchmark's watch sees every write to each device; these split
	// them between devices whose values changed and devices whose did not.
	ChangingDeviceWrites   int `json:"changingDeviceWrites"`
	UnchangingDeviceWrites int `json:"unchangingDeviceWrites"`
	// WritesTooClose counts writes to one device less than the coalescing
	// interval after the previous one (with 10% slack for watch delays).
	WritesTooClose int `json:"writesCloserThanInterval"`

	BridgeCores     float64 `json:"bridgeCores"`
	BridgeRSSMB     float64 `json:"bridgeRssMB"`
	BridgePeakRSSMB float64 `json:"bridgePeakRssMB"`
	APIServerCores  float64 `json:"apiserverCores"`
	EtcdCores       float64 `json:"etcdCores"`
	GeneratorLateMs float64 `json:"generatorMaxLateMs"`
	OtherCores      float64 `json:"otherProcessesCores"`
}

// measureSteady warms the pool up with one event per device, then measures
// a window of telemetry at one event per device per telemetry interval.
func (p *pool) measureSteady(ctx context.Context, gen *telemetryGen, window time.Duration) (steadyResult, error) {
	if err := p.warmUp(ctx, gen); err != nil {
		return steadyResult{}, err
	}
	w, err := p.beginSteady(ctx, gen, window, true)
	if err != nil {
		return w.res, err
	}
	return w.end(ctx, gen.run(ctx, gen.steadyRate(), window, 8))
}

// steadyWindow is a steady-state window under way in one pool: what its
// end compares against.
type steadyWindow struct {
	p       *pool
	res     steadyResult
	writes  *writeLog
	cancel  func()
	before  snapshot
	cluster bool
	profile <-chan error
}

// beginSteady opens a steady-state window on a pool whose devices have all
// reported. With cluster, the window also reads the API server's and
// etcd's figures; pools measured side by side leave that to one reading
// for them all, since those figures are the whole cluster's.
func (p *pool) beginSteady(ctx context.Context, gen *telemetryGen, window time.Duration, cluster bool) (*steadyWindow, error) {
	cfg := p.rig.cfg
	w := &steadyWindow{p: p, cluster: cluster, res: steadyResult{
		Devices: len(gen.devices), ChangingDevices: gen.changing(), WindowSeconds: window.Seconds(),
		TelemetryIntervalSeconds: cfg.telemetryInterval.Seconds(), StatusIntervalSeconds: cfg.statusInterval.Seconds(),
		ResyncPeriod: cfg.resyncPeriod.String(),
	}}
	// Devices the latency rows created still have managedFields the
	// bridge empties once quiet: those writes are not steady state.
	if err := p.bridge.awaitEmptied(ctx, 10*time.Minute); err != nil {
		return w, fmt.Errorf("managedFields still being emptied: %w", err)
	}
	all, err := p.watch.list(ctx)
	if err != nil {
		return w, err
	}
	w.res.OtherDevices = len(all) - w.res.Devices
	w.writes = newWriteLog(gen)
	w.cancel = p.watch.observe(w.writes.record)
	if w.before, err = p.snapshot(ctx, cluster); err != nil {
		w.cancel()
		return w, err
	}
	w.profile = p.bridge.cpuProfile(ctx, window, p.profilePath("steady"))
	w.writes.active.Store(true)
	return w, nil
}

// end closes the window once the telemetry run is over.
func (w *steadyWindow) end(ctx context.Context, run paceResult) (steadyResult, error) {
	p, res := w.p, w.res
	w.writes.active.Store(false)
	defer w.cancel()
	after, err := p.snapshot(ctx, w.cluster)
	if err != nil {
		return res, err
	}
	if err := <-w.profile; err != nil {
		logf("  steady profile: %v", err)
	}
	if err := p.bridge.heapProfile(ctx, p.profilePath("heap")); err != nil {
		logf("  heap profile: %v", err)
	}
	res.fill(w.before, after, run, w.writes, p.rig.cfg.statusInterval)
	res.OtherCores = p.rig.load.othersCores(w.before.at, after.at)
	res.ReadingsReceived = p.awaitReadings(ctx, w.before, res.ReadingsPublished)
	return res, nil
}

// warmUp sends every device one event and waits until every status holds
// its readings, so that the window measures steady state, not the first
// reports.
func (p *pool) warmUp(ctx context.Context, gen *telemetryGen) error {
	return p.warmUpWithin(ctx, gen, warmUpTimeout(len(gen.devices)))
}

// warmUpTimeout bounds a warm-up while the API server takes the first
// status of n devices in all (every pool's, when pools warm up at once).
func warmUpTimeout(n int) time.Duration { return 2*time.Minute + time.Duration(n)*10*time.Millisecond }

// warmUpWithin is warmUp with its own bound.
func (p *pool) warmUpWithin(ctx context.Context, gen *telemetryGen, timeout time.Duration) error {
	gen.burst(ctx)
	expected := map[string]bool{}
	for _, d := range gen.devices {
		expected[d.name] = true
	}
	return poll(ctx, timeout, 500*time.Millisecond, func(ctx context.Context) (bool, error) {
		if err := p.bridge.alive(); err != nil {
			return false, err
		}
		devices, err := p.watch.list(ctx)
		if err != nil {
			return false, err
		}
		ready := 0
		for i := range devices {
			if expected[v1alpha1.EdgeXName(&devices[i])] && hasReadings(&devices[i], gen.perEvent) {
				ready++
			}
		}
		return ready == len(expected), nil
	})
}

// snapshot is every counter a window compares at its ends.
type snapshot struct {
	at                    time.Time
	bridge, apiserver     scrape
	edgex                 map[string]int64
	bridgeProc, api, etcd procSample
}

// snapshot reads the pool's counters, and with cluster the API server's
// and etcd's too.
func (p *pool) snapshot(ctx context.Context, cluster bool) (snapshot, error) {
	s := snapshot{at: time.Now(), edgex: p.edgexRequests(), bridgeProc: p.bridge.sample()}
	var err error
	if s.bridge, err = p.bridge.metrics(ctx); err != nil {
		return s, err
	}
	if !cluster {
		return s, nil
	}
	s.api, s.etcd = p.rig.controlPlane()
	if s.apiserver, err = p.rig.apiserverMetrics(ctx); err != nil {
		return s, err
	}
	return s, nil
}

func (res *steadyResult) fill(before, after snapshot, run paceResult, writes *writeLog, interval time.Duration) {
	minutes := after.at.Sub(before.at).Minutes()
	res.WindowSeconds = after.at.Sub(before.at).Seconds()
	res.EventsPublished = writes.gen.events.Load() - writes.startEvents
	res.ReadingsPublished = writes.gen.readings.Load() - writes.startReadings
	res.PublishFailures = writes.gen.failures.Load() - writes.startFailures
	res.EdgeXRequests = diffCounts(before.edgex, after.edgex)
	res.EdgeXRequestsPerMinute = float64(total(res.EdgeXRequests)) / minutes
	res.APIWrites = diffCounts(apiWrites(before.apiserver), apiWrites(after.apiserver))
	res.APIWritesPerMinute = total(res.APIWrites) / minutes
	res.APIWritesBoundPerMinute = float64(res.Devices+res.OtherDevices) * time.Minute.Seconds() / interval.Seconds()
	res.BridgeStatusWrites = after.bridge.sum("edgebridge_status_writes_total", nil) - before.bridge.sum("edgebridge_status_writes_total", nil)
	res.ChangingDeviceWrites, res.UnchangingDeviceWrites, res.WritesTooClose = writes.summary(interval)
	res.BridgeCores = cores(before.bridgeProc, after.bridgeProc)
	res.BridgeRSSMB, res.BridgePeakRSSMB = mb(after.bridgeProc.rss), mb(after.bridgeProc.hwm)
	res.APIServerCores, res.EtcdCores = cores(before.api, after.api), cores(before.etcd, after.etcd)
	res.GeneratorLateMs = float64(run.MaxLate.Microseconds()) / 1000
}

// awaitReadings waits a little for the bridge to count the readings of the
// window's last events, and returns how many it received in all.
func (p *pool) awaitReadings(ctx context.Context, before snapshot, published int64) float64 {
	base := before.bridge.sum("edgebridge_readings_total", nil)
	var received float64
	_ = poll(ctx, 10*time.Second, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		m, err := p.bridge.metrics(ctx)
		if err != nil {
			return false, err
		}
		received = m.sum("edgebridge_readings_total", nil) - base
		return received >= float64(published), nil
	})
	return received
}

// writeLog records, while active, when each telemetry device's object was
// written.
type writeLog struct {
	gen                                       *telemetryGen
	changing                                  map[string]bool
	active                                    atomic.Bool
	startEvents, startReadings, startFailures int64

	mu sync.Mutex
	at map[string][]time.Time
}

func newWriteLog(gen *telemetryGen) *writeLog {
	w := &writeLog{gen: gen, changing: map[string]bool{}, at: map[string][]time.Time{}}
	for _, d := range gen.devices {
		w.changing[d.name] = d.changing
	}
	w.startEvents, w.startReadings, w.startFailures = gen.events.Load(), gen.readings.Load(), gen.failures.Load()
	return w
}

func (w *writeLog) record(ch deviceChange) {
	if !w.active.Load() || ch.kind != deviceUpdated || ch.old == nil || ch.old.ResourceVersion == ch.dev.ResourceVersion {
		return
	}
	name := v1alpha1.EdgeXName(ch.dev)
	if _, ok := w.changing[name]; !ok {
		return
	}
	w.mu.Lock()
	w.at[name] = append(w.at[name], ch.at)
	w.mu.Unlock()
}

// summary splits the writes between changing and unchanging devices and
// counts writes that came sooner than the coalescing interval allows.
func (w *writeLog) summary(interval time.Duration) (changing, unchanging, tooClose int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	slack := interval / 10
	for name, times := range w.at {
		if w.changing[name] {
			changing += len(times)
		} else {
			unchanging += len(times)
		}
		for i := 1; i < len(times); i++ {
			if times[i].Sub(times[i-1]) < interval-slack {
				tooClose++
			}
		}
	}
	return changing, unchanging, tooClose
}

func (res steadyResult) String() string {
	return fmt.Sprintf("%d devices, %.0f s: EdgeX %.1f req/min, API %.0f writes/min, bridge %.3f cores, %.0f MB",
		res.Devices, res.WindowSeconds, res.EdgeXRequestsPerMinute, res.APIWritesPerMinute, res.BridgeCores, res.BridgeRSSMB)
}
