package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// serviceAccount is the identity deploy/base gives the bridge.
const serviceAccount = "system:serviceaccount:" + namespace + ":edgebridge"

// The bridge's node and pool in these tests.
const (
	nodeName = "edge-node-1"
	poolName = "hangzhou"
)

// TestBridgeRunsUnderTheDeployedRBAC runs the bridge as its ServiceAccount
// with nothing but the RBAC of deploy/base, leader election on as in the
// overlays, against a seeded EdgeX: it finds its pool from its node,
// imports the edge's devices, creates a managed device in EdgeX, commands
// it, writes status and Events, deletes it, and releases its lease, without
// a single forbidden request.
func TestBridgeRunsUnderTheDeployedRBAC(t *testing.T) {
	needNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*testenv.DefaultTimeout)
	defer cancel()
	installBaseForReal(ctx, t)
	createNode(ctx, t, nodeName, poolName)
	waitUntilRBACIsInForce(t)

	rec := &forbiddenRecorder{}
	asBridge := impersonate(serviceAccount, rec)
	c, err := client.New(asBridge, client.Options{Scheme: devicecontroller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	pool, err := poolOfNode(ctx, c, nodeName)
	if err != nil {
		t.Fatalf("pool discovery as the bridge: %v", err)
	}
	if pool != poolName {
		t.Fatalf("node %s says pool %q, want %q", nodeName, pool, poolName)
	}
	sim := startSeededSimulator(t)
	stopBridge := startBridge(t, asBridge, sim, pool)

	t.Run("imports the edge's devices", func(t *testing.T) {
		for _, d := range simulator.DemoDevices() {
			waitForImport(t, c, d.Name)
		}
	})
	const lamp = "rbac-lamp"
	t.Run("creates a managed device in EdgeX", func(t *testing.T) {
		create(ctx, t, c, gpioDevice(lamp, pool))
		testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
			if _, ok := sim.Device(lamp); !ok {
				return errors.New("EdgeX has no " + lamp)
			}
			return nil
		})
	})
	t.Run("commands it and reports the value in status", func(t *testing.T) {
		setDesired(ctx, t, c, lamp, "pin_17", "true")
		testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
			if v, _ := sim.Value(lamp, "pin_17"); !convert.EqualValues("Bool", "true", v) {
				return fmt.Errorf("the device holds pin_17=%q", v)
			}
			dev := &v1alpha1.Device{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: lamp}, dev); err != nil {
				return err
			}
			if got := dev.Status.DeviceProperties["pin_17"].ActualValue; !convert.EqualValues("Bool", "true", got) {
				return fmt.Errorf("status says pin_17=%q", got)
			}
			return nil
		})
	})
	t.Run("records Events about it", func(t *testing.T) {
		testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
			events := &eventsv1.EventList{}
			if err := kube.Client.List(ctx, events, client.InNamespace(namespace)); err != nil {
				return err
			}
			for _, e := range events.Items {
				if e.Regarding.Name == lamp {
					return nil
				}
			}
			return fmt.Errorf("no Event about %s among %d", lamp, len(events.Items))
		})
	})
	t.Run("holds its pool's lease", func(t *testing.T) {
		lease := &coordinationv1.Lease{}
		key := client.ObjectKey{Namespace: namespace, Name: devicecontroller.LeaseName(pool)}
		if err := kube.Client.Get(ctx, key, lease); err != nil {
			t.Fatal(err)
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			t.Errorf("lease %s has no holder", key.Name)
		}
	})
	t.Run("deletes it from EdgeX before letting it go", func(t *testing.T) {
		if err := c.Delete(ctx, &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: lamp}}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
			err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: lamp}, &v1alpha1.Device{})
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("device still there: %v", err)
			}
			if _, ok := sim.Device(lamp); ok {
				return errors.New("EdgeX still has " + lamp)
			}
			return nil
		})
	})

	stopBridge()
	if rec.total() == 0 {
		t.Fatal("the recorder saw no request: it does not watch the bridge's client")
	}
	for req, n := range rec.forbidden() {
		t.Errorf("forbidden under deploy/base RBAC (%d times): %s", n, req)
	}
}

