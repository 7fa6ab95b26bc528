package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

var runStart = time.Now()

// logf prints progress with the time since the run started.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(runStart).Seconds(), fmt.Sprintf(format, args...))
}

// run measures every phase in order. A phase that fails is recorded and,
// where later phases do not depend on it, the run goes on.
func run(ctx context.Context, cfg *config) (*results, error) {
	for _, dir := range []string{cfg.out, cfg.logDir(), filepath.Join(cfg.out, "profiles")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	res := newResults(cfg)
	load := startLoadMonitor(2 * time.Second)
	res.Machine = machineLoad{CPUs: runtime.NumCPU(), LoadAverageStart: loadAverage()}
	defer func() {
		load.close()
		res.Machine.LoadAverageEnd = loadAverage()
		res.Machine.OtherCores = load.othersCores(res.StartedAt, time.Now())
		res.Machine.Busiest = load.busiest(5)
		res.DurationSeconds = time.Since(res.StartedAt).Seconds()
		res.evaluate()
	}()

	logf("starting kube-apiserver, etcd and mosquitto")
	r, err := startRig(ctx, cfg, load)
	if err != nil {
		return res, err
	}
	defer func() {
		if r != nil {
			r.stop()
		}
	}()
	res.Settings.EtcdDataDir = r.etcdDataPlace()

	var physicalSeconds float64
	if cfg.measures("1") {
		logf("1. physical limit: %d creates + %d status writes, %d in flight", cfg.devices, cfg.devices, cfg.physicalWorkers)
		physical, err := measurePhysicalLimit(ctx, r, cfg.devices)
		if err != nil {
			return res, err
		}
		res.Physical = &physical
		physicalSeconds = physical.TotalSeconds
		logf("   %s (%.0f creates/s, %.0f status writes/s)", secs(physical.TotalSeconds), physical.CreatesPerSecond, physical.StatusWritesPerSec)
	}

	// Every import starts on a control plane as fresh as the one row 1
	// measured: the objects an earlier phase leaves, and the watch cache's
	// window of their events, make each write the API server takes dearer
	// (a larger heap to collect), and a comparison with row 1 would charge
	// that to the bridge. Row 1 needs no such restart: it runs first.
	measured := cfg.measures("1")
	fresh := func(what string) (*rig, error) {
		if !measured {
			measured = true
			return r, nil
		}
		logf("   a fresh API server, etcd and mosquitto for %s", what)
		if r != nil { // nil after a restart that failed
			r.stop()
		}
		var err error
		if r, err = startRig(ctx, cfg, load); err != nil {
			return nil, fmt.Errorf("restart the control plane for %s: %w", what, err)
		}
		return r, nil
	}

	var points []growthPoint
	if cfg.measures("8") {
		if points, err = measureSmallerPools(ctx, cfg, fresh, physicalSeconds/float64(cfg.devices)); err != nil {
			res.Errors = append(res.Errors, "cost growth: "+err.Error())
		}
	}
	if cfg.measures("2", "3", "4", "5", "6", "7") {
		r, err := fresh("the main pool")
		if err == nil {
			err = measureMainPool(ctx, r, res, physicalSeconds)
		}
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
	}
	if cfg.measures("8") {
		if res.Import != nil && res.Steady != nil {
			points = append(points, growthPoint{Devices: cfg.devices, ImportSeconds: res.Import.Seconds,
				RSSMB: res.Steady.BridgeRSSMB, SteadyCores: res.Steady.BridgeCores, SteadySeconds: res.Steady.WindowSeconds})
		}
		g := fitGrowth(points)
		res.Growth = &g
	}
	if cfg.measures("9") {
		// The main pool leaves about 11,000 Devices behind, and its
		// bridge's finalizers keep them from being deleted quickly. Row 9
		// measures a cluster of its own pools, so it gets an API server,
		// etcd and broker of its own.
		r, err := fresh("the many pools")
		if err != nil {
			return res, err
		}
		pools, err := measurePools(ctx, r, physicalSeconds/float64(cfg.devices))
		res.Pools = pools
		if err != nil {
			res.Errors = append(res.Errors, "many pools: "+err.Error())
		}
	}
	if len(res.Errors) > 0 {
		return res, errors.New("some phases could not be measured; see the table")
	}
	return res, ctx.Err()
}

// measureSmallerPools imports and holds the smaller pools of the cost
// growth row, one at a time, each on a fresh control plane.
func measureSmallerPools(ctx context.Context, cfg *config, fresh func(what string) (*rig, error), physicalPerDevice float64) ([]growthPoint, error) {
	var points []growthPoint
	for _, n := range cfg.growthSizes() {
		logf("8. cost growth: pool of %d devices", n)
		r, err := fresh(fmt.Sprintf("the pool of %d", n))
		if err != nil {
			return points, err
		}
		pt, err := measureGrowthPoint(ctx, r, n, physicalPerDevice)
		if err != nil {
			return points, fmt.Errorf("%d devices: %w", n, err)
		}
		logf("   import %s, RSS %.0f MB, steady %.3f cores", secs(pt.ImportSeconds), pt.RSSMB, pt.SteadyCores)
		points = append(points, pt)
	}
	return points, nil
}

// measureMainPool imports the full-size pool and runs rows 2 to 7 on it,
// those the run measures.
func measureMainPool(ctx context.Context, r *rig, res *results, physicalSeconds float64) error {
	cfg := r.cfg
	logf("2. import: %d devices pre-loaded at the edge", cfg.devices)
	p, err := newPool(ctx, r, "bench", cfg.devices)
	if err != nil {
		return fmt.Errorf("main pool: %w", err)
	}
	defer p.close()
	gen, err := newTelemetryGen(ctx, p, cfg.changingShare)
	if err != nil {
		return fmt.Errorf("telemetry generator: %w", err)
	}
	defer gen.close()
	if cfg.measures("7") {
		// Before the bridge starts: its limit is measured without it.
		logf("7. telemetry transport limit: generator → mosquitto → a subscriber that only counts")
		tr, err := p.measureTransport(ctx, gen)
		if err != nil {
			return fmt.Errorf("transport limit: %w", err)
		}
		res.Transport = &tr
		logf("   %s readings/s", count(int(tr.ReadingsPerSecond)))
	}
	imp, err := p.measureImport(ctx, physicalSeconds)
	res.Import = &imp
	logf("   %s = %.1f× physical; %.1f API writes per device", secs(imp.Seconds), imp.RatioToPhysical, imp.APIWritesPerDevice)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	res.Settings.BridgeCommand = append([]string{cfg.bridgeBin}, p.bridge.args...)

	if cfg.measures("3") {
		logf("3. edge → cloud: changes at %.0f/s for %s", cfg.opRate, cfg.latencyWindow)
		e2c := p.measureEdgeToCloud(ctx)
		res.EdgeToCloud = &e2c
		logf("   %s", describeLatency(e2c.All))
		p.settle(ctx)
	}

	var targets []managedDevice
	if cfg.measures("4") {
		logf("4. cloud → edge: changes at %.0f/s for %s", cfg.opRate, cfg.latencyWindow)
		var c2e latencyPhase
		if c2e, targets, err = p.measureCloudToEdge(ctx); err != nil {
			return fmt.Errorf("cloud to edge: %w", err)
		}
		res.CloudToEdge = &c2e
		logf("   %s", describeLatency(c2e.All))
		p.settle(ctx)
	}

	if cfg.measures("5") {
		logf("5a. commands over REST: %.0f/s for %s", cfg.commandRate, cfg.commandWindow)
		if err := p.recordCommands(ctx, res, "rest", targets); err != nil {
			return err
		}
	}

	if cfg.measures("6") {
		logf("6. steady state: %d devices, one event each per %s, for %s", cfg.devices, cfg.telemetryInterval, cfg.steadyWindow)
		st, err := p.measureSteady(ctx, gen, cfg.steadyWindow)
		if err != nil {
			return fmt.Errorf("steady state: %w", err)
		}
		res.Steady = &st
		logf("   %s", st)
	}

	if cfg.measures("7") {
		if !cfg.measures("6") {
			// As after row 6: every device has reported once, so that the
			// trials do not measure the first reports.
			if err := p.warmUp(ctx, gen); err != nil {
				return fmt.Errorf("telemetry warm-up: %w", err)
			}
		}
		logf("7. telemetry throughput")
		tp := p.measureThroughput(ctx, gen)
		res.Throughput = &tp
		logf("   %s readings/s", count(int(tp.ReadingsPerSecond)))
	}

	if !cfg.measures("5") {
		return nil
	}
	logf("5b. restart the bridge with --command-transport=mqtt")
	restart, err := p.restart(ctx, "mqtt")
	res.Restart = &restart
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	logf("   ready after %s, idle after %s", secs(restart.ReadySeconds), secs(restart.IdleSeconds))
	logf("5b. commands over MQTT: %.0f/s for %s", cfg.commandRate, cfg.commandWindow)
	return p.recordCommands(ctx, res, "mqtt", targets)
}

func (p *pool) recordCommands(ctx context.Context, res *results, transport string, targets []managedDevice) error {
	c, err := p.measureCommands(ctx, transport, targets)
	if err != nil {
		return fmt.Errorf("commands over %s: %w", transport, err)
	}
	res.Commands = append(res.Commands, c)
	logf("   %s", describeLatency(c.Latency))
	p.settle(ctx)
	return nil
}

// settle waits until the bridge finished what the last phase gave it, so
// that the next phase does not measure its leftovers.
func (p *pool) settle(ctx context.Context) {
	if err := p.bridge.waitIdle(ctx, 2*time.Minute); err != nil {
		logf("   bridge did not become idle: %v", err)
	}
}

// restart stops the bridge and starts it again with another command
// transport, and measures how long it takes to be ready and idle.
func (p *pool) restart(ctx context.Context, transport string) (restartResult, error) {
	res := restartResult{Transport: transport}
	apiBefore, err := p.rig.apiserverMetrics(ctx)
	if err != nil {
		return res, err
	}
	p.stopBridge()
	edgeBefore := p.edgexRequests()
	start := time.Now()
	if err := p.startBridge(transport); err != nil {
		return res, err
	}
	if err := p.bridge.waitReady(ctx, 5*time.Minute); err != nil {
		return res, err
	}
	res.ReadySeconds = time.Since(start).Seconds()
	if err := p.bridge.waitIdle(ctx, 5*time.Minute); err != nil {
		return res, err
	}
	res.IdleSeconds = time.Since(start).Seconds()
	apiAfter, err := p.rig.apiserverMetrics(ctx)
	if err != nil {
		return res, err
	}
	res.APIWrites = diffCounts(apiWrites(apiBefore), apiWrites(apiAfter))
	res.EdgeXRequests = diffCounts(edgeBefore, p.edgexRequests())
	return res, nil
}
