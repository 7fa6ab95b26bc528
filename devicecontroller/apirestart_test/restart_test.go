package apirestart_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
	"github.com/edgebridge/edgebridge/hack/testenv/broker"
)

// This package has a control plane of its own, because its test stops the
// API server, which would disturb every other test sharing one.
var (
	kube *testenv.Kube
	mqtt *broker.Broker
)

func TestMain(m *testing.M) {
	if os.Getenv("EDGEBRIDGE_TEST_LOGS") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	}
	var err error
	if kube, err = testenv.StartKube(testenv.KubeOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, _ := os.MkdirTemp("", "edgebridge-mqtt-")
	if mqtt, err = broker.StartIn(dir, broker.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = kube.Stop()
		os.Exit(1)
	}
	code := m.Run()
	mqtt.Stop()
	_ = os.RemoveAll(dir)
	if err := kube.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop control plane:", err)
	}
	os.Exit(code)
}

// The leader-election timing of cmd/devicecontroller's defaults
// (--leader-lease-duration, --leader-renew-deadline, --leader-retry-period).
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// The API server goes away and comes back against the same etcd: restarted
// (a control-plane upgrade, a crash), or unreachable for longer (a cloud
// link outage). The same bridge process, with the same manager, carries on
// once it is back: what changed at the edge meanwhile is mirrored or
// imported, a device applied afterwards reaches EdgeX, a desired value
// reaches its device, and nothing was deleted on either side. With leader
// election (the binary's default), an API server away for longer than the
// renew deadline does not cost the lease: the leader keeps it through the
// pool's message bus (devicecontroller.LeaderLock). The link that drops
// packets rather than refusing them is devicecontroller's
// TestBridgeRidesOutACloudOutage.
func TestBridgeCarriesOnWhenTheAPIServerComesBack(t *testing.T) {
	cases := []struct {
		name           string
		leaderElection bool
		// grace is how long the API server may take to stop before it is
		// killed; downFor is how long it stays away at least.
		grace, downFor time.Duration
	}{
		{"restarted, one replica without leader election", false, 5 * time.Second, 0},
		{"restarted quickly, with leader election", true, time.Second, 0},
		{"away for longer than the lease, with leader election", true, time.Second, 2 * leaseDuration},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBridge(t, fmt.Sprintf("restarted%d", i), tc.leaderElection)
			imported := map[string]string{}
			for _, d := range simulator.DemoDevices() {
				imported[d.Name] = convert.PreferredKubeName(b.pool, d.Name)
				b.waitDevice(imported[d.Name], syncedDevice)
			}
			before := b.managedDevice("applied-before")
			b.waitDevice(before.Name, syncedDevice)

			stopped := time.Now()
			must(t, kube.StopAPIServer(tc.grace))
			t.Logf("the API server took %s to stop", time.Since(stopped).Round(time.Millisecond))
			// While the API server is away, the edge keeps changing.
			sensor := simulator.DemoDevices()[1].Name
			const desc = "changed at the edge while the API server was away"
			must(t, b.sim.UpdateDevice(dtos.UpdateDevice{Name: ptr(sensor), Description: ptr(desc)}))
			whileAway := b.addEdgeDevice("added-while-away")
			b.stayAway(stopped.Add(tc.downFor))
			started := time.Now()
			must(t, kube.StartAPIServer())
			t.Logf("the API server took %s to start; it was away for %s", time.Since(started).Round(time.Millisecond),
				time.Since(stopped).Round(time.Millisecond))
			must(t, b.stillRunning())

			b.waitDevice(imported[sensor], func(d *v1alpha1.Device) error {
				if d.Spec.Description != desc {
					return fmt.Errorf("description %q: the edge change made while the API server was away is not mirrored", d.Spec.Description)
				}
				return syncedDevice(d)
			})
			b.waitDevice(convert.PreferredKubeName(b.pool, whileAway), syncedDevice)
			afterwards := b.addEdgeDevice("added-afterwards")
			b.waitDevice(convert.PreferredKubeName(b.pool, afterwards), syncedDevice)
			after := b.managedDevice("applied-afterwards")
			b.waitDevice(after.Name, syncedDevice)
			if _, ok := b.sim.Device(after.Name); !ok {
				t.Fatal("the device applied afterwards is synced but not in EdgeX")
			}
			b.setDesired(before.Name, "pin_17", "true")
			testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
				if v, _ := b.sim.Value(before.Name, "pin_17"); v != "true" {
					return fmt.Errorf("pin_17 is %q at the device, desired true", v)
				}
				return nil
			})
			must(t, b.nothingDeleted(imported, before.Name, after.Name))
			must(t, b.stillRunning())
		})
	}
}

