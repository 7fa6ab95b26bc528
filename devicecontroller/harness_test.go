package devicecontroller_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
	"github.com/edgebridge/edgebridge/hack/testenv/broker"
)

// The package's tests share one API server and one broker; each test gets
// its own namespace, node pool, topic prefix and EdgeX simulator.
var (
	kube *testenv.Kube
	mqtt *broker.Broker
	// poolSelection is what the package's API server can do, as the
	// binary probes it: by field on today's Kubernetes, by label on the
	// oldest supported one (make test-compat).
	poolSelection devicecontroller.PoolSelection
)

func TestMain(m *testing.M) {
	if os.Getenv("EDGEBRIDGE_TEST_LOGS") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		// Without it, the first log line (a failing /readyz check) prints
		// controller-runtime's warning and a stack trace.
		ctrl.SetLogger(logr.Discard())
	}
	var err error
	if kube, err = testenv.StartKube(testenv.KubeOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	poolSelection, err = devicecontroller.DetectPoolSelection(ctx, kube.Client, "probe", "default", logr.Discard())
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = kube.Stop()
		os.Exit(1)
	}
	dir, _ := os.MkdirTemp("", "edgebridge-mqtt-")
	if mqtt, err = broker.StartIn(dir, broker.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = kube.Stop()
		os.Exit(1)
	}
	code := m.Run()
	removeBuiltBinaries()
	mqtt.Stop()
	_ = os.RemoveAll(dir)
	if err := kube.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop control plane:", err)
	}
	os.Exit(code)
}

var poolSeq atomic.Int64

// pool is one node pool under test: its EdgeX (the simulator) and its
// bridge, serving one namespace.
type pool struct {
	t      *testing.T
	name   string
	ns     string
	prefix string
	sim    *simulator.Simulator
	c      client.Client

	opts        devicecontroller.Options
	metricsAddr string
	bridge      *devicecontroller.Bridge
	stop        func()

	// cfg is kept for the bridges the test starts later; brokerURL is the
	// broker the pool's simulator and bridge use.
	cfg       poolConfig
	brokerURL string
}

type poolConfig struct {
	// namespace to serve; default a new one.
	namespace string
	// seedDemo loads the simulator's GPIO board, sensor and camera first.
	seedDemo bool
	// transport for commands: rest (default) or mqtt.
	transport string
	// options adjusts the bridge's options.
	options func(*devicecontroller.Options)
	// simOptions adjusts the simulator's options.
	simOptions func(*simulator.Options)
	// noBridge leaves the bridge to be started by the test.
	noBridge bool
	// metricsAddr serves the manager's metrics endpoint; default off.
	metricsAddr string
	// broker is the pool's own broker, for tests that restart it or that
	// need credentials or TLS; default the package's shared one.
	broker *broker.Broker
	// restOptions adjusts the bridge's EdgeX REST client options.
	restOptions func(*edgex.Options)
	// busOptions adjusts the bridge's message bus options.
	busOptions func(*messagebus.Options)
	// managerOptions adjusts the manager's options (leader election).
	managerOptions func(*ctrl.Options)
	// wrapBus stands between the bridge and its message bus client.
	wrapBus func(devicecontroller.Bus) devicecontroller.Bus
	// wire adjusts each replica as it is launched, after the options
	// above: its API server configuration, manager and bridge options,
	// and runnables of its own, given its message bus.
	wire func(*wiring)
}

// wiring is one replica's parts before its manager is made.
type wiring struct {
	kubeConfig *rest.Config
	manager    *ctrl.Options
	bridge     *devicecontroller.Options
	bus        *messagebus.Client
	runnables  []manager.Runnable
}

func startPool(t *testing.T, cfg poolConfig) *pool {
	t.Helper()
	p := &pool{t: t, c: kube.Client, cfg: cfg, brokerURL: mqtt.URL()}
	if cfg.broker != nil {
		p.brokerURL = cfg.broker.URL()
	}
	p.name = fmt.Sprintf("pool%d", poolSeq.Add(1))
	p.prefix = "edgex-" + p.name
	p.ns = cfg.namespace
	if p.ns == "" {
		p.ns = kube.Namespace(t)
	}
	simOpts := simulator.Options{BrokerURL: p.brokerURL, TopicPrefix: p.prefix}
	if cfg.simOptions != nil {
		cfg.simOptions(&simOpts)
	}
	p.sim = simulator.New(simOpts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.sim.Start(ctx); err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { _ = p.sim.Close() })
	if cfg.seedDemo {
		if err := p.sim.SeedDemo(ctx); err != nil {
			t.Fatalf("seed demo devices: %v", err)
		}
	}
	p.metricsAddr = cfg.metricsAddr
	p.opts = devicecontroller.Options{
		NodePool:         p.name,
		Namespaces:       []string{p.ns},
		StatusInterval:   200 * time.Millisecond,
		CommandRetryBase: 100 * time.Millisecond,
		CommandRetryMax:  time.Second,
		CommandTransport: cfg.transport,
	}
	if cfg.options != nil {
		cfg.options(&p.opts)
	}
	if !cfg.noBridge {
		p.startBridge()
	}
	return p
}

// startBridge starts (or restarts) the pool's bridge and returns once it
// has listed EdgeX completely.
func (p *pool) startBridge() {
	t := p.t
	t.Helper()
	r := p.launchBridge()
	p.bridge, p.stop = r.bridge, r.stop
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		return p.bridge.Ready()
	})
}

// replica is one running bridge of the pool: its manager and the means to
// stop it.
type replica struct {
	bridge *devicecontroller.Bridge
	mgr    manager.Manager
	// stop cancels the manager and waits until it returned.
	stop func()
	// done receives what the manager's Start returned; a reader that
	// finds a value puts it back for stop.
	done chan error
}

