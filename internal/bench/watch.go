package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// deviceWatch is the benchmark's view of one namespace's Devices: an
// informer whose events are timestamped as they arrive and handed to
// observers. It is how the benchmark sees effects in the cluster without
// polling the API server (which would load the very server it measures).
type deviceWatch struct {
	cache  cache.Cache
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	observers map[int]func(deviceChange)
	nextID    int
}

type changeKind int

const (
	deviceAdded changeKind = iota
	deviceUpdated
	deviceDeleted
)

// deviceChange is one watch event: for updates old is the previous object.
type deviceChange struct {
	kind     changeKind
	old, dev *v1alpha1.Device
	at       time.Time
}

// startDeviceWatch watches one pool's Devices in a namespace and returns
// once the initial list is in. It selects by spec.nodePool as the bridge
// does, so that pools sharing a namespace do not fill each other's watch.
func startDeviceWatch(ctx context.Context, cfg *rest.Config, namespace, pool string) (*deviceWatch, error) {
	c, err := cache.New(cfg, cache.Options{
		Scheme:            testenv.Scheme(),
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.Device{}: {Field: fields.OneTermEqualSelector("spec.nodePool", pool)},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("device watch for %s: %w", namespace, err)
	}
	w := &deviceWatch{cache: c, done: make(chan struct{}), observers: map[int]func(deviceChange){}}
	inf, err := c.GetInformer(ctx, &v1alpha1.Device{})
	if err != nil {
		return nil, fmt.Errorf("device informer for %s: %w", namespace, err)
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { w.notify(deviceAdded, nil, obj) },
		UpdateFunc: func(old, obj any) {
			prev, _ := old.(*v1alpha1.Device)
			w.notify(deviceUpdated, prev, obj)
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			w.notify(deviceDeleted, nil, obj)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("device watch handler for %s: %w", namespace, err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() {
		defer close(w.done)
		_ = c.Start(runCtx)
	}()
	syncCtx, syncCancel := context.WithTimeout(ctx, time.Minute)
	defer syncCancel()
	if !c.WaitForCacheSync(syncCtx) {
		w.stop()
		return nil, fmt.Errorf("device watch for %s did not sync within a minute", namespace)
	}
	return w, nil
}

func (w *deviceWatch) notify(kind changeKind, old *v1alpha1.Device, obj any) {
	dev, ok := obj.(*v1alpha1.Device)
	if !ok {
		return
	}
	ch := deviceChange{kind: kind, old: old, dev: dev, at: time.Now()}
	w.mu.Lock()
	fns := make([]func(deviceChange), 0, len(w.observers))
	for _, fn := range w.observers {
		fns = append(fns, fn)
	}
	w.mu.Unlock()
	for _, fn := range fns {
		fn(ch)
	}
}

// observe calls fn for every later change, on the informer's goroutine
// (fn must be quick); cancel stops it.
func (w *deviceWatch) observe(fn func(deviceChange)) (cancel func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := w.nextID
	w.nextID++
	w.observers[id] = fn
	return func() {
		w.mu.Lock()
		delete(w.observers, id)
		w.mu.Unlock()
	}
}

// list returns the Devices the watch holds now.
func (w *deviceWatch) list(ctx context.Context) ([]v1alpha1.Device, error) {
	var l v1alpha1.DeviceList
	if err := w.cache.List(ctx, &l, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return l.Items, nil
}

func (w *deviceWatch) stop() {
	w.cancel()
	<-w.done
}

// importComplete says whether an imported Device is what an import must
// produce: it exists in the cluster, agrees with EdgeX (synced, Synced
// condition True for its generation) and carries what EdgeX reports (id,
// admin and operating state).
func importComplete(d *v1alpha1.Device) bool {
	c := v1alpha1.FindCondition(d.Status.Conditions, v1alpha1.ConditionSynced)
	return d.DeletionTimestamp == nil && d.Status.Synced && c != nil && c.Status == metav1.ConditionTrue &&
		d.Status.EdgeId != "" && d.Status.AdminState != "" && d.Status.OperatingState != "" &&
		d.Status.ObservedGeneration == d.Generation
}

// hasReadings says whether status holds a reported value for each of the
// first perEvent readable resources of the device, those its events carry.
func hasReadings(d *v1alpha1.Device, perEvent int) bool {
	spec, ok := profileSpecNamed(d.Spec.Profile)
	if !ok {
		return false
	}
	for _, r := range spec.resources[:min(perEvent, len(spec.resources))] {
		if d.Status.DeviceProperties[r.name].LastReported == 0 {
			return false
		}
	}
	return true
}
