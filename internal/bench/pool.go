package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/edgebridge/edgebridge/edgex/simulator"
)

// pool is one node pool under measurement: its EdgeX (the simulator, in
// this process, so that its CPU is not the bridge's), its namespace, the
// benchmark's watch on it, and its bridge process.
type pool struct {
	rig    *rig
	name   string
	ns     string
	prefix string
	sim    *simulator.Simulator
	watch  *deviceWatch
	bridge *bridgeProc
	// fleet are the EdgeX names of the devices the pool was seeded with.
	fleet []string
	// quiet leaves out progress lines, for pools measured side by side,
	// whose summary says enough.
	quiet bool
	// statusWriteRate is the bridge's --status-write-rate (0: its default).
	statusWriteRate float64
}

// newPool starts a pool's simulator seeded with n devices, and its
// namespace (named after the pool) and watch; the bridge is started by the
// import.
func newPool(ctx context.Context, r *rig, name string, n int) (*pool, error) {
	return newPoolIn(ctx, r, name, name, n)
}

// newPoolIn is newPool with the pool's objects in namespace ns, which
// other pools may share: then only the bridge's selection by spec.nodePool
// keeps one pool's objects from another's bridge, as in a cluster whose
// pools keep their devices in one namespace.
func newPoolIn(ctx context.Context, r *rig, name, ns string, n int) (*pool, error) {
	p := &pool{rig: r, name: name, ns: ns, prefix: "edgex-" + name}
	p.sim = simulator.New(simulator.Options{BrokerURL: r.broker.URL(), TopicPrefix: p.prefix, MaxResultCount: 1024})
	// Seeded before Start, so that no system event announces the fleet:
	// the device services registered their devices long before the
	// bridge came.
	if err := seedFleet(p.sim, n); err != nil {
		return nil, fmt.Errorf("seed %d devices in pool %s: %w", n, name, err)
	}
	for i := range n {
		p.fleet = append(p.fleet, fleetDeviceName(i))
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.sim.Start(startCtx); err != nil {
		return nil, fmt.Errorf("start simulator of pool %s: %w", name, err)
	}
	if err := r.ensureNamespace(ctx, p.ns); err != nil {
		p.close()
		return nil, err
	}
	var err error
	if p.watch, err = startDeviceWatch(ctx, r.restConfig, p.ns, p.name); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// startBridge starts the pool's bridge with the given command transport.
func (p *pool) startBridge(transport string) error {
	b, err := startBridge(p.rig, bridgeSettings{
		pool: p.name, namespace: p.ns, prefix: p.prefix,
		metadataURL: p.sim.MetadataURL(), commandURL: p.sim.CommandURL(),
		transport: transport, logName: fmt.Sprintf("bridge-%s-%s", p.name, transport),
		statusInterval: p.rig.cfg.statusInterval, resyncPeriod: p.rig.cfg.resyncPeriod,
		statusWriteRate: p.statusWriteRate,
	})
	if err != nil {
		return err
	}
	p.bridge = b
	return nil
}

func (p *pool) stopBridge() {
	if p.bridge != nil {
		p.bridge.stop(30 * time.Second)
		p.bridge = nil
	}
}

// close stops the bridge, the watch and the simulator. The pool's objects
// stay in the API server.
func (p *pool) close() {
	p.stopBridge()
	if p.watch != nil {
		p.watch.stop()
	}
	_ = p.sim.Close()
}

// edgexRequests counts the simulator's REST requests by route.
func (p *pool) edgexRequests() map[string]int64 { return p.sim.RequestCounts() }