// launchBridge starts a bridge for the pool without waiting for it to be
// ready; it is stopped at the test's end.
func (p *pool) launchBridge() *replica {
	t := p.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	restOpts := edgex.Options{MetadataURL: p.sim.MetadataURL(), CommandURL: p.sim.CommandURL(), Timeout: 3 * time.Second, Retries: -1,
		Observer: devicecontroller.ObserveEdgeXRequest(p.name)}
	if p.cfg.restOptions != nil {
		p.cfg.restOptions(&restOpts)
	}
	meta, err := edgex.NewMetadata(restOpts)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := edgex.NewCommand(restOpts)
	if err != nil {
		t.Fatal(err)
	}
	busOpts := messagebus.Options{BrokerURL: p.brokerURL, TopicPrefix: p.prefix, MaxReconnectInterval: time.Second}
	if p.cfg.busOptions != nil {
		p.cfg.busOptions(&busOpts)
	}
	bus, err := messagebus.New(busOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var edgeBus devicecontroller.Bus = bus
	if p.cfg.wrapBus != nil {
		edgeBus = p.cfg.wrapBus(bus)
	}
	edge := devicecontroller.EdgeX{
		Devices: meta.Devices, Services: meta.Services, Profiles: profileStore{meta.Profiles, meta},
		Commands: cmd, Bus: edgeBus, Ping: meta.Ping,
	}
	if p.opts.CommandTransport == "mqtt" {
		edge.Commands = messagebus.CommandClient{Client: bus, RESTURL: cmd.URL}
	}
	// A test may choose how its pool is selected; by default, as the
	// binary would on this API server.
	sel := p.opts.PoolSelection
	if sel == "" {
		sel = poolSelection
	}
	// As cmd/devicecontroller wires it.
	fields := devicecontroller.NewDeviceFields()
	mgrOpts := ctrl.Options{
		Scheme:                 devicecontroller.Scheme(),
		Cache:                  devicecontroller.PoolCacheOptions(p.name, p.opts.Namespaces, sel, fields),
		MapperProvider:         devicecontroller.RESTMapper,
		Metrics:                metricsserver.Options{BindAddress: orDefault(p.metricsAddr, "0")},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr(true)},
	}
	if p.cfg.managerOptions != nil {
		p.cfg.managerOptions(&mgrOpts)
	}
	bridgeOpts := p.opts
	bridgeOpts.PoolSelection = sel
	bridgeOpts.DeviceFields = fields
	w := &wiring{kubeConfig: kube.Config, manager: &mgrOpts, bridge: &bridgeOpts, bus: bus}
	if p.cfg.wire != nil {
		p.cfg.wire(w)
	}
	mgr, err := ctrl.NewManager(w.kubeConfig, mgrOpts)
	if err != nil {
		t.Fatal(err)
	}
	if mgrOpts.HealthProbeBindAddress != "0" {
		// As cmd/devicecontroller does: /healthz says the process is alive.
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range w.runnables {
		if err := mgr.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	bridge, err := devicecontroller.New(mgr, edge, *w.bridge)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bridge of %s stopped with: %v", p.name, err)
		}
		bus.Close()
	}
	t.Cleanup(stop)
	return &replica{bridge: bridge, mgr: mgr, stop: stop, done: done}
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

func ptr[T any](v T) *T { return &v }

// get reads an object of the pool's namespace.
func (p *pool) get(obj client.Object, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.c.Get(ctx, client.ObjectKey{Namespace: p.ns, Name: name}, obj)
}

// waitFor waits until the named object satisfies check.
func waitFor[O client.Object](p *pool, obj O, name string, check func(O) error) {
	p.t.Helper()
	testenv.Eventually(p.t, testenv.DefaultTimeout, func(ctx context.Context) error {
		if err := p.get(obj, name); err != nil {
			return err
		}
		return check(obj)
	})
}

// waitGone waits until the named object no longer exists.
func waitGone(p *pool, obj client.Object, name string) {
	p.t.Helper()
	testenv.Eventually(p.t, testenv.DefaultTimeout, func(ctx context.Context) error {
		err := p.get(obj, name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("%s still exists (finalizers %v, deleting %v)", name, obj.GetFinalizers(), obj.GetDeletionTimestamp() != nil)
	})
}

// synced checks the Synced condition and status.synced.
func synced(status bool, conds []v1alpha1.Condition) error {
	c := v1alpha1.FindCondition(conds, v1alpha1.ConditionSynced)
	if !status || c == nil || c.Status != "True" {
		return fmt.Errorf("not synced: synced=%v condition=%+v", status, c)
	}
	return nil
}

// reason checks the Synced condition's reason.
func reason(conds []v1alpha1.Condition, condType, want string) error {
	c := v1alpha1.FindCondition(conds, condType)
	if c == nil || c.Reason != want {
		return fmt.Errorf("%s condition is %+v, want reason %s", condType, c, want)
	}
	return nil
}

func (p *pool) create(obj client.Object) {
	p.t.Helper()
	obj.SetNamespace(p.ns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.c.Create(ctx, obj); err != nil {
		p.t.Fatalf("create %s: %v", obj.GetName(), err)
	}
}

func (p *pool) delete(obj client.Object) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.c.Delete(ctx, obj); err != nil {
		p.t.Fatalf("delete %s: %v", obj.GetName(), err)
	}
}

// update applies change to the named object, retrying on conflicts.
func update[O client.Object](p *pool, obj O, name string, change func(O)) {
	p.t.Helper()
	testenv.Eventually(p.t, testenv.DefaultTimeout, func(ctx context.Context) error {
		if err := p.get(obj, name); err != nil {
			return err
		}
		change(obj)
		return p.c.Update(ctx, obj)
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
