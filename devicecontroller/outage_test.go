package devicecontroller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// A pool's link to the cloud drops for 30 seconds: established connections
// die and new ones get no answer, as when a WAN link goes down. The pool
// runs two replicas with cmd/devicecontroller's defaults (leader election
// on, 15s lease, 10s renew deadline), so the cut outlasts the renew
// deadline. Neither replica stops, the leader keeps leading and commands a
// device that drifts back, telemetry keeps flowing northbound and to
// /metrics, edge changes are kept and reach the cluster afterwards,
// /healthz stays healthy while /readyz and edgebridge_cloud_reachable say
// the cloud is away, and when the link returns every status catches up
// with nothing duplicated and nothing stale. Then only the leader's link is
// cut: the standby, which still reaches the cloud, hears the leader on the
// pool's bus and does not take over.
func TestBridgeRidesOutACloudOutage(t *testing.T) {
	const cut = 30 * time.Second
	rig := startOutageRig(t, nil)
	p := rig.pool
	leader, standby := rig.waitForLeader()
	t.Logf("%s leads", leader.identity)

	gpio, sensor, camera := simulator.DemoDevices()[0].Name, simulator.DemoDevices()[1].Name, simulator.DemoDevices()[2].Name
	for _, d := range []string{gpio, sensor, camera} {
		waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, d), func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	}
	const drifting = "drifting-valve"
	commandDevice(p, drifting, simulator.ProfileGPIO)
	setDesired(p, drifting, "pin_17", "true")
	waitProperty(p, drifting, "pin_17", "Bool", "true")
	writes := recordWrites(t, p)

	// The whole pool loses the cloud.
	cutAt := time.Now()
	for _, r := range rig.replicas {
		r.link.Cut()
	}
	rig.waitCloud(leader, false)
	rig.waitCloud(standby, false)
	if err := rig.probe(leader, "/healthz"); err != nil {
		t.Errorf("/healthz fails while the cloud is away: %v", err)
	}
	rig.waitMetric(fmt.Sprintf(`edgebridge_cloud_reachable{pool=%q} 0`, p.name))

	// A person at the machine closes the valve; the device reports it.
	driftAt := rig.drift(drifting)
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if v, _ := p.sim.Value(drifting, "pin_17"); v != "true" {
			return fmt.Errorf("pin_17 is %q at the device: not commanded back from the cached spec", v)
		}
		return nil
	})
	// Telemetry flows on.
	rig.publish(sensor, map[string]string{"temperature": "21.5"})
	rig.waitNorthbound(sensor, "temperature", "21.5")
	rig.waitMetric(fmt.Sprintf(`edgebridge_reading_value{device=%q,namespace=%q,pool=%q,resource="temperature"} 21.5`,
		convert.PreferredKubeName(p.name, sensor), p.ns, p.name))
	// The edge changes.
	const desc = "changed at the edge while the cloud was away"
	must(t, p.sim.UpdateDevice(dtos.UpdateDevice{Name: ptr(sensor), Description: ptr(desc)}))
	added := simulator.DemoDevices()[1]
	added.Name, added.Id, added.AutoEvents = "added-while-away", "", nil
	_, err := p.sim.AddDevice(added)
	must(t, err)
	must(t, p.sim.DeleteDevice(camera))

	lastFor(time.Until(cutAt.Add(cut)))
	rig.stillLeads(leader, standby)
	restoredAt := time.Now()
	for _, r := range rig.replicas {
		r.link.Restore()
	}

	// Catching up: every status current, the edge's changes in the cluster.
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		return errors.Join(
			rig.commandedBackInStatus(ctx, drifting, driftAt),
			rig.reported(ctx, convert.PreferredKubeName(p.name, sensor), "temperature", "21.5"),
			rig.described(ctx, convert.PreferredKubeName(p.name, sensor), desc),
			rig.present(ctx, convert.PreferredKubeName(p.name, added.Name)),
			rig.absent(ctx, convert.PreferredKubeName(p.name, camera)),
			rig.allCurrent(ctx),
			rig.probe(leader, "/readyz"),
		)
	})
	t.Logf("statuses caught up %s after the link returned (cut for %s)", time.Since(restoredAt).Round(10*time.Millisecond),
		restoredAt.Sub(cutAt).Round(time.Second))
	rig.waitMetric(fmt.Sprintf(`edgebridge_cloud_reachable{pool=%q} 1`, p.name))
	if n := len(writes.to(drifting, "pin_17")); n != 1 {
		t.Errorf("%d commands reached the drifted device, want exactly 1", n)
	}
	rig.noDuplicates()

	// Only the leader loses the cloud, for longer than the lease: the
	// standby still reaches the cloud and sees the lease unrenewed, but
	// hears the leader's beacon in the pool and stays out.
	before := len(writes.to(drifting, "pin_17"))
	leader.link.Cut()
	cutAt = time.Now()
	rig.waitCloud(leader, false)
	rig.drift(drifting)
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if v, _ := p.sim.Value(drifting, "pin_17"); v != "true" {
			return fmt.Errorf("pin_17 is %q at the device: the leader cut off alone does not command it back", v)
		}
		return nil
	})
	lastFor(time.Until(cutAt.Add(devicecontroller.DefaultLeaseDuration + 5*time.Second)))
	rig.stillLeads(leader, standby)
	leader.link.Restore()
	rig.waitCloud(leader, true)
	rig.stillLeads(leader, standby)
	if n := len(writes.to(drifting, "pin_17")) - before; n != 1 {
		t.Errorf("%d commands reached the drifted device during the leader's partition, want exactly 1", n)
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		return errors.Join(rig.leaseHeldBy(ctx, leader), rig.allCurrent(ctx))
	})
	if n := standby.edgexCalls.Load(); n != 0 {
		t.Errorf("the standby made %d EdgeX calls: both replicas acted", n)
	}
}

