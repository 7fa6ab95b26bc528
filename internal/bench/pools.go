package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Row 9: many pools on one API server, as an OpenYurt cluster has them. A
// pool measured alone is the reference; then N pools of the same size, each
// with its own EdgeX (a simulator of its own, topics under its own prefix)
// and its own bridge process, run side by side against the one API server
// with telemetry flowing in every pool. All the pools keep their Devices in
// one namespace, so that only the bridges' selection by spec.nodePool keeps
// one pool's objects out of another's bridge: if it did not, a bridge's
// memory and CPU would grow with the cluster, which is what the row checks.

// poolsNamespace holds every pool of row 9.
const poolsNamespace = "pools"

// commandTargetsPerPool are the managed Devices each pool of row 9 gets
// for commands (imported Devices are mirrors, which take no commands).
const commandTargetsPerPool = 10

// poolsResult is row 9.
type poolsResult struct {
	Pools          int    `json:"pools"`
	DevicesPerPool int    `json:"devicesPerPool"`
	Namespace      string `json:"namespace"`
	// StatusWriteRate is every bridge's --status-write-rate, the pool
	// alone's too (0: none).
	StatusWriteRate float64 `json:"statusWriteRate"`
	// Alone is one pool of the same size with no other bridge running.
	Alone    alonePool          `json:"alone"`
	Import   *poolsImport       `json:"import,omitempty"`
	Steady   *poolsSteady       `json:"steady,omitempty"`
	Commands *poolsCommandPhase `json:"commands,omitempty"`
}

// alonePool is the reference: the same measurements on one pool while it
// is the only one.
type alonePool struct {
	Import   *importResult `json:"import,omitempty"`
	Steady   *steadyResult `json:"steady,omitempty"`
	Commands *commandPhase `json:"commands,omitempty"`
	// Cluster is the API server's side of the steady window.
	Cluster *clusterWindow `json:"cluster,omitempty"`
}

// poolsImport is every pool's import, all started at once.
type poolsImport struct {
	// WallSeconds runs from starting the bridges to the last pool's last
	// Device becoming complete.
	WallSeconds float64 `json:"wallSeconds"`
	// PoolSeconds is each pool's own import time, by pool.
	PoolSeconds map[string]float64 `json:"poolSeconds"`
	P50Seconds  float64            `json:"p50Seconds"`
	MaxSeconds  float64            `json:"maxSeconds"`
	Completed   int                `json:"completed"`
	Devices     int                `json:"devices"`
	// The API server's and etcd's cost, and the writes, are the whole
	// cluster's over the wall time.
	APIWrites          map[string]float64 `json:"apiWrites"`
	APIWritesPerDevice float64            `json:"apiWritesPerDevice"`
	// ManagedFieldsEmptied are the writes that emptied managedFields once
	// each bridge was quiet, not in APIWritesPerDevice.
	ManagedFieldsEmptied float64       `json:"managedFieldsEmptied"`
	APIServerCores       float64       `json:"apiserverCores"`
	EtcdCores            float64       `json:"etcdCores"`
	Machine              machineWindow `json:"machine"`
}

// bridgeCost is one bridge's share of a steady window.
type bridgeCost struct {
	Pool              string  `json:"pool"`
	Cores             float64 `json:"cores"`
	CPUSeconds        float64 `json:"cpuSeconds"`
	RSSMB             float64 `json:"rssMB"`
	PeakRSSMB         float64 `json:"peakRssMB"`
	ReadingsPublished int64   `json:"readingsPublished"`
	ReadingsReceived  float64 `json:"readingsReceived"`
	StatusWrites      float64 `json:"statusWrites"`
	EdgeXRequests     int64   `json:"edgexRequests"`
}

func costOf(pool string, s steadyResult) bridgeCost {
	return bridgeCost{
		Pool: pool, Cores: s.BridgeCores, CPUSeconds: s.BridgeCores * s.WindowSeconds, RSSMB: s.BridgeRSSMB, PeakRSSMB: s.BridgePeakRSSMB,
		ReadingsPublished: s.ReadingsPublished, ReadingsReceived: s.ReadingsReceived, StatusWrites: s.BridgeStatusWrites,
		EdgeXRequests: total(s.EdgeXRequests),
	}
}

