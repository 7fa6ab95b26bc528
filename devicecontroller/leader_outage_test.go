package devicecontroller_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// Short lease times keep these tests fast; the rules do not depend on them.
const (
	outageLease = 3 * time.Second
	outageRenew = 2 * time.Second
	outageRetry = 250 * time.Millisecond
)

// poolElector is one replica of a pool's bridge reduced to its leader
// election, with its own links to the cloud and to the pool's broker, each
// of which a test can cut.
type poolElector struct {
	identity      string
	lock          *devicecontroller.LeaderLock
	cloudLink     *testenv.Link
	busLink       *testenv.Link
	elected, lost chan struct{}
	stop          context.CancelFunc
}

// electionRig is one pool's lease and beacon topic.
type electionRig struct {
	t         *testing.T
	ns, name  string
	topic     string
	apiServer string
	broker    string
}

func newElectionRig(t *testing.T, pool string) *electionRig {
	ns := kube.Namespace(t)
	apiServer, err := url.Parse(kube.Config.Host)
	must(t, err)
	broker, err := url.Parse(mqtt.URL())
	must(t, err)
	return &electionRig{t: t, ns: ns, name: devicecontroller.LeaseName(pool),
		topic: devicecontroller.BeaconTopic("edgex-"+ns, pool), apiServer: apiServer.Host, broker: broker.Host}
}

// start runs a replica in pod seat; cloudCut starts it with the cloud away.
func (r *electionRig) start(identity, seat string, cloudCut bool) *poolElector {
	t := r.t
	e := &poolElector{identity: identity, elected: make(chan struct{}), lost: make(chan struct{})}
	var err error
	e.cloudLink, err = testenv.NewLink(r.apiServer)
	must(t, err)
	t.Cleanup(func() { _ = e.cloudLink.Close() })
	if cloudCut {
		e.cloudLink.Cut()
	}
	e.busLink, err = testenv.NewLink(r.broker)
	must(t, err)
	t.Cleanup(func() { _ = e.busLink.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	t.Cleanup(cancel)
	bus, err := messagebus.New(messagebus.Options{BrokerURL: "tcp://" + e.busLink.Addr(), MaxReconnectInterval: time.Second})
	must(t, err)
	must(t, bus.Start(ctx))
	t.Cleanup(bus.Close)
	cfg := rest.CopyConfig(kube.Config)
	cfg.Host = "https://" + e.cloudLink.Addr()
	cloud := devicecontroller.NewCloud(r.name, 0)
	e.lock, err = devicecontroller.NewLeaderLock(cloud.Config(cfg), cloud, devicecontroller.LeaderElection{
		Namespace: r.ns, Name: r.name, Identity: identity, Seat: seat,
		LeaseDuration: outageLease, RenewDeadline: outageRenew, RetryPeriod: outageRetry,
		Beacon: bus, Topic: r.topic,
	})
	must(t, err)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: e.lock, LeaseDuration: outageLease, RenewDeadline: outageRenew, RetryPeriod: outageRetry, Name: identity,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(e.elected) },
			OnStoppedLeading: func() { close(e.lost) },
		},
	})
	must(t, err)
	go func() { _ = e.lock.Start(ctx) }()
	go le.Run(ctx)
	return e
}

// waitBeaconLeading waits until the pool's broker carries a beacon of e
// claiming to lead, which it keeps as the topic's retained message.
func (r *electionRig) waitBeaconLeading(e *poolElector) {
	t := r.t
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listener, err := messagebus.New(messagebus.Options{BrokerURL: mqtt.URL()})
	must(t, err)
	defer listener.Close()
	heard := make(chan struct{})
	var once sync.Once
	must(t, listener.Subscribe(r.topic, func(_ string, payload []byte) {
		if strings.Contains(string(payload), `"identity":"`+e.identity+`"`) && strings.Contains(string(payload), `"leading":true`) {
			once.Do(func() { close(heard) })
		}
	}))
	must(t, listener.Start(ctx))
	select {
	case <-heard:
	case <-time.After(testenv.DefaultTimeout):
		t.Fatalf("no beacon of %s claiming to lead within %s", e.identity, testenv.DefaultTimeout)
	}
}

func (r *electionRig) waitElected(e *poolElector, why string) {
	testenv.Eventually(r.t, testenv.DefaultTimeout, func(context.Context) error {
		if !isClosed(e.elected) {
			return fmt.Errorf("%s does not lead %s", e.identity, why)
		}
		return nil
	})
}

// holder reads the lease as the cloud has it.
func (r *electionRig) holder(ctx context.Context) (string, error) {
	l := &coordinationv1.Lease{}
	if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: r.name}, l); err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