// bridge is one pool's EdgeX (the simulator) and its bridge, started the
// way cmd/devicecontroller wires it.
type bridge struct {
	t    *testing.T
	pool string
	ns   string
	sim  *simulator.Simulator
	mgr  manager.Manager
	// leaderElection says the manager campaigns for its pool's lease.
	leaderElection bool
	// done receives what the manager's Start returned.
	done chan error
}

func startBridge(t *testing.T, pool string, leaderElection bool) *bridge {
	t.Helper()
	b := &bridge{t: t, pool: pool, ns: kube.Namespace(t), leaderElection: leaderElection, done: make(chan error, 1)}
	prefix := "edgex-" + b.pool
	b.sim = simulator.New(simulator.Options{BrokerURL: mqtt.URL(), TopicPrefix: prefix})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, b.sim.Start(ctx))
	t.Cleanup(func() { _ = b.sim.Close() })
	must(t, b.sim.SeedDemo(ctx))

	runCtx, stop := context.WithCancel(context.Background())
	edge, bus := b.connectEdgeX(runCtx, prefix)
	// Leader election as cmd/devicecontroller sets it up.
	cloud := devicecontroller.NewCloud(b.pool, 0)
	cfg := cloud.Config(kube.Config)
	lock, err := devicecontroller.NewLeaderLock(cfg, cloud, devicecontroller.LeaderElection{
		Namespace: b.ns, Name: devicecontroller.LeaseName(b.pool),
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
		Beacon: bus, Topic: devicecontroller.BeaconTopic(prefix, b.pool),
	})
	must(t, err)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                              devicecontroller.Scheme(),
		Cache:                               devicecontroller.CacheOptions(b.pool, []string{b.ns}),
		Metrics:                             metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:              "0",
		LeaderElection:                      leaderElection,
		LeaderElectionResourceLockInterface: lock,
		LeaseDuration:                       ptr(leaseDuration),
		RenewDeadline:                       ptr(renewDeadline),
		RetryPeriod:                         ptr(retryPeriod),
		LeaderElectionReleaseOnCancel:       true,
		Controller:                          config.Controller{SkipNameValidation: ptr(true)},
	})
	must(t, err)
	b.mgr = mgr
	if leaderElection {
		must(t, mgr.Add(lock))
	}
	bridge, err := devicecontroller.New(mgr, edge, devicecontroller.Options{
		NodePool: b.pool, Namespaces: []string{b.ns}, Cloud: cloud,
		StatusInterval: 200 * time.Millisecond, CommandRetryBase: 100 * time.Millisecond, CommandRetryMax: time.Second,
	})
	must(t, err)
	go func() { b.done <- mgr.Start(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-b.done; err != nil {
			t.Errorf("the bridge stopped with: %v", err)
		}
	})
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error { return bridge.Ready() })
	return b
}

// connectEdgeX builds the EdgeX clients as cmd/devicecontroller does.
func (b *bridge) connectEdgeX(ctx context.Context, prefix string) (devicecontroller.EdgeX, *messagebus.Client) {
	t := b.t
	restOpts := edgex.Options{MetadataURL: b.sim.MetadataURL(), CommandURL: b.sim.CommandURL(), Timeout: 3 * time.Second}
	meta, err := edgex.NewMetadata(restOpts)
	must(t, err)
	cmd, err := edgex.NewCommand(restOpts)
	must(t, err)
	bus, err := messagebus.New(messagebus.Options{BrokerURL: mqtt.URL(), TopicPrefix: prefix, MaxReconnectInterval: time.Second})
	must(t, err)
	must(t, bus.Start(ctx))
	t.Cleanup(bus.Close)
	return devicecontroller.EdgeX{
		Devices: meta.Devices, Services: meta.Services, Profiles: profileStore{meta.Profiles, meta},
		Commands: cmd, Bus: bus, Ping: meta.Ping,
	}, bus
}

// profileStore joins the profile kind and the full replacement, as
// cmd/devicecontroller does.
type profileStore struct {
	*edgex.Kind[dtos.DeviceProfile, dtos.UpdateDeviceProfileBasicInfo]
	meta *edgex.Metadata
}