// outageRig is one pool with two bridge replicas, each reaching the API
// server through a link of its own and wired as cmd/devicecontroller wires
// them.
type outageRig struct {
	t           *testing.T
	pool        *pool
	replicas    []*outageReplica
	metricsAddr string

	mu         sync.Mutex
	northbound map[string]string // "<device>/<resource>" -> latest value
}

type outageReplica struct {
	*replica
	identity   string
	link       *testenv.Link
	cloud      *devicecontroller.Cloud
	probeAddr  string
	edgexCalls *atomic.Int64
}

// startOutageRig starts the pool, seeded with the demo devices and then
// prepared, and its two replicas.
func startOutageRig(t *testing.T, prepare func(*pool)) *outageRig {
	rig := &outageRig{t: t, metricsAddr: freeAddr(t), northbound: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	north, err := messagebus.New(messagebus.Options{BrokerURL: mqtt.URL()})
	must(t, err)
	must(t, north.Start(ctx))
	t.Cleanup(north.Close)

	apiServer, err := url.Parse(kube.Config.Host)
	must(t, err)
	var launched []*outageReplica
	p := startPool(t, poolConfig{seedDemo: true, noBridge: true,
		options: func(o *devicecontroller.Options) {
			o.Northbound, o.NorthboundPrefix = north, "north"
		},
		restOptions: func(o *edgex.Options) {
			n := &atomic.Int64{}
			launched = append(launched, &outageReplica{edgexCalls: n})
			observe := o.Observer
			o.Observer = func(ri edgex.RequestInfo) { n.Add(1); observe(ri) }
		},
	})
	p.cfg.wire = func(w *wiring) {
		r := launched[len(launched)-1]
		r.identity = fmt.Sprintf("replica-%d", len(launched))
		link, err := testenv.NewLink(apiServer.Host)
		must(t, err)
		t.Cleanup(func() { _ = link.Close() })
		r.link = link
		cfg := rest.CopyConfig(w.kubeConfig)
		cfg.Host = "https://" + link.Addr()
		r.cloud = devicecontroller.NewCloud(p.name, 0)
		w.kubeConfig = r.cloud.Config(cfg)
		lock, err := devicecontroller.NewLeaderLock(w.kubeConfig, r.cloud, devicecontroller.LeaderElection{
			Namespace: p.ns, Name: devicecontroller.LeaseName(p.name), Identity: r.identity,
			Beacon: w.bus, Topic: devicecontroller.BeaconTopic(p.prefix, p.name),
		})
		must(t, err)
		w.runnables = append(w.runnables, lock)
		w.manager.LeaderElection = true
		w.manager.LeaderElectionResourceLockInterface = lock
		w.manager.LeaderElectionReleaseOnCancel = true
		r.probeAddr = freeAddr(t)
		w.manager.HealthProbeBindAddress = r.probeAddr
		if len(launched) == 1 {
			w.manager.Metrics.BindAddress = rig.metricsAddr
		}
		w.bridge.Cloud = r.cloud
	}
	rig.pool = p
	if prepare != nil {
		prepare(p)
	}
	for range 2 {
		rep := p.launchBridge()
		launched[len(launched)-1].replica = rep
	}
	rig.replicas = launched

	listenNorthbound(t, ctx, rig)
	return rig
}

// listenNorthbound records the latest value of each reading the bridge
// forwards northbound.
func listenNorthbound(t *testing.T, ctx context.Context, rig *outageRig) {
	listener, err := messagebus.New(messagebus.Options{BrokerURL: mqtt.URL()})
	must(t, err)
	must(t, listener.Start(ctx))
	t.Cleanup(listener.Close)
	must(t, listener.Subscribe("north/"+rig.pool.name+"/#", func(_ string, payload []byte) {
		var ev devicecontroller.NorthboundEvent
		if json.Unmarshal(payload, &ev) != nil {
			return
		}
		rig.mu.Lock()
		defer rig.mu.Unlock()
		for _, r := range ev.Readings {
			rig.northbound[ev.EdgeXName+"/"+r.Resource] = string(r.Value)
		}
	}))
	must(t, listener.WaitConnected(ctx))
}

func (rig *outageRig) waitForLeader() (leader, standby *outageReplica) {
	testenv.Eventually(rig.t, testenv.DefaultTimeout, func(context.Context) error {
		for i, r := range rig.replicas {
			if isClosed(r.mgr.Elected()) {
				leader, standby = r, rig.replicas[1-i]
				return nil
			}
		}
		return errors.New("no replica leads yet")
	})
	return leader, standby
}

// stillLeads checks that neither manager stopped, that the leader leads
// and that the standby never did.
func (rig *outageRig) stillLeads(leader, standby *outageReplica) {
	rig.t.Helper()
	for _, r := range rig.replicas {
		select {
		case err := <-r.done:
			r.done <- err
			rig.t.Fatalf("%s stopped: %v", r.identity, err)
		default:
		}
	}
	if !isClosed(leader.mgr.Elected()) {
		rig.t.Fatalf("%s no longer leads", leader.identity)
	}
	if isClosed(standby.mgr.Elected()) {
		rig.t.Fatalf("the standby %s leads too", standby.identity)
	}
	if n := standby.edgexCalls.Load(); n != 0 {
		rig.t.Fatalf("the standby made %d EdgeX calls", n)
	}
}

// waitCloud waits until the replica's /readyz and its Cloud say the cloud
// is reachable (or not).
func (rig *outageRig) waitCloud(r *outageReplica, reachable bool) {
	rig.t.Helper()
	testenv.Eventually(rig.t, testenv.DefaultTimeout, func(context.Context) error {
		err := rig.probe(r, "/readyz")
		switch {
		case reachable && err != nil:
			return err
		case !reachable && err == nil:
			return fmt.Errorf("%s: /readyz is ok although the link is cut", r.identity)
		case !reachable && !strings.Contains(err.Error(), "[-]cloud-reachable failed"):
			return fmt.Errorf("%s: /readyz fails without saying the cloud is unreachable: %v", r.identity, err)
		}
		return nil
	})
}

// probe GETs a health endpoint of the replica (verbose, so that a failure
// says which check failed).
func (rig *outageRig) probe(r *outageReplica, path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.probeAddr+path+"?verbose", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d: %s", r.identity, path, resp.StatusCode, body)
	}
	return nil
}