// poolsSteady is the steady window with telemetry in every pool.
type poolsSteady struct {
	WindowSeconds float64      `json:"windowSeconds"`
	Bridges       []bridgeCost `json:"bridges"`
	// The median and largest bridge, for the table.
	CoresP50 float64 `json:"coresP50"`
	CoresMax float64 `json:"coresMax"`
	RSSP50   float64 `json:"rssMBP50"`
	RSSMax   float64 `json:"rssMBMax"`
	// ReadingsLost are readings published in the window that no bridge
	// counted.
	ReadingsLost float64       `json:"readingsLost"`
	Cluster      clusterWindow `json:"cluster"`
}

// clusterWindow is what the API server, etcd and the machine did over a
// window, from /proc and the API server's own /metrics.
type clusterWindow struct {
	APIServerCores float64 `json:"apiserverCores"`
	APIServerRSSMB float64 `json:"apiserverRssMB"`
	EtcdCores      float64 `json:"etcdCores"`
	EtcdRSSMB      float64 `json:"etcdRssMB"`
	// Watches are the API server's open watches by resource
	// (apiserver_longrunning_requests{verb="WATCH"}) at the window's end.
	Watches      map[string]float64 `json:"watches"`
	WatchesTotal float64            `json:"watchesTotal"`
	// DeviceWrites are writes of Devices (status included) in the window,
	// DeviceWatchEvents the watch events the API server sent for them
	// (apiserver_watch_events_total): with every watch selecting one pool,
	// each write reaches its pool's bridge and the benchmark's watch of
	// that pool, two events, however many pools there are.
	DeviceWrites        float64 `json:"deviceWrites"`
	DeviceWatchEvents   float64 `json:"deviceWatchEvents"`
	WatchEventsPerWrite float64 `json:"watchEventsPerWrite"`
	APIWritesPerSecond  float64 `json:"apiWritesPerSecond"`
	// DeviceObjects and DeviceBytes are the API server's count and size
	// estimate of stored Devices (apiserver_resource_objects,
	// apiserver_resource_size_estimate_bytes), for the scaling notes.
	DeviceObjects float64 `json:"deviceObjects"`
	DeviceBytes   float64 `json:"deviceBytes"`
	// StorageBytes is etcd's database file (apiserver_storage_size_bytes).
	StorageBytes float64 `json:"storageBytes"`
	// WriteMs is the API server's mean time per write of the bridge's
	// kinds and Events, DeviceDispatchMs its mean time to hand a Device
	// event from etcd to a watcher, by stage
	// (apiserver_watch_events_dispatch_duration_seconds), and
	// TerminatedWatchers the watchers it closed as too slow to keep up:
	// what a latency measured through a watch is made of.
	WriteMs            map[string]float64 `json:"writeMs,omitempty"`
	DeviceDispatchMs   map[string]float64 `json:"deviceDispatchMs,omitempty"`
	TerminatedWatchers float64            `json:"terminatedWatchers"`
	Machine            machineWindow      `json:"machine"`
	GC                 apiserverGC        `json:"apiserverGC"`
}

// apiserverGC is what the API server's Go garbage collector did in a
// window, from its runtime metrics. With thousands of Devices the API
// server's heap is mostly unstructured objects: the stored ones and every
// version its watch cache still holds. A request that runs while a
// collection marks that heap is slowed by the marking it must help with,
// so this is where a latency measured through the API server goes when the
// bridges are not the cause.
type apiserverGC struct {
	Cycles float64 `json:"cycles"`
	// CPUShare is the share of the API server's CPU spent collecting,
	// AssistSeconds the part of it done by request goroutines made to help.
	CPUShare      float64 `json:"cpuShare"`
	AssistSeconds float64 `json:"markAssistSeconds"`
	// LiveHeapMB is the heap the last collection kept, AllocMBPerSecond the
	// rate the API server allocated at.
	LiveHeapMB       float64 `json:"liveHeapMB"`
	AllocMBPerSecond float64 `json:"allocMBPerSecond"`
	// DeviceWatchCache is how many events the watch cache of Devices holds
	// (watch_cache_capacity): it keeps at least 75 s of them, so it grows
	// with the Device write rate.
	DeviceWatchCache float64 `json:"deviceWatchCacheCapacity"`
}

