//go:build chaos

package devicecontroller_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// A pool's two bridge replicas (pods bridge-0 and bridge-1 on one node)
// reach the API server only through a real YurtHub (built from the pinned
// OpenYurt release), with the bridge's user agent among its cache agents;
// YurtHub reaches the API server through a link that drops. During the
// outage the leader is stopped and started again in its pod, as after a
// container crash. Only YurtHub's cache can serve the new one: its caches
// fill from the node's cache, it takes the lead through the pool's beacon
// after a lease duration, commands a drifting device back from the cached
// spec, and carries telemetry northbound. The standby in the other pod
// never leads: it cannot tell a dead leader from one cut from the broker
// only. When the link returns every status is current soon after, with
// nothing duplicated and nothing deleted, and the restarted replica holds
// the cloud lease.
func TestChaosBridgeRestartedBehindYurtHubDuringAnOutage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	apiServer, err := url.Parse(kube.Config.Host)
	must(t, err)
	link, err := testenv.NewLink(apiServer.Host)
	must(t, err)
	t.Cleanup(func() { _ = link.Close() })
	const node = "edge-yurthub-1"
	hubDir := t.TempDir()
	hub, err := testenv.StartYurtHub(ctx, kube, testenv.YurtHubOptions{Node: node, Server: link.Addr(), CacheAgents: "edgebridge", Dir: hubDir})
	must(t, err)
	t.Cleanup(func() {
		_ = hub.Stop()
		if t.Failed() {
			if log, err := os.ReadFile(hub.Log()); err == nil {
				t.Logf("yurthub's log, last 8 kB:\n%s", lastBytes(log, 8<<10))
			}
		}
	})
	// Requests through YurtHub act as the node. The test grants it
	// everything; a deployment binds the bridge's ClusterRole to the nodes
	// of its pool.
	must(t, testenv.GrantNode(ctx, kube.Client, node, "cluster-admin"))

	north, err := messagebus.New(messagebus.Options{BrokerURL: mqtt.URL()})
	must(t, err)
	must(t, north.Start(ctx))
	t.Cleanup(north.Close)
	rig := &outageRig{t: t, metricsAddr: freeAddr(t), northbound: map[string]string{}}
	var launched []*outageReplica
	// seat is the pod the next launch runs in; locks are the launches'
	// leader locks, in order.
	seat := "bridge-0"
	var locks []*devicecontroller.LeaderLock
	p := startPool(t, poolConfig{seedDemo: true, noBridge: true,
		options: func(o *devicecontroller.Options) { o.Northbound, o.NorthboundPrefix = north, "north" },
	})
	rig.pool = p
	p.cfg.wire = func(w *wiring) {
		r := &outageReplica{identity: fmt.Sprintf("replica-%d", len(launched)+1), edgexCalls: &atomic.Int64{}}
		launched = append(launched, r)
		r.cloud = devicecontroller.NewCloud(p.name, 0)
		// As cmd/devicecontroller introduces itself, so that YurtHub
		// caches what the bridge reads.
		w.kubeConfig = r.cloud.Config(hub.Config("edgebridge/chaos-test"))
		lock, err := devicecontroller.NewLeaderLock(w.kubeConfig, r.cloud, devicecontroller.LeaderElection{
			Namespace: p.ns, Name: devicecontroller.LeaseName(p.name), Identity: r.identity,
			Seat:   seat,
			Beacon: w.bus, Topic: devicecontroller.BeaconTopic(p.prefix, p.name),
		})
		must(t, err)
		locks = append(locks, lock)
		w.runnables = append(w.runnables, lock)
		w.manager.LeaderElection = true
		w.manager.LeaderElectionResourceLockInterface = lock
		r.probeAddr = freeAddr(t)
		w.manager.HealthProbeBindAddress = r.probeAddr
		w.manager.Metrics.BindAddress = "0"
		w.bridge.Cloud = r.cloud
	}
	listenNorthbound(t, ctx, rig)

	first := p.launchBridge()
	launched[0].replica = first
	testenv.Eventually(t, 2*time.Minute, func(context.Context) error {
		if !isClosed(first.mgr.Elected()) {
			return errors.New("replica-1 does not lead yet")
		}
		return first.bridge.Ready()
	})
	seat = "bridge-1"
	standby := p.launchBridge()
	launched[1].replica = standby
	testenv.Eventually(t, 2*time.Minute, func(context.Context) error {
		if err := locks[1].PoolLeadRefusal(); err == nil || !strings.Contains(err.Error(), "replica-1 leads the pool") {
			return fmt.Errorf("the standby has not heard replica-1 lead in the pool: %v", err)
		}
		return nil
	})
	standbyLeads := func() {
		t.Helper()
		if isClosed(standby.mgr.Elected()) {
			t.Fatal("the standby in pod bridge-1 leads")
		}
	}
	sensor := simulator.DemoDevices()[1].Name
	for _, d := range simulator.DemoDevices() {
		waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, d.Name), func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	}
	const drifting = "drifting-valve"
	commandDevice(p, drifting, simulator.ProfileGPIO)
	setDesired(p, drifting, "pin_17", "true")
	waitProperty(p, drifting, "pin_17", "Bool", "true")
	before := deviceNames(t, p)
	// YurtHub keeps what it proxied for the bridge on disk: wait until it
	// holds the managed device as the cloud does, desired value and status
	// (else the restarted bridge rightly commands a device whose status it
	// sees behind).
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		return cachedOnNode(hubDir, drifting, `"desiredValue":"true"`, `"actualValue":"true"`)
	})
	writes := recordWrites(t, p)

	cutAt := time.Now()
	link.Cut()
	testenv.Eventually(t, 2*time.Minute, func(context.Context) error {
		if down, _, _ := launched[0].cloud.Down(); !down {
			return errors.New("replica-1 has not noticed the cloud is away")
		}
		return nil
	})
	t.Logf("replica-1 noticed the outage %s after the cut", time.Since(cutAt).Round(100*time.Millisecond))
	// The leader's container crashes and is started again in its pod, with
	// the cloud still away.
	first.stop()
	restartAt := time.Now()
	seat = "bridge-0"
	second := p.launchBridge()
	launched[2].replica = second
	r2 := launched[2]
	testenv.Eventually(t, 2*time.Minute, func(context.Context) error {
		select {
		case err := <-second.done:
			second.done <- err
			return fmt.Errorf("replica-3 stopped: %v", err)
		default:
		}
		if !isClosed(second.mgr.Elected()) {
			return errors.New("replica-3 does not lead yet")
		}
		return second.bridge.Ready()
	})
	ledAfter := time.Since(restartAt)
	standbyLeads()
	if down, _, _ := r2.cloud.Down(); !down {
		t.Error("replica-3 says the cloud answers while the link is cut")
	}
	rig.waitCloud(r2, false)

	driftAt := rig.drift(drifting)
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if v, _ := p.sim.Value(drifting, "pin_17"); v != "true" {
			return fmt.Errorf("pin_17 is %q at the device: the restarted bridge does not command it back", v)
		}
		return nil
	})
	commandedAfter := time.Since(restartAt)
	rig.publish(sensor, map[string]string{"temperature": "23.5"})
	rig.waitNorthbound(sensor, "temperature", "23.5")
	t.Logf("restarted %s after the cut: replica-3 led after %s, commanded the drift back %s after its restart (%s after the drift)",
		restartAt.Sub(cutAt).Round(100*time.Millisecond), ledAfter.Round(100*time.Millisecond),
		commandedAfter.Round(100*time.Millisecond), time.Since(driftAt).Round(100*time.Millisecond))
	// A restarted bridge sends a desired value once more when status shows
	// only that a command succeeded, with no report of the device's since
	// (the process that recorded it may have sent another command before
	// it died); it does so as it starts to lead, which may come just
	// before or after the drift. So: one command for the drift, and at
	// most that one more.
	var afterDrift int
	var when []string
	w := writes.to(drifting, "pin_17")
	for _, x := range w {
		when = append(when, fmt.Sprintf("%s at %s after the restart", x.Value, x.At.Sub(restartAt).Round(10*time.Millisecond)))
		if !x.At.Before(driftAt) {
			afterDrift++
		}
	}
	t.Logf("commands during the outage: %s; drift at %s after the restart", strings.Join(when, ", "), driftAt.Sub(restartAt).Round(10*time.Millisecond))
	if afterDrift == 0 || len(w) > 2 {
		t.Errorf("%d commands reached the device during the outage, %d after the drift: want one for the drift and at most one resent on restart", len(w), afterDrift)
	}

	restoredAt := time.Now()
	link.Restore()
	var took time.Duration
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
		err := errors.Join(
			rig.commandedBackInStatus(ctx, drifting, driftAt),
			rig.reported(ctx, convert.PreferredKubeName(p.name, sensor), "temperature", "23.5"),
			rig.allCurrent(ctx),
			rig.leaseHeldBy(ctx, r2),
		)
		if err == nil {
			took = time.Since(restoredAt)
		}
		return err
	})
	t.Logf("outage of %s: every status current and the lease replica-3's %s after the link returned",
		restoredAt.Sub(cutAt).Round(time.Second), took.Round(100*time.Millisecond))
	rig.waitCloud(r2, true)
	if !isClosed(second.mgr.Elected()) {
		t.Error("replica-3 lost the lead after the cloud returned")
	}
	standbyLeads()
	rig.noDuplicates()
	after := deviceNames(t, p)
	for name := range before {
		if !after[name] {
			t.Errorf("%s was deleted", name)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d Devices before the outage, %d after", len(before), len(after))
	}
}

func deviceNames(t *testing.T, p *pool) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var list v1alpha1.DeviceList
	must(t, kube.Client.List(ctx, &list, client.InNamespace(p.ns)))
	out := map[string]bool{}
	for _, d := range list.Items {
		if d.DeletionTimestamp != nil {
			t.Errorf("%s is being deleted", d.Name)
		}
		out[d.Name] = true
	}
	return out
}

// cachedOnNode checks that YurtHub's disk cache holds an object named
// name whose stored form contains all of want.
func cachedOnNode(dir, name string, want ...string) error {
	found := false
	err := filepath.WalkDir(filepath.Join(dir, "cache"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(path) != name {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = true
		for _, w := range want {
			found = found && strings.Contains(string(data), w)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("yurthub's cache: %w", err)
	}
	if !found {
		return fmt.Errorf("yurthub's cache does not hold %s with %v yet", name, want)
	}
	return nil
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