// TestDeployedRBACGrantsNoMore proves least privilege: the bridge's
// identity may not read what it does not need.
func TestDeployedRBACGrantsNoMore(t *testing.T) {
	needNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
	defer cancel()
	installBaseForReal(ctx, t)
	createNode(ctx, t, nodeName, poolName)
	waitUntilRBACIsInForce(t)
	c, err := client.New(impersonate(serviceAccount, nil), client.Options{Scheme: devicecontroller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	other := kube.Namespace(t)
	forbidden := []struct {
		name string
		do   func(context.Context) error
	}{
		{"list secrets in its own namespace", func(ctx context.Context) error {
			return c.List(ctx, &corev1.SecretList{}, client.InNamespace(namespace))
		}},
		{"list devices in another namespace", func(ctx context.Context) error {
			return c.List(ctx, &v1alpha1.DeviceList{}, client.InNamespace(other))
		}},
		{"create a device in another namespace", func(ctx context.Context) error {
			dev := gpioDevice("intruder", poolName)
			dev.Namespace = other
			return c.Create(ctx, dev)
		}},
		{"list nodes", func(ctx context.Context) error {
			return c.List(ctx, &corev1.NodeList{})
		}},
		{"label a node", func(ctx context.Context) error {
			patch := []byte(`{"metadata":{"labels":{"` + v1alpha1.NodePoolLabel + `":"elsewhere"}}}`)
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
			return c.Patch(ctx, node, client.RawPatch("application/merge-patch+json", patch))
		}},
		{"list leases in another namespace", func(ctx context.Context) error {
			return c.List(ctx, &coordinationv1.LeaseList{}, client.InNamespace(other))
		}},
	}
	for _, f := range forbidden {
		t.Run("may not "+f.name, func(t *testing.T) {
			if err := f.do(ctx); !apierrors.IsForbidden(err) {
				t.Errorf("got %v, want forbidden", err)
			}
		})
	}
	t.Run("may read its own node's pool", func(t *testing.T) {
		if pool, err := poolOfNode(ctx, c, nodeName); err != nil || pool != poolName {
			t.Errorf("pool %q, %v; want %q", pool, err, poolName)
		}
	})
}

var (
	installOnce sync.Once
	installErr  error
)

// installBaseForReal applies deploy/base to the API server, once per
// package run.
func installBaseForReal(ctx context.Context, t *testing.T) {
	t.Helper()
	objs := build(t, variant{dir: "base"})
	installOnce.Do(func() {
		var errs []error
		for _, obj := range objs {
			if err := apply(ctx, obj); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err))
			}
		}
		installErr = errors.Join(errs...)
	})
	if installErr != nil {
		t.Fatalf("install deploy/base: %v", installErr)
	}
}

// createNode creates the node the bridge runs on, labelled with its pool as
// OpenYurt labels it.
func createNode(ctx context.Context, t *testing.T, name, pool string) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.NodePoolLabel: pool}}}
	if err := kube.Client.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create node %s: %v", name, err)
	}
}

// waitUntilRBACIsInForce waits until the API server's authorizer has seen
// the new bindings, so that a forbidden answer later means a missing rule,
// not a binding still on its way.
func waitUntilRBACIsInForce(t *testing.T) {
	t.Helper()
	c, err := client.New(impersonate(serviceAccount, nil), client.Options{Scheme: devicecontroller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		if err := c.List(ctx, &v1alpha1.DeviceList{}, client.InNamespace(namespace)); err != nil {
			return err
		}
		return c.Get(ctx, client.ObjectKey{Name: nodeName}, &corev1.Node{})
	})
}

// poolOfNode finds the pool from the node's label, as the bridge does when
// it is given no --nodepool (cmd/devicecontroller).
func poolOfNode(ctx context.Context, c client.Client, node string) (string, error) {
	n := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: node}, n); err != nil {
		return "", err
	}
	return n.Labels[v1alpha1.NodePoolLabel], nil
}

// impersonate is the test API server's admin acting as user; rec, when
// set, sees every response.
func impersonate(user string, rec *forbiddenRecorder) *rest.Config {
	cfg := rest.CopyConfig(kube.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	if rec != nil {
		cfg.WrapTransport = rec.wrap
	}
	return cfg
}

// forbiddenRecorder records every 403 the API server answers.
type forbiddenRecorder struct {
	mu       sync.Mutex
	requests int
	denied   map[string]int
}

func (r *forbiddenRecorder) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests++
		if err == nil && resp.StatusCode == http.StatusForbidden {
			if r.denied == nil {
				r.denied = map[string]int{}
			}
			r.denied[req.Method+" "+req.URL.Path]++
		}
		return resp, err
	})
}

func (r *forbiddenRecorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// forbidden counts the refused requests by method and path.
func (r *forbiddenRecorder) forbidden() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.denied)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// startSeededSimulator is the pool's EdgeX, with the demo's GPIO board,
// sensor and camera.
func startSeededSimulator(t *testing.T) *simulator.Simulator {
	t.Helper()
	sim := simulator.New(simulator.Options{BrokerURL: mqtt.URL(), TopicPrefix: "edgex-deploy-rbac"})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
	defer cancel()
	if err := sim.Start(ctx); err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if err := sim.SeedDemo(ctx); err != nil {
		t.Fatalf("seed simulator: %v", err)
	}
	return sim
}