func (rig *outageRig) waitMetric(line string) {
	rig.t.Helper()
	testenv.Eventually(rig.t, testenv.DefaultTimeout, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+rig.metricsAddr+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), line) {
			return fmt.Errorf("/metrics lacks %s", line)
		}
		return nil
	})
}

// drift changes pin_17 at the device, as a person at the machine would,
// and has the device report it; it returns when.
func (rig *outageRig) drift(device string) time.Time {
	rig.t.Helper()
	at := time.Now()
	must(rig.t, rig.pool.sim.SetValue(device, "pin_17", "false"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(rig.t, rig.pool.sim.PublishEvent(ctx, device, "pin_17"))
	return at
}

func (rig *outageRig) publish(device string, values map[string]string) {
	rig.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(rig.t, rig.pool.sim.PublishReadings(ctx, device, values))
}

func (rig *outageRig) waitNorthbound(device, resource, want string) {
	rig.t.Helper()
	testenv.Eventually(rig.t, testenv.DefaultTimeout, func(context.Context) error {
		rig.mu.Lock()
		defer rig.mu.Unlock()
		if got := rig.northbound[device+"/"+resource]; got != want {
			return fmt.Errorf("northbound %s/%s is %q, want %s", device, resource, got, want)
		}
		return nil
	})
}

func (rig *outageRig) device(ctx context.Context, name string) (*v1alpha1.Device, error) {
	d := &v1alpha1.Device{}
	err := kube.Client.Get(ctx, client.ObjectKey{Namespace: rig.pool.ns, Name: name}, d)
	return d, err
}

// commandedBackInStatus checks that status shows the command that undid
// the drift, and the desired value in sync.
func (rig *outageRig) commandedBackInStatus(ctx context.Context, name string, driftAt time.Time) error {
	d, err := rig.device(ctx, name)
	if err != nil {
		return err
	}
	st := d.Status.DeviceProperties["pin_17"]
	if st.LastCommand == nil || st.LastCommand.Result != v1alpha1.CommandSucceeded || st.LastCommand.Time.Time.Before(driftAt.Truncate(time.Second)) {
		return fmt.Errorf("%s: status does not show the command that undid the drift: %+v", name, st.LastCommand)
	}
	if !convert.EqualValues("Bool", "true", st.ActualValue) {
		return fmt.Errorf("%s: status says pin_17 is %q", name, st.ActualValue)
	}
	return reason(d.Status.Conditions, v1alpha1.ConditionPropertiesSynced, v1alpha1.ReasonInSync)
}

func (rig *outageRig) reported(ctx context.Context, name, resource, want string) error {
	d, err := rig.device(ctx, name)
	if err != nil {
		return err
	}
	if got := d.Status.DeviceProperties[resource]; !convert.EqualValues(got.ValueType, want, got.ActualValue) {
		return fmt.Errorf("%s: status says %s is %q, the device reported %s", name, resource, got.ActualValue, want)
	}
	return nil
}

func (rig *outageRig) described(ctx context.Context, name, want string) error {
	d, err := rig.device(ctx, name)
	if err != nil {
		return err
	}
	if d.Spec.Description != want {
		return fmt.Errorf("%s: description %q, the edge says %q", name, d.Spec.Description, want)
	}
	return nil
}

func (rig *outageRig) present(ctx context.Context, name string) error {
	d, err := rig.device(ctx, name)
	if err != nil {
		return fmt.Errorf("the device added at the edge is not imported: %w", err)
	}
	return synced(d.Status.Synced, d.Status.Conditions)
}

func (rig *outageRig) absent(ctx context.Context, name string) error {
	d, err := rig.device(ctx, name)
	if err == nil {
		return fmt.Errorf("%s, deleted at the edge, is still in the cluster (deleting: %v)", name, d.DeletionTimestamp != nil)
	}
	return client.IgnoreNotFound(err)
}

// allCurrent checks that every Device of the pool says Synced for its
// current generation, and every desired value is in sync.
func (rig *outageRig) allCurrent(ctx context.Context) error {
	var list v1alpha1.DeviceList
	if err := kube.Client.List(ctx, &list, client.InNamespace(rig.pool.ns)); err != nil {
		return err
	}
	var errs []error
	for _, d := range list.Items {
		c := v1alpha1.FindCondition(d.Status.Conditions, v1alpha1.ConditionSynced)
		if c == nil || c.Status != "True" || c.ObservedGeneration != d.Generation {
			errs = append(errs, fmt.Errorf("%s: Synced is %+v at generation %d", d.Name, c, d.Generation))
		}
		if len(d.Spec.DeviceProperties) > 0 {
			if err := reason(d.Status.Conditions, v1alpha1.ConditionPropertiesSynced, v1alpha1.ReasonInSync); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// noDuplicates checks that each EdgeX device is represented once, and each
// Device by one EdgeX device.
func (rig *outageRig) noDuplicates() {
	rig.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var list v1alpha1.DeviceList
	must(rig.t, kube.Client.List(ctx, &list, client.InNamespace(rig.pool.ns)))
	claims := map[string][]string{}
	for _, d := range list.Items {
		claims[v1alpha1.EdgeXName(&d)] = append(claims[v1alpha1.EdgeXName(&d)], d.Name)
	}
	for name, objs := range claims {
		if len(objs) != 1 {
			rig.t.Errorf("EdgeX device %q is represented by %v", name, objs)
		}
		if _, ok := rig.pool.sim.Device(name); !ok {
			rig.t.Errorf("Device for %q has no EdgeX device", name)
		}
	}
	if len(claims) != len(rig.pool.sim.Devices()) {
		rig.t.Errorf("%d Devices for %d EdgeX devices", len(claims), len(rig.pool.sim.Devices()))
	}
}

func (rig *outageRig) leaseHeldBy(ctx context.Context, r *outageReplica) error {
	lease := &coordinationv1.Lease{}
	if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: rig.pool.ns, Name: devicecontroller.LeaseName(rig.pool.name)}, lease); err != nil {
		return err
	}
	if h := lease.Spec.HolderIdentity; h == nil || *h != r.identity {
		return fmt.Errorf("the lease is held by %v, not %s", lease.Spec.HolderIdentity, r.identity)
	}
	if lease.Spec.RenewTime == nil || time.Since(lease.Spec.RenewTime.Time) > devicecontroller.DefaultLeaseDuration {
		return fmt.Errorf("the lease was last renewed at %v", lease.Spec.RenewTime)
	}
	return nil
}

// lastFor lets an outage last its course: the length of the cut is the
// scenario, nothing waits on it to happen.
func lastFor(d time.Duration) {
	if d > 0 {
		<-time.After(d)
	}
}