// waitRefusedLastLeader waits until e, whose pool has been silent for a
// lease duration, refuses to lead through it for the last leader's sake,
// which is the moment a replica without that rule takes the lead; then
// for one more lease duration, in which e must not lead.
func (r *electionRig) waitRefusedLastLeader(e *poolElector, lastLeader string) {
	var watchUntil time.Time
	testenv.Eventually(r.t, testenv.DefaultTimeout, func(context.Context) error {
		if isClosed(e.elected) {
			return nil // reported below
		}
		if watchUntil.IsZero() {
			err := e.lock.PoolLeadRefusal()
			if err == nil || !strings.Contains(err.Error(), "replica "+lastLeader+" in ") ||
				!strings.Contains(err.Error(), "may still lead through the cloud") {
				return fmt.Errorf("%s: pool lead refusal %v, want one naming the last leader %s", e.identity, err, lastLeader)
			}
			watchUntil = time.Now().Add(outageLease + 4*outageRetry)
		}
		if time.Now().Before(watchUntil) {
			return errors.New("watching for a lead through the pool")
		}
		return nil
	})
	if isClosed(e.elected) {
		r.t.Fatalf("%s leads through the pool although the last leader, %s, may still lead through the cloud", e.identity, lastLeader)
	}
}

// A pool's only replica dies while the cloud is away, and is started again
// before the cloud returns (a pod crash behind YurtHub, whose cache serves
// everything but the lease). The new replica cannot read or write the
// lease, but hears the pool's bus silent of any leader for a lease
// duration; it leads through the pool only if the last leader, which the
// broker's retained beacon names, ran in its own pod. Either way, when the
// cloud returns it holds the lease, which nobody renewed meanwhile.
func TestReplicaStartedDuringAnOutageLeadsThroughThePool(t *testing.T) {
	for _, tc := range []struct {
		name       string
		seat       string
		leadsInPod bool
	}{
		{name: "restarted in its pod", seat: "pod-0", leadsInPod: true},
		{name: "started in another pod", seat: "pod-1", leadsInPod: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newElectionRig(t, "takeover")
			a := r.start("pod-0_a", "pod-0", false)
			r.waitElected(a, "at first")
			r.waitBeaconLeading(a)
			// The cloud goes away and a dies without releasing the lease.
			a.cloudLink.Cut()
			a.stop()
			b := r.start("b", tc.seat, true)
			if tc.leadsInPod {
				r.waitElected(b, "through the pool, started while the cloud is away in the pod a ran in")
			} else {
				r.waitRefusedLastLeader(b, "pod-0_a")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if h, err := r.holder(ctx); err != nil || h != "pod-0_a" {
				t.Fatalf("the cloud lease is held by %q (%v) while the cloud is away, want a's record untouched", h, err)
			}
			b.cloudLink.Restore()
			testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
				h, err := r.holder(ctx)
				if err == nil && h != "b" {
					err = fmt.Errorf("the cloud lease is held by %q, want b", h)
				}
				return err
			})
			r.waitElected(b, "once the cloud answers")
			if isClosed(b.lost) {
				t.Fatal("b lost the lead when the cloud returned")
			}
		})
	}
}

// The double partition: the leader loses the pool's broker but keeps the
// cloud, and the standby loses the cloud but keeps the broker. The pool
// falls silent for the standby, yet the leader still leads through the
// cloud; the standby must not start a second lead through the pool. When
// both links return, the leader still leads and the standby still waits.
func TestDoublePartitionLeavesOneLeader(t *testing.T) {
	r := newElectionRig(t, "partition")
	a := r.start("pod-a_1", "pod-a", false)
	r.waitElected(a, "at first")
	b := r.start("pod-b_1", "pod-b", false)
	// b has heard a lead in the pool before the partition.
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		err := b.lock.PoolLeadRefusal()
		if err == nil || !strings.Contains(err.Error(), "pod-a_1 leads the pool") {
			return fmt.Errorf("b's pool lead refusal is %v, want a heard leading", err)
		}
		return nil
	})

	a.busLink.Cut()
	b.cloudLink.Cut()
	r.waitRefusedLastLeader(b, "pod-a_1")
	if isClosed(a.lost) {
		t.Fatal("a, which still reaches the cloud, lost the lead")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if h, err := r.holder(ctx); err != nil || h != "pod-a_1" {
		t.Fatalf("the cloud lease is held by %q (%v), want a, which still renews it", h, err)
	}

	a.busLink.Restore()
	b.cloudLink.Restore()
	// Once b reads the cloud again it sees a's lease renewed; a's beacon
	// is heard again in the pool.
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		err := b.lock.PoolLeadRefusal()
		if err == nil || !strings.Contains(err.Error(), "pod-a_1 leads the pool") {
			return fmt.Errorf("b's pool lead refusal is %v, want a heard leading again", err)
		}
		return nil
	})
	if isClosed(b.elected) || isClosed(a.lost) {
		t.Fatalf("after the partition: b leads %v, a lost the lead %v; want a alone leading", isClosed(b.elected), isClosed(a.lost))
	}
}