func gcBetween(before, after scrape, seconds float64) apiserverGC {
	delta := func(name string) float64 { return after.sum(name, nil) - before.sum(name, nil) }
	out := apiserverGC{
		Cycles:           delta("go_gc_cycles_total_gc_cycles_total"),
		AssistSeconds:    delta("go_cpu_classes_gc_mark_assist_cpu_seconds_total"),
		LiveHeapMB:       after.sum("go_gc_heap_live_bytes", nil) / (1 << 20),
		DeviceWatchCache: after.sum("watch_cache_capacity", map[string]string{"resource": "devices"}),
	}
	// The runtime's own CPU classes, idle excluded, so that the share is
	// of the CPU the API server used.
	if used := delta("go_cpu_classes_total_cpu_seconds_total") - delta("go_cpu_classes_idle_cpu_seconds_total"); used > 0 {
		out.CPUShare = delta("go_cpu_classes_gc_total_cpu_seconds_total") / used
	}
	if seconds > 0 {
		out.AllocMBPerSecond = delta("go_gc_heap_allocs_bytes_total") / (1 << 20) / seconds
	}
	return out
}

func (g apiserverGC) describe() string {
	if g.Cycles == 0 && g.LiveHeapMB == 0 {
		return "API server GC not reported"
	}
	return fmt.Sprintf("API server GC: %.0f cycles, %.0f %% of its CPU (%.1f s of it in request goroutines made to assist), %.0f MB live heap, %.0f MB/s allocated, watch cache of Devices %.0f events",
		g.Cycles, 100*g.CPUShare, g.AssistSeconds, g.LiveHeapMB, g.AllocMBPerSecond, g.DeviceWatchCache)
}

// poolsCommandPhase is commands to every pool at once, telemetry flowing.
type poolsCommandPhase struct {
	Transport     string  `json:"transport"`
	RatePerSecond float64 `json:"ratePerSecondAllPools"`
	WindowSeconds float64 `json:"windowSeconds"`
	Commands      int     `json:"commands"`
	FailedCalls   int     `json:"failedCalls"`
	MaxLateMs     float64 `json:"generatorMaxLateMs"`
	// Latency merges every pool's samples; WorstPoolP99Ms is the highest
	// p99 of one pool's own.
	Latency        latencyStats `json:"latency"`
	WorstPoolP99Ms float64      `json:"worstPoolP99Ms"`
	// SeenByWatch is from each patch to the benchmark's own watch of the
	// pool showing it: the part of the latency that is the API server's
	// write and watch delivery, which the bridge waits for just the same.
	SeenByWatch latencyStats `json:"seenByWatch"`
	// BridgeCommandMeanMs is the bridges' own mean from sending a command
	// to its answer, weighted by commands.
	BridgeCommandMeanMs float64       `json:"bridgeCommandMeanMs"`
	OtherCores          float64       `json:"otherProcessesCores"`
	Cluster             clusterWindow `json:"cluster"`
	// SlowBySecond counts the commands slower than slowCommand by the
	// second of the window they were patched in: a few seconds hold them
	// all when something stalled, every second some when the load is
	// simply too much.
	SlowBySecond map[int]int `json:"slowBySecond,omitempty"`
}

// measurePools measures row 9: the pool alone, then every pool at once.
// physicalPerDevice (0 when row 1 was not measured) sizes the import
// timeouts.
func measurePools(ctx context.Context, r *rig, physicalPerDevice float64) (*poolsResult, error) {
	cfg := r.cfg
	res := &poolsResult{Pools: cfg.pools, DevicesPerPool: cfg.poolDevices, Namespace: poolsNamespace, StatusWriteRate: cfg.poolStatusWriteRate}
	if physicalPerDevice <= 0 {
		// Row 1 on this machine, for the timeouts only.
		physicalPerDevice = 0.006
	}
	logf("9. many pools: one pool of %d devices alone", cfg.poolDevices)
	if err := measureAlone(ctx, r, &res.Alone, physicalPerDevice); err != nil {
		return res, fmt.Errorf("the pool alone: %w", err)
	}
	logf("9. many pools: %d pools of %d devices, one bridge each, all at once", cfg.pools, cfg.poolDevices)
	return res, measureSideBySide(ctx, r, res, physicalPerDevice)
}

// newRowNinePool is one of row 9's pools, the one alone included: in the
// namespace they share, of the row's size, its bridge under the row's
// status write budget.
func newRowNinePool(ctx context.Context, r *rig, name string) (*pool, error) {
	p, err := newPoolIn(ctx, r, name, poolsNamespace, r.cfg.poolDevices)
	if err != nil {
		return nil, err
	}
	p.statusWriteRate = r.cfg.poolStatusWriteRate
	return p, nil
}

