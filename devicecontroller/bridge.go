package devicecontroller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// Bridge is one node pool's bridge, wired into a controller-runtime manager
// whose cache was built with CacheOptions.
type Bridge struct {
	shared
	devices   *edgeQueue[*v1alpha1.Device, dtos.Device]
	services  *edgeQueue[*v1alpha1.DeviceService, dtos.DeviceService]
	profiles  *edgeQueue[*v1alpha1.DeviceProfile, dtos.DeviceProfile]
	commands  *commandDriver
	telemetry *telemetry
	pruner    *fieldsPruner
	resync    *resyncer
	edge      EdgeX
	elected   <-chan struct{}
}

// New wires the bridge into mgr: one controller per kind (one generic
// implementation), the edge queues, the resync, the bus subscriptions and
// the health checks. Everything but the health checks runs only while this
// replica leads its pool.
func New(mgr manager.Manager, edge EdgeX, opts Options) (*Bridge, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("bridge options: %w", err)
	}
	b := &Bridge{edge: edge, elected: mgr.Elected()}
	b.shared = shared{
		opts:      opts,
		client:    mgr.GetClient(),
		apiReader: mgr.GetAPIReader(),
		recorder:  mgr.GetEventRecorder(opts.EventSource),
		metrics:   newMetrics(opts.NodePool),
		log:       mgr.GetLogger().WithName("edgebridge").WithValues("pool", opts.NodePool),
		cloud:     opts.Cloud,
	}
	b.resync = newResyncer(&b.shared)
	guard := newDeletionGuard()
	b.services = newEdgeQueue(&b.shared, newServiceKind(edge), guard)
	b.profiles = newEdgeQueue(&b.shared, newProfileKind(edge), guard)
	b.devices = newEdgeQueue(&b.shared, newDeviceKind(edge), guard)
	b.resync.kinds = []resyncable{b.services, b.profiles, b.devices}
	b.commands = newCommandDriver(&b.shared, edge.Commands, opts.CommandTransport, b.profiles.view, b.services.view, b.devices.requeueKey)
	b.telemetry = newTelemetry(&b.shared, b.commands, func(ctx context.Context, edgexName string) (*v1alpha1.Device, bool) {
		owner, found, err := b.devices.rec.owner(ctx, edgexName)
		return owner, found && err == nil
	})
	b.commands.unwritten = b.telemetry.unwritten
	b.health = newEdgeHealth(edge.Ping, func() {
		b.resync.trigger()
		// Commands that failed while EdgeX was away go out now rather
		// than after their grown backoff. wake may wait for the device
		// queue; onRecover must not.
		go b.commands.wake()
	})
	b.devices.rec.afterSync = b.commands.drive
	if !opts.KeepManagedFields {
		b.pruner = newFieldsPruner(&b.shared, b.telemetry.pacer)
		serve(b.pruner, b.services.rec)
		serve(b.pruner, b.profiles.rec)
		serve(b.pruner, b.devices.rec)
	}
	if opts.DeviceFields != nil {
		b.devices.rec.restore = opts.DeviceFields.restore
		informer, err := mgr.GetCache().GetInformer(context.Background(), &v1alpha1.Device{})
		if err != nil {
			return nil, fmt.Errorf("get the Device informer: %w", err)
		}
		if _, err := informer.AddEventHandler(opts.DeviceFields.forgetDeleted()); err != nil {
			return nil, fmt.Errorf("watch Device deletions for the device fields store: %w", err)
		}
	}
	b.devices.rec.onDelete = func(d *v1alpha1.Device) {
		key := types.NamespacedName{Namespace: d.Namespace, Name: d.Name}
		b.commands.forget(key)
		b.telemetry.forget(key)
		// A profile or service whose deletion waited for this device
		// (ProfileInUse, ServiceInUse) may go now.
		b.profiles.names.Add(d.Spec.Profile)
		b.services.names.Add(d.Spec.Service)
	}
	// Everything above only builds; from here on the manager may call in.
	for _, q := range []interface{ setup(manager.Manager) error }{b.services, b.profiles, b.devices, b.telemetry} {
		if err := q.setup(mgr); err != nil {
			return nil, err
		}
	}
	if err := b.indexDependencies(mgr); err != nil {
		return nil, err
	}
	b.watchCloud(mgr)

	if opts.PoolSelection == SelectByLabel {
		if err := mgr.Add(newPoolLabeller(&b.shared, mgr)); err != nil {
			return nil, fmt.Errorf("add pool labeller: %w", err)
		}
	}
	b.log.Info("selecting the pool's objects", "by", opts.PoolSelection)

	watch := &wipeWatch{shared: &b.shared, kinds: []probed{b.services, b.profiles, b.devices}, resync: b.resync.trigger}
	for _, r := range []manager.Runnable{
		b.resync, b.commands, watch,
		manager.RunnableFunc(b.telemetry.publishNorthbound),
		manager.RunnableFunc(b.health.run),
		manager.RunnableFunc(b.listen),
		manager.RunnableFunc(b.watchReconnects),
	} {
		if err := mgr.Add(r); err != nil {
			return nil, fmt.Errorf("add bridge runnable: %w", err)
		}
	}
	if b.pruner != nil {
		if err := mgr.Add(b.pruner); err != nil {
			return nil, fmt.Errorf("add managedFields pruner: %w", err)
		}
	}
	if err := mgr.AddReadyzCheck("edgex", b.readyz); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("cloud-reachable", opts.Cloud.Readyz); err != nil {
		return nil, err
	}
	if err := mgr.Add(opts.Cloud); err != nil {
		return nil, fmt.Errorf("add cloud prober: %w", err)
	}
	return b, nil
}

