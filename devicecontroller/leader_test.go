package devicecontroller_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// Two replicas serve one pool: exactly one of them talks to EdgeX. When it
// dies without handing its lease over, the other takes over once the lease
// runs out, and acts on what was applied in between.
func TestStandbyReplicaTakesOverWithinTheLeaseTime(t *testing.T) {
	const (
		lease = 3 * time.Second
		renew = 2 * time.Second
		retry = 250 * time.Millisecond
	)
	var calls []*atomic.Int64 // EdgeX REST calls, per replica in start order
	p := startPool(t, poolConfig{seedDemo: true, noBridge: true,
		restOptions: func(o *edgex.Options) {
			n := &atomic.Int64{}
			calls = append(calls, n)
			observe := o.Observer
			o.Observer = func(ri edgex.RequestInfo) { n.Add(1); observe(ri) }
		},
	})
	// Leader election as cmd/devicecontroller sets it up: one lease per
	// pool, in the pool's namespace, kept through the pool's bus while the
	// cloud is away; short times keep the test fast.
	p.cfg.wire = func(w *wiring) {
		cloud := devicecontroller.NewCloud(p.name, 0)
		w.kubeConfig = cloud.Config(w.kubeConfig)
		lock, err := devicecontroller.NewLeaderLock(w.kubeConfig, cloud, devicecontroller.LeaderElection{
			Namespace: p.ns, Name: devicecontroller.LeaseName(p.name),
			LeaseDuration: lease, RenewDeadline: renew, RetryPeriod: retry,
			Beacon: w.bus, Topic: devicecontroller.BeaconTopic(p.prefix, p.name),
		})
		must(t, err)
		w.runnables = append(w.runnables, lock)
		o := w.manager
		o.LeaderElection, o.LeaderElectionResourceLockInterface, o.LeaderElectionReleaseOnCancel = true, lock, true
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = ptr(lease), ptr(renew), ptr(retry)
		w.bridge.Cloud = cloud
	}

	replicas := []*replica{p.launchBridge(), p.launchBridge()}
	leader, standby := waitForLeader(t, replicas)
	leaderCalls, standbyCalls := calls[indexOf(replicas, leader)], calls[indexOf(replicas, standby)]

	first := managedDevice(p, "led-by-first", simulator.DemoServiceName, simulator.ProfileGPIO)
	p.create(first)
	waitFor(p, &v1alpha1.Device{}, first.Name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	if leaderCalls.Load() == 0 {
		t.Fatal("the leader synced a device without calling EdgeX: the call counter is broken")
	}
	if n := standbyCalls.Load(); n != 0 {
		t.Fatalf("the standby made %d EdgeX calls while the other replica led", n)
	}
	if isClosed(standby.mgr.Elected()) {
		t.Fatal("both replicas think they lead the pool")
	}

	// The leader dies; its lease is not released, so the standby must wait
	// for it to run out.
	leader.stop()
	killed := time.Now()
	second := managedDevice(p, "applied-while-leaderless", simulator.DemoServiceName, simulator.ProfileGPIO)
	p.create(second)
	select {
	case <-standby.mgr.Elected():
	case <-time.After(lease + 10*time.Second):
		t.Fatalf("the standby did not take over within %s of the leader's death", lease+10*time.Second)
	}
	// The standby sees the last renewal at most one retry period late, and
	// tries again every retry period (with jitter of up to 20%).
	took, limit := time.Since(killed), lease+3*retry+time.Second
	if took > limit {
		t.Errorf("the standby took %s to take over, more than the lease time allows (%s)", took, limit)
	}
	t.Logf("the standby took over %s after the leader died (lease %s)", took.Round(time.Millisecond), lease)
	waitFor(p, &v1alpha1.Device{}, second.Name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	if _, ok := p.sim.Device(second.Name); !ok {
		t.Fatal("the new leader did not create the device applied while no one led")
	}
	if standbyCalls.Load() == 0 {
		t.Fatal("the new leader synced without calling EdgeX through its own client")
	}
}

// waitForLeader waits until one replica leads and returns it and the other.
func waitForLeader(t *testing.T, rs []*replica) (leader, standby *replica) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		for i, r := range rs {
			if isClosed(r.mgr.Elected()) {
				leader, standby = r, rs[1-i]
				return nil
			}
		}
		return fmt.Errorf("no replica leads yet")
	})
	return leader, standby
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func indexOf(rs []*replica, r *replica) int {
	for i := range rs {
		if rs[i] == r {
			return i
		}
	}
	return -1
}