// startBridge runs the bridge as cmd/devicecontroller wires it, with cfg's
// identity and leader election on, and returns once it leads and has
// listed EdgeX. The returned stop waits until the manager has returned
// (and released its lease).
func startBridge(t *testing.T, cfg *rest.Config, sim *simulator.Simulator, pool string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	edge, bus := connectEdgeX(ctx, t, sim)
	lease, renew, retry := 15*time.Second, 10*time.Second, 2*time.Second
	cloud := devicecontroller.NewCloud(pool, 0)
	cfg = cloud.Config(cfg)
	lock, err := devicecontroller.NewLeaderLock(cfg, cloud, devicecontroller.LeaderElection{
		Namespace: namespace, Name: devicecontroller.LeaseName(pool),
		LeaseDuration: lease, RenewDeadline: renew, RetryPeriod: retry,
		Beacon: bus, Topic: devicecontroller.BeaconTopic("edgex-deploy-rbac", pool),
	})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                              devicecontroller.Scheme(),
		Cache:                               devicecontroller.CacheOptions(pool, []string{namespace}),
		Metrics:                             metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:              "0",
		LeaderElection:                      true,
		LeaderElectionResourceLockInterface: lock,
		LeaderElectionReleaseOnCancel:       true,
		LeaseDuration:                       &lease,
		RenewDeadline:                       &renew,
		RetryPeriod:                         &retry,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(lock); err != nil {
		t.Fatal(err)
	}
	bridge, err := devicecontroller.New(mgr, edge, devicecontroller.Options{
		NodePool: pool, Namespaces: []string{namespace}, Cloud: cloud,
		StatusInterval: 200 * time.Millisecond, CommandRetryBase: 100 * time.Millisecond, CommandRetryMax: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("bridge stopped with: %v", err)
			}
			bus.Close()
		})
	}
	t.Cleanup(stop)
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		select {
		case <-mgr.Elected():
		default:
			return errors.New("not leading yet")
		}
		return bridge.Ready()
	})
	return stop
}

// connectEdgeX builds the EdgeX clients as cmd/devicecontroller does.
func connectEdgeX(ctx context.Context, t *testing.T, sim *simulator.Simulator) (devicecontroller.EdgeX, *messagebus.Client) {
	t.Helper()
	restOpts := edgex.Options{MetadataURL: sim.MetadataURL(), CommandURL: sim.CommandURL(), Timeout: 3 * time.Second}
	meta, err := edgex.NewMetadata(restOpts)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := edgex.NewCommand(restOpts)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := messagebus.New(messagebus.Options{BrokerURL: mqtt.URL(), TopicPrefix: "edgex-deploy-rbac", MaxReconnectInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(ctx); err != nil {
		t.Fatal(err)
	}
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

// waitForImport waits until the device EdgeX calls edgexName is in the
// cluster, read as the bridge reads it.
func waitForImport(t *testing.T, c client.Client, edgexName string) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		devices := &v1alpha1.DeviceList{}
		if err := c.List(ctx, devices, client.InNamespace(namespace)); err != nil {
			return err
		}
		for _, d := range devices.Items {
			if v1alpha1.EdgeXName(&d) == edgexName && d.Annotations[v1alpha1.OriginAnnotation] == v1alpha1.OriginEdge {
				return nil
			}
		}
		return fmt.Errorf("%s not imported among %d devices", edgexName, len(devices.Items))
	})
}

// gpioDevice is a managed device on the demo's GPIO profile.
func gpioDevice(name, pool string) *v1alpha1.Device {
	return &v1alpha1.Device{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v1alpha1.DeviceSpec{
			Description: "applied in the cloud", AdminState: v1alpha1.UnLocked, OperatingState: v1alpha1.Up,
			Protocols: map[string]v1alpha1.ProtocolProperties{"other": {"Address": name}},
			Service:   simulator.DemoServiceName, Profile: simulator.ProfileGPIO, Managed: true, NodePool: pool,
		},
	}
}

func create(ctx context.Context, t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(ctx, obj); err != nil {
		t.Fatalf("create %s: %v", obj.GetName(), err)
	}
}

// setDesired is `kubectl edit device`: one desired property value.
func setDesired(ctx context.Context, t *testing.T, c client.Client, device, resource, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"deviceProperties":{%q:{"name":%q,"desiredValue":%q}}}}`, resource, resource, value)
	dev := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: device}}
	if err := c.Patch(ctx, dev, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Fatalf("set %s of %s: %v", resource, device, err)
	}
}