// Device indexes by the EdgeX names of the profile and service a device
// uses, so that an import the edge lost finds the devices that need it.
const (
	indexDeviceProfile = "edgebridge.io/profileName"
	indexDeviceService = "edgebridge.io/serviceName"
)

// indexDependencies lets imported profiles and services find the devices
// that use them: such an import is re-created, not deleted, while a device
// EdgeX must hold uses it.
func (b *Bridge) indexDependencies(mgr manager.Manager) error {
	for index, field := range map[string]func(*v1alpha1.Device) string{
		indexDeviceProfile: func(d *v1alpha1.Device) string { return d.Spec.Profile },
		indexDeviceService: func(d *v1alpha1.Device) string { return d.Spec.Service },
	} {
		err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Device{}, index,
			func(o client.Object) []string {
				d := o.(*v1alpha1.Device)
				// Only the devices EdgeX must hold keep a dependency alive
				// (usersOf); leaving the pure imports out, the bulk of a
				// large pool, keeps the index small.
				if b.devices.rec.mirrorsEdge(d) {
					return nil
				}
				return []string{field(d)}
			})
		if err != nil {
			return fmt.Errorf("index devices by %s: %w", index, err)
		}
	}
	b.profiles.rec.neededBy = b.devices.rec.usersOf(indexDeviceProfile)
	b.services.rec.neededBy = b.devices.rec.usersOf(indexDeviceService)
	return nil
}

// listen subscribes to core-metadata's system events, and resyncs whenever
// the bus reconnects (events were surely missed while it was down).
func (b *Bridge) listen(ctx context.Context) error {
	if b.edge.Bus == nil {
		<-ctx.Done()
		return nil
	}
	err := b.edge.Bus.SubscribeSystemEvents(b.onSystemEvent, func(topic string, err error) {
		if b.dropped("system-event", err) {
			// The lost events were changes the bridge now does not know
			// of; a full list finds them.
			b.resync.trigger()
			return
		}
		b.metrics.decodeErrors.WithLabelValues(b.metrics.pool, "system-event").Inc()
		b.log.V(1).Info("undecodable system event", "topic", topic, "error", err.Error())
	})
	if err != nil {
		return fmt.Errorf("subscribe to EdgeX system events: %w", err)
	}
	err = b.edge.Bus.SubscribeEvents(b.telemetry.onEvent, func(topic string, err error) {
		// A lost reading is repaired by the device's next event, so a drop
		// is counted and logged only.
		if b.dropped("event", err) {
			return
		}
		b.metrics.decodeErrors.WithLabelValues(b.metrics.pool, "event").Inc()
		b.log.V(1).Info("undecodable device event", "topic", topic, "error", err.Error())
	})
	if err != nil {
		return fmt.Errorf("subscribe to EdgeX device events: %w", err)
	}
	defer b.metrics.readingValue.serve(b.telemetry)()
	<-ctx.Done()
	return nil
}

