package devicecontroller_test

import (
	"context"
	"fmt"
	"net/url"
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

// A pool's only replica dies while the cloud is away, and is started again
// before the cloud returns (a pod crash behind YurtHub, whose cache serves
// everything but the lease). The new replica cannot read or write the
// lease, but hears the pool's bus silent of any leader for a lease
// duration, and takes the lead through the pool. When the cloud returns
// it writes the lease, which nobody renewed meanwhile, and keeps the lead.
func TestReplicaStartedDuringAnOutageLeadsThroughThePool(t *testing.T) {
	const (
		lease = 3 * time.Second
		renew = 2 * time.Second
		retry = 250 * time.Millisecond
	)
	ns := kube.Namespace(t)
	name := devicecontroller.LeaseName("takeover")
	topic := devicecontroller.BeaconTopic("edgex-"+ns, "takeover")
	apiServer, err := url.Parse(kube.Config.Host)
	must(t, err)

	type elector struct {
		link          *testenv.Link
		elected, lost chan struct{}
		stop          context.CancelFunc
	}
	start := func(identity string, cut bool) *elector {
		e := &elector{elected: make(chan struct{}), lost: make(chan struct{})}
		link, err := testenv.NewLink(apiServer.Host)
		must(t, err)
		t.Cleanup(func() { _ = link.Close() })
		if cut {
			link.Cut()
		}
		e.link = link
		ctx, cancel := context.WithCancel(context.Background())
		e.stop = cancel
		t.Cleanup(cancel)
		bus, err := messagebus.New(messagebus.Options{BrokerURL: mqtt.URL(), MaxReconnectInterval: time.Second})
		must(t, err)
		must(t, bus.Start(ctx))
		t.Cleanup(bus.Close)
		cfg := rest.CopyConfig(kube.Config)
		cfg.Host = "https://" + link.Addr()
		cloud := devicecontroller.NewCloud("takeover", 0)
		lock, err := devicecontroller.NewLeaderLock(cloud.Config(cfg), cloud, devicecontroller.LeaderElection{
			Namespace: ns, Name: name, Identity: identity, LeaseDuration: lease, RenewDeadline: renew, RetryPeriod: retry,
			Beacon: bus, Topic: topic,
		})
		must(t, err)
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: lease, RenewDeadline: renew, RetryPeriod: retry, Name: identity,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) { close(e.elected) },
				OnStoppedLeading: func() { close(e.lost) },
			},
		})
		must(t, err)
		go func() { _ = lock.Start(ctx) }()
		go le.Run(ctx)
		return e
	}
	holder := func(ctx context.Context) (string, error) {
		l := &coordinationv1.Lease{}
		if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, l); err != nil {
			return "", err
		}
		if l.Spec.HolderIdentity == nil {
			return "", nil
		}
		return *l.Spec.HolderIdentity, nil
	}

	a := start("a", false)
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if !isClosed(a.elected) {
			return fmt.Errorf("a does not lead")
		}
		return nil
	})
	// The cloud goes away and a dies without releasing the lease.
	a.link.Cut()
	a.stop()
	b := start("b", true)
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if !isClosed(b.elected) {
			return fmt.Errorf("b, started while the cloud is away, does not lead through the pool")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if h, err := holder(ctx); err != nil || h != "a" {
		t.Fatalf("the cloud lease is held by %q (%v) while the cloud is away, want a's record untouched", h, err)
	}
	b.link.Restore()
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		h, err := holder(ctx)
		if err == nil && h != "b" {
			err = fmt.Errorf("the cloud lease is held by %q, want b", h)
		}
		return err
	})
	if isClosed(b.lost) {
		t.Fatal("b lost the lead when the cloud returned")
	}
}