func (p profileStore) ReplaceProfiles(ctx context.Context, profiles ...dtos.DeviceProfile) ([]edgex.Result, error) {
	return p.meta.ReplaceProfiles(ctx, profiles...)
}

// managedDevice applies a managed GPIO board on the demo service.
func (b *bridge) managedDevice(name string) *v1alpha1.Device {
	b.t.Helper()
	d := &v1alpha1.Device{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: b.ns},
		Spec: v1alpha1.DeviceSpec{
			Description: "managed from the cloud", AdminState: v1alpha1.UnLocked, OperatingState: v1alpha1.Up,
			Protocols: map[string]v1alpha1.ProtocolProperties{"other": {"Address": name}},
			Service:   simulator.DemoServiceName, Profile: simulator.ProfileGPIO, Managed: true, NodePool: b.pool,
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(b.t, kube.Client.Create(ctx, d))
	return d
}

// addEdgeDevice adds a sensor at the edge, as a device service would.
func (b *bridge) addEdgeDevice(name string) string {
	b.t.Helper()
	d := simulator.DemoDevices()[1]
	d.Name, d.Id, d.AutoEvents = name, "", nil
	_, err := b.sim.AddDevice(d)
	must(b.t, err)
	return name
}

// setDesired is `kubectl edit device`: one desired property value.
func (b *bridge) setDesired(device, resource, value string) {
	b.t.Helper()
	testenv.Eventually(b.t, testenv.DefaultTimeout, func(ctx context.Context) error {
		d := &v1alpha1.Device{}
		if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: b.ns, Name: device}, d); err != nil {
			return err
		}
		d.Spec.DeviceProperties = map[string]v1alpha1.DesiredPropertyState{resource: {Name: resource, DesiredValue: value}}
		return kube.Client.Update(ctx, d)
	})
}

func (b *bridge) waitDevice(name string, check func(*v1alpha1.Device) error) {
	b.t.Helper()
	testenv.Eventually(b.t, testenv.DefaultTimeout, func(ctx context.Context) error {
		d := &v1alpha1.Device{}
		if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: b.ns, Name: name}, d); err != nil {
			return err
		}
		return check(d)
	})
}

func syncedDevice(d *v1alpha1.Device) error {
	c := v1alpha1.FindCondition(d.Status.Conditions, v1alpha1.ConditionSynced)
	if !d.Status.Synced || c == nil || c.Status != metav1.ConditionTrue {
		return fmt.Errorf("%s not synced: %+v", d.Name, c)
	}
	return nil
}

// nothingDeleted checks both sides: every imported and managed object is
// still there and not being deleted, and EdgeX holds a device for each.
func (b *bridge) nothingDeleted(imported map[string]string, managed ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var list v1alpha1.DeviceList
	if err := kube.Client.List(ctx, &list, client.InNamespace(b.ns)); err != nil {
		return err
	}
	present := map[string]bool{}
	for _, d := range list.Items {
		present[d.Name] = d.DeletionTimestamp == nil
	}
	var errs []error
	for edgeName, name := range imported {
		if !present[name] {
			errs = append(errs, fmt.Errorf("imported device %s is gone or being deleted", name))
		}
		if _, ok := b.sim.Device(edgeName); !ok {
			errs = append(errs, fmt.Errorf("EdgeX lost device %q", edgeName))
		}
	}
	for _, name := range managed {
		if !present[name] {
			errs = append(errs, fmt.Errorf("managed device %s is gone or being deleted", name))
		}
		if _, ok := b.sim.Device(name); !ok {
			errs = append(errs, fmt.Errorf("EdgeX lost managed device %q", name))
		}
	}
	return errors.Join(errs...)
}

// stayAway keeps the API server away until the given time; it ends early
// if the manager stops meanwhile, which stillRunning then reports.
func (b *bridge) stayAway(until time.Time) {
	wait := time.Until(until)
	if wait <= 0 {
		return
	}
	select {
	case err := <-b.done:
		b.done <- err // for stillRunning and the cleanup
	case <-time.After(wait): // the outage is the scenario, not a synchronisation
	}
}

// stillRunning checks that the manager never stopped and, with leader
// election, still leads: no restart of its own was needed.
func (b *bridge) stillRunning() error {
	select {
	case err := <-b.done:
		b.done <- err // for the cleanup
		return fmt.Errorf("the manager stopped: %v", err)
	default:
	}
	if !b.leaderElection {
		return nil
	}
	select {
	case <-b.mgr.Elected():
		return nil
	default:
		return errors.New("the bridge does not lead its pool")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