// watchReconnects resyncs each time the bus is ready again after it was
// not: events were surely missed meanwhile. It listens to the client's own
// connection changes, because a reconnect can take less time than any
// polling interval and would go unnoticed until the periodic resync.
func (b *Bridge) watchReconnects(ctx context.Context) error {
	if b.edge.Bus == nil {
		<-ctx.Done()
		return nil
	}
	var mu sync.Mutex
	wasDown := !b.edge.Bus.Connected()
	remove := b.edge.Bus.NotifyConnection(func(connected bool) {
		mu.Lock()
		defer mu.Unlock()
		if !connected {
			wasDown = true
			return
		}
		if wasDown {
			wasDown = false
			b.log.Info("message bus reconnected; resyncing to repair missed events")
			b.resync.trigger()
		}
	})
	defer remove()
	<-ctx.Done()
	return nil
}

// dropped counts and logs messages the bus dropped because their handler
// fell behind, and reports whether err was such a drop.
func (b *Bridge) dropped(messageType string, err error) bool {
	var drop *messagebus.DroppedError
	if !errors.As(err, &drop) {
		return false
	}
	b.metrics.messagesDropped.WithLabelValues(b.metrics.pool, messageType).Add(float64(drop.Count))
	b.log.Info("message bus handler fell behind; messages dropped", "type", messageType, "dropped", drop.Count)
	return true
}

func (b *Bridge) onSystemEvent(topic string, se messagebus.SystemEvent) {
	var err error
	switch se.Type {
	case messagebus.KindDevice:
		var d dtos.Device
		if d, err = se.Device(); err == nil {
			b.devices.onEvent(se.Action, d)
		}
	case messagebus.KindDeviceService:
		var s dtos.DeviceService
		if s, err = se.Service(); err == nil {
			b.services.onEvent(se.Action, s)
		}
	case messagebus.KindDeviceProfile:
		var p dtos.DeviceProfile
		if p, err = se.Profile(); err == nil {
			b.profiles.onEvent(se.Action, p)
		}
	}
	if err != nil {
		// An envelope that decoded but whose details did not: the change
		// it announced is unknown until the next resync lists it.
		b.metrics.decodeErrors.WithLabelValues(b.metrics.pool, "system-event").Inc()
		b.log.V(1).Info("undecodable system event", "topic", topic, "kind", se.Type, "action", se.Action, "error", err.Error())
	}
}

// readyz is ready once EdgeX has been listed completely and is answering.
// A standby replica (not leading its pool) is ready to take over, so it
// reports ready and never stalls a rollout.
func (b *Bridge) readyz(*http.Request) error {
	select {
	case <-b.elected:
	default:
		return nil
	}
	return b.Ready()
}

// ResyncNow asks for a full resync without waiting for it.
func (b *Bridge) ResyncNow() { b.resync.trigger() }

// LeaseName is the leader-election lease of one pool's bridge: replicas of
// one pool compete for it, and pools never block each other.
func LeaseName(pool string) string { return "edgebridge-" + pool }

// Scheme holds the kinds the bridge reads and writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// Ready reports nil once the bridge has listed EdgeX completely and EdgeX
// answers; it is what /readyz reports while this replica leads its pool.
func (b *Bridge) Ready() error {
	if down, err := b.health.Down(); down {
		return fmt.Errorf("EdgeX unreachable: %w", err)
	}
	if !b.devices.view.Complete() || !b.services.view.Complete() || !b.profiles.view.Complete() {
		return errors.New("EdgeX not listed completely yet")
	}
	return nil
}

// watchCloud makes the bridge catch up when the cloud answers again: a
// resync reconciles every object once, which writes the statuses held
// meanwhile, and imports or deletes what the edge changed. While the cloud
// is away, an answered-only-by-the-cloud request (a self access review,
// which creates nothing and needs no RBAC) probes for its return.
func (b *Bridge) watchCloud(mgr manager.Manager) {
	cloud := b.opts.Cloud
	cloud.OnRecover(func() {
		b.resync.trigger()
	})
	cloud.OnRecover(b.telemetry.flushSoon)
	c := mgr.GetClient()
	ns := b.opts.Namespaces[0]
	cloud.mu.Lock()
	cloud.probe = func(ctx context.Context) error {
		return c.Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: "patch", Group: v1alpha1.GroupVersion.Group, Resource: "devices", Subresource: "status",
			},
		}})
	}
	cloud.mu.Unlock()
}