// measureAlone imports one pool, holds it in steady state and commands it,
// with no other bridge running; its bridge is stopped at the end, its
// objects stay.
func measureAlone(ctx context.Context, r *rig, out *alonePool, physicalPerDevice float64) error {
	cfg := r.cfg
	p, err := newRowNinePool(ctx, r, "pool-alone")
	if err != nil {
		return err
	}
	defer p.close()
	imp, err := p.measureImport(ctx, physicalPerDevice*float64(cfg.poolDevices))
	out.Import = &imp
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	logf("   import %s", secs(imp.Seconds))
	targets, err := p.createTargets(ctx, commandTargetsPerPool)
	if err != nil {
		return err
	}
	gen, err := newTelemetryGen(ctx, p, cfg.changingShare)
	if err != nil {
		return fmt.Errorf("telemetry generator: %w", err)
	}
	defer gen.close()
	if err := p.warmUp(ctx, gen); err != nil {
		return fmt.Errorf("telemetry warm-up: %w", err)
	}
	before, err := r.clusterSample(ctx)
	if err != nil {
		return err
	}
	w, err := p.beginSteady(ctx, gen, cfg.steadyWindow, false)
	if err != nil {
		return err
	}
	run := gen.run(ctx, gen.steadyRate(), cfg.steadyWindow, 8)
	after, err := r.clusterSample(ctx)
	if err != nil {
		return err
	}
	st, err := w.end(ctx, run)
	if err != nil {
		return fmt.Errorf("steady state: %w", err)
	}
	out.Steady = &st
	cw := clusterBetween(before, after)
	out.Cluster = &cw
	logf("   steady: bridge %.3f cores, %.0f MB", st.BridgeCores, st.BridgeRSSMB)
	stop := telemetryInBackground(ctx, []*telemetryGen{gen})
	c, err := p.commandsAt(ctx, "rest", targets, cfg.commandRate, 0, false)
	stop()
	if err != nil {
		return fmt.Errorf("commands: %w", err)
	}
	if c.SeenByWatch != nil {
		c.SeenByWatch.SamplesMs = nil
	}
	out.Commands = &c
	logf("   commands: %s", describeLatency(c.Latency))
	return nil
}

// measureSideBySide starts every pool's bridge at once and measures the
// import, a steady window and commands, all pools together.
func measureSideBySide(ctx context.Context, r *rig, res *poolsResult, physicalPerDevice float64) error {
	cfg := r.cfg
	pools := make([]*pool, cfg.pools)
	defer func() {
		for _, p := range pools {
			if p != nil {
				p.close()
			}
		}
	}()
	for i := range pools {
		var err error
		if pools[i], err = newRowNinePool(ctx, r, fmt.Sprintf("pool-%02d", i+1)); err != nil {
			return err
		}
		pools[i].quiet = true
	}

	imp, err := importAll(ctx, r, pools, physicalPerDevice*float64(cfg.pools*cfg.poolDevices))
	res.Import = imp
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	logf("   import: all %d pools in %s (per pool p50 %s, max %s)", cfg.pools, secs(imp.WallSeconds), secs(imp.P50Seconds), secs(imp.MaxSeconds))

	targets := make([][]managedDevice, len(pools))
	gens := make([]*telemetryGen, len(pools))
	defer func() {
		for _, g := range gens {
			if g != nil {
				g.close()
			}
		}
	}()
	err = eachPool(ctx, pools, func(ctx context.Context, i int, p *pool) error {
		var err error
		if targets[i], err = p.createTargets(ctx, commandTargetsPerPool); err != nil {
			return err
		}
		if gens[i], err = newTelemetryGen(ctx, p, cfg.changingShare); err != nil {
			return fmt.Errorf("telemetry generator: %w", err)
		}
		// The API server takes every pool's first statuses at once.
		return p.warmUpWithin(ctx, gens[i], warmUpTimeout(cfg.pools*cfg.poolDevices))
	})
	if err != nil {
		return fmt.Errorf("command targets and telemetry warm-up: %w", err)
	}

	st, err := steadyAll(ctx, r, pools, gens)
	res.Steady = st
	if err != nil {
		return fmt.Errorf("steady state: %w", err)
	}
	logf("   steady: bridges %.3f cores (max %.3f), %.0f MB (max %.0f); API server %.2f cores, %.0f watches",
		st.CoresP50, st.CoresMax, st.RSSP50, st.RSSMax, st.Cluster.APIServerCores, st.Cluster.WatchesTotal)

	stop := telemetryInBackground(ctx, gens)
	c, err := commandAll(ctx, r, pools, targets)
	stop()
	res.Commands = c
	if err != nil {
		return fmt.Errorf("commands: %w", err)
	}
	logf("   commands: %s", describeLatency(c.Latency))
	return nil
}

// eachPool runs fn for every pool at once and joins their errors.
func eachPool(ctx context.Context, pools []*pool, fn func(ctx context.Context, i int, p *pool) error) error {
	errs := make([]error, len(pools))
	var wg sync.WaitGroup
	for i, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx, i, p); err != nil {
				errs[i] = fmt.Errorf("pool %s: %w", p.name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// importAll starts every pool's bridge at once and waits for each import.
func importAll(ctx context.Context, r *rig, pools []*pool, physicalSeconds float64) (*poolsImport, error) {
	out := &poolsImport{PoolSeconds: map[string]float64{}}
	before, err := r.clusterSample(ctx)
	if err != nil {
		return out, err
	}
	results := make([]importResult, len(pools))
	err = eachPool(ctx, pools, func(ctx context.Context, i int, p *pool) error {
		var err error
		results[i], err = p.measureImport(ctx, physicalSeconds)
		return err
	})
	after, sampleErr := r.clusterSample(ctx)
	var seconds []float64
	for i, imp := range results {
		out.PoolSeconds[pools[i].name] = imp.Seconds
		seconds = append(seconds, imp.Seconds)
		out.Completed += imp.Completed
		out.Devices += imp.Devices
		out.WallSeconds = max(out.WallSeconds, imp.Seconds)
	}
	slices.Sort(seconds)
	out.P50Seconds, out.MaxSeconds = percentile(seconds, 50), percentile(seconds, 100)
	if sampleErr != nil {
		return out, errors.Join(err, sampleErr)
	}
	// Each import waited for its bridge to be idle before reading the
	// API server, so the later reading holds every write of every pool.
	cw := clusterBetween(before, after)
	out.APIWrites = diffCounts(apiWrites(before.metrics), apiWrites(after.metrics))
	var emptied float64
	for _, imp := range results {
		emptied += imp.ManagedFieldsEmptied
	}
	out.ManagedFieldsEmptied = emptied
	out.APIWritesPerDevice = (total(out.APIWrites) - emptied) / float64(max(out.Devices, 1))
	out.APIServerCores, out.EtcdCores, out.Machine = cw.APIServerCores, cw.EtcdCores, cw.Machine
	return out, err
}

// steadyAll holds every pool in steady state for the steady window at
// once, telemetry flowing in each at the rate of the pool alone.
func steadyAll(ctx context.Context, r *rig, pools []*pool, gens []*telemetryGen) (*poolsSteady, error) {
	cfg := r.cfg
	windows := make([]*steadyWindow, len(pools))
	err := eachPool(ctx, pools, func(ctx context.Context, i int, p *pool) error {
		var err error
		windows[i], err = p.beginSteady(ctx, gens[i], cfg.steadyWindow, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	before, err := r.clusterSample(ctx)
	if err != nil {
		return nil, err
	}
	runs := make([]paceResult, len(pools))
	_ = eachPool(ctx, pools, func(ctx context.Context, i int, _ *pool) error {
		runs[i] = gens[i].run(ctx, gens[i].steadyRate(), cfg.steadyWindow, 4)
		return nil
	})
	after, err := r.clusterSample(ctx)
	if err != nil {
		return nil, err
	}
	out := &poolsSteady{WindowSeconds: after.at.Sub(before.at).Seconds(), Cluster: clusterBetween(before, after)}
	results := make([]steadyResult, len(pools))
	err = eachPool(ctx, pools, func(ctx context.Context, i int, _ *pool) error {
		var err error
		results[i], err = windows[i].end(ctx, runs[i])
		return err
	})
	var coresList, rssList []float64
	for i, s := range results {
		c := costOf(pools[i].name, s)
		out.Bridges = append(out.Bridges, c)
		coresList, rssList = append(coresList, c.Cores), append(rssList, c.RSSMB)
		out.ReadingsLost += max(0, float64(c.ReadingsPublished)-c.ReadingsReceived)
	}
	slices.Sort(coresList)
	slices.Sort(rssList)
	out.CoresP50, out.CoresMax = percentile(coresList, 50), percentile(coresList, 100)
	out.RSSP50, out.RSSMax = percentile(rssList, 50), percentile(rssList, 100)
	return out, err
}

// commandAll commands every pool at once, the run's command rate shared
// among the pools, so that the cluster takes as many commands a second as
// the pool alone did.
func commandAll(ctx context.Context, r *rig, pools []*pool, targets [][]managedDevice) (*poolsCommandPhase, error) {
	cfg := r.cfg
	rate := cfg.commandRate / float64(len(pools))
	out := &poolsCommandPhase{Transport: "rest", RatePerSecond: cfg.commandRate}
	phases := make([]commandPhase, len(pools))
	before, err := r.clusterSample(ctx)
	if err != nil {
		return out, err
	}
	// With -pprof, what the API server spends the command window on: the
	// tail of this phase is the API server's.
	profiled := r.apiserverCPUProfile(ctx, cfg.commandWindow,
		filepath.Join(cfg.out, "profiles", "pools-commands-apiserver.pprof"))
	allocProfiled := r.apiserverAllocProfile(ctx, cfg.commandWindow,
		filepath.Join(cfg.out, "profiles", "pools-commands-apiserver-allocs.pprof"))
	start := time.Now()
	// Each pool's schedule starts one interval of the whole rate after the
	// previous pool's: the commands of all pools arrive one at a time at
	// the configured rate, not every pool's at the same instant.
	interval := time.Duration(float64(time.Second) / cfg.commandRate)
	err = eachPool(ctx, pools, func(ctx context.Context, i int, p *pool) error {
		var err error
		phases[i], err = p.commandsAt(ctx, "rest", targets[i], rate, time.Duration(i)*interval, false)
		return err
	})
	out.OtherCores = r.load.othersCores(start, time.Now())
	if perr := <-profiled; perr != nil {
		logf("   API server profile of the command window: %v", perr)
	}
	if aerr := <-allocProfiled; aerr != nil {
		logf("   API server allocations in the command window: %v", aerr)
	}
	if herr := r.apiserverHeapProfile(ctx, filepath.Join(cfg.out, "profiles", "pools-commands-apiserver-heap.pprof")); herr != nil {
		logf("   API server heap profile after the command window: %v", herr)
	}
	after, sampleErr := r.clusterSample(ctx)
	if sampleErr == nil {
		out.Cluster = clusterBetween(before, after)
	}
	var samples, seen []float64
	missed, seenMissed := 0, 0
	for _, ph := range phases {
		for _, at := range ph.slowSent {
			if out.SlowBySecond == nil {
				out.SlowBySecond = map[int]int{}
			}
			out.SlowBySecond[int(at.Sub(start).Seconds())]++
		}
		if ph.SeenByWatch != nil {
			seen = append(seen, ph.SeenByWatch.SamplesMs...)
			seenMissed += ph.SeenByWatch.Missed
		}
		out.BridgeCommandMeanMs += ph.BridgeCommandMeanMs * float64(ph.Latency.Count)
		out.Commands += ph.Commands
		out.FailedCalls += ph.FailedCalls
		out.WindowSeconds = max(out.WindowSeconds, ph.WindowSeconds)
		out.MaxLateMs = max(out.MaxLateMs, ph.MaxLateMs)
		out.WorstPoolP99Ms = max(out.WorstPoolP99Ms, ph.Latency.P99)
		samples = append(samples, ph.Latency.SamplesMs...)
		missed += ph.Latency.Missed
	}
	out.Latency = summarizeMs(samples, missed)
	out.SeenByWatch = summarizeMs(seen, seenMissed)
	out.SeenByWatch.SamplesMs = nil
	if out.Latency.Count > 0 {
		out.BridgeCommandMeanMs /= float64(out.Latency.Count)
	}
	return out, errors.Join(err, sampleErr)
}

// createTargets applies n managed Devices in the pool and waits until the
// bridge has created each in EdgeX.
func (p *pool) createTargets(ctx context.Context, n int) ([]managedDevice, error) {
	var targets []managedDevice
	names := make([]string, n)
	for i := range n {
		d := p.managedDevice(fmt.Sprintf("%s-cmd-%02d", p.name, i), i)
		names[i] = d.Name
		targets = append(targets, managedDevice{name: d.Name, profile: d.Spec.Profile})
	}
	tracker := newCompletionTracker(names)
	cancel := p.watch.observe(func(ch deviceChange) {
		if ch.kind != deviceDeleted && importComplete(ch.dev) {
			tracker.complete(ch.dev.Name, ch.at)
		}
	})
	defer cancel()
	for i := range n {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		err := p.rig.client.Create(cctx, p.managedDevice(names[i], i))
		ccancel()
		if err != nil {
			return nil, fmt.Errorf("create managed device %s: %w", names[i], err)
		}
	}
	// Devices that were complete before the watch's observer started
	// count too.
	devices, err := p.watch.list(ctx)
	if err != nil {
		return nil, err
	}
	for i := range devices {
		if importComplete(&devices[i]) {
			tracker.complete(devices[i].Name, time.Now())
		}
	}
	// Bounded like an import of the whole cluster: pools measured side by
	// side create theirs at once.
	bound := 2*time.Minute + time.Duration(p.rig.cfg.pools*n)*100*time.Millisecond
	if err := tracker.wait(ctx, bound, p.bridge.alive, func(int) {}); err != nil {
		return nil, fmt.Errorf("managed devices for commands: %w", err)
	}
	return targets, nil
}

// telemetryInBackground keeps every pool's telemetry at its steady rate
// until stop is called.
func telemetryInBackground(ctx context.Context, gens []*telemetryGen) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, g := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.run(ctx, g.steadyRate(), time.Hour, 4)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// clusterSample is what the control plane and the machine say at one
// moment.
type clusterSample struct {
	at        time.Time
	api, etcd procSample
	metrics   scrape
	machine   machineCPU
}

func (r *rig) clusterSample(ctx context.Context) (clusterSample, error) {
	s := clusterSample{at: time.Now()}
	s.api, s.etcd = r.controlPlane()
	s.machine, _ = sampleMachineCPU()
	var err error
	s.metrics, err = r.apiserverMetrics(ctx)
	return s, err
}

func clusterBetween(before, after clusterSample) clusterWindow {
	out := clusterWindow{
		APIServerCores: cores(before.api, after.api), APIServerRSSMB: mb(after.api.rss),
		EtcdCores: cores(before.etcd, after.etcd), EtcdRSSMB: mb(after.etcd.rss),
		Watches:      after.metrics.by("apiserver_longrunning_requests", "resource", map[string]string{"verb": "WATCH"}),
		WatchesTotal: after.metrics.sum("apiserver_longrunning_requests", map[string]string{"verb": "WATCH"}),
		Machine:      machineBetween(before.machine, after.machine),
	}
	writes := diffCounts(apiWrites(before.metrics), apiWrites(after.metrics))
	out.DeviceWrites = writes["devices"] + writes["devices/status"]
	if secs := after.at.Sub(before.at).Seconds(); secs > 0 {
		out.APIWritesPerSecond = total(writes) / secs
	}
	devices := map[string]string{"resource": "devices"}
	out.DeviceWatchEvents = after.metrics.sum("apiserver_watch_events_total", devices) - before.metrics.sum("apiserver_watch_events_total", devices)
	if out.DeviceWrites > 0 {
		out.WatchEventsPerWrite = out.DeviceWatchEvents / out.DeviceWrites
	}
	out.DeviceObjects = after.metrics.sum("apiserver_resource_objects", devices)
	out.DeviceBytes = after.metrics.sum("apiserver_resource_size_estimate_bytes", devices)
	out.StorageBytes = after.metrics.sum("apiserver_storage_size_bytes", nil)
	out.WriteMs = histogramMeans(before.metrics, after.metrics, "apiserver_request_duration_seconds", apiRequestName)
	out.DeviceDispatchMs = histogramMeans(before.metrics, after.metrics, "apiserver_watch_events_dispatch_duration_seconds", func(l map[string]string) string {
		if l["resource"] != "devices" {
			return ""
		}
		return l["stage"]
	})
	out.TerminatedWatchers = after.metrics.sum("apiserver_terminated_watchers_total", nil) - before.metrics.sum("apiserver_terminated_watchers_total", nil)
	out.GC = gcBetween(before.metrics, after.metrics, after.at.Sub(before.at).Seconds())
	return out
}

// summarizeMs is summarize for samples already in milliseconds.
func summarizeMs(samples []float64, missed int) latencyStats {
	ds := make([]time.Duration, len(samples))
	for i, v := range samples {
		ds[i] = time.Duration(v * float64(time.Millisecond))
	}
	return summarize(ds, missed)
}
