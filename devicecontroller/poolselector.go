package devicecontroller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// PoolSelection is how the bridge asks the API server for its pool's
// objects only.
type PoolSelection string

const (
	// SelectByField selects by spec.nodePool, a CRD selectable field
	// (Kubernetes 1.31 and later, or 1.30 with the CustomResourceFieldSelectors
	// feature gate).
	SelectByField PoolSelection = "field"
	// SelectByLabel selects by the PoolLabel label, which mirrors
	// spec.nodePool, on API servers that cannot select custom resources by
	// field. The bridge then labels the objects that lack it.
	SelectByLabel PoolSelection = "label"
)

// ParsePoolSelection reads a --pool-selection value; "auto" and "" mean
// "probe the API server" and return "".
func ParsePoolSelection(s string) (PoolSelection, error) {
	switch PoolSelection(s) {
	case "", "auto":
		return "", nil
	case SelectByField, SelectByLabel:
		return PoolSelection(s), nil
	}
	return "", fmt.Errorf("pool selection must be auto, field or label, not %q", s)
}

// probeTimeout bounds one request of the probe or of the labeller;
// probeBackoff spaces the probe's attempts while the API server does not
// answer.
const (
	probeTimeout = 10 * time.Second
	probeBackoff = 2 * time.Second
)

// DetectPoolSelection asks the API server whether it can select each of the
// three kinds by spec.nodePool: one list of at most one object per kind,
// with the field selector, in namespace. A server that refuses the selector
// as a bad request (the field is not selectable there, as before Kubernetes
// 1.31, or the installed CRDs do not declare it) gets SelectByLabel. Other
// failures, such as an API server that is not up yet, are retried until
// ctx ends.
func DetectPoolSelection(ctx context.Context, c client.Reader, pool, namespace string, log logr.Logger) (PoolSelection, error) {
	var found PoolSelection
	err := wait.PollUntilContextCancel(ctx, probeBackoff, true, func(ctx context.Context) (bool, error) {
		sel, err := probePoolSelection(ctx, c, pool, namespace)
		if err != nil {
			log.Info("cannot tell yet whether the API server selects by spec.nodePool; retrying", "error", err.Error())
			return false, nil
		}
		found = sel
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("probe how to select pool %s's objects: %w", pool, err)
	}
	return found, nil
}

// fromWatchCache lets the API server answer the probe from its watch cache
// (resourceVersion "0"). Without it a list with a limit is read from etcd,
// in pages that start at the limit and double, until a match or the end:
// a new pool's probe, which matches nothing, read every object of every
// other pool in the namespace, one etcd round trip after another. The
// answer is the same from the cache: the API server checks the field
// selector before it reads, wherever it reads from.
//
// It is made anew for each list: the client writes into the options it is
// given, so lists made at once must not share them.
func fromWatchCache() *client.ListOptions {
	return &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}
}

// probePoolSelection asks about the three kinds at once. An API server that
// has just started answers a kind's first list from its watch cache with
// 429 and Retry-After: 1 s while it fills that cache, and client-go waits
// and asks again without a word: asked one after another, the kinds made a
// bridge on a fresh API server start 3 s late (0.14 s on one that had
// served a while), every pool's import included.
func probePoolSelection(ctx context.Context, c client.Reader, pool, namespace string) (PoolSelection, error) {
	lists := []client.ObjectList{&v1alpha1.DeviceList{}, &v1alpha1.DeviceServiceList{}, &v1alpha1.DeviceProfileList{}}
	errs := make([]error, len(lists))
	var wg sync.WaitGroup
	for i, list := range lists {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			errs[i] = c.List(ctx, list, client.InNamespace(namespace), client.Limit(1), fromWatchCache(),
				client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("spec.nodePool", pool)})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if apierrors.IsBadRequest(err) {
			return SelectByLabel, nil
		}
	}
	for i, err := range errs {
		if err != nil {
			return "", fmt.Errorf("list %T by spec.nodePool: %w", lists[i], err)
		}
	}
	return SelectByField, nil
}

// PoolCacheOptions restrict the manager's cache to one pool's objects in
// the given namespaces, so that the API server never sends this bridge
// another pool's traffic: by field selector on spec.nodePool, or by the
// PoolLabel label where fields cannot be selected.
//
// kept, when set, holds Devices' protocols and reported values in a
// compact form instead of the cache (see DeviceFields); the bridge must be
// given the same store in Options.DeviceFields.
func PoolCacheOptions(pool string, namespaces []string, sel PoolSelection, kept *DeviceFields) cache.Options {
	nsConfig := map[string]cache.Config{}
	for _, ns := range namespaces {
		nsConfig[ns] = cache.Config{}
	}
	inPool := cache.ByObject{Namespaces: nsConfig}
	if sel == SelectByLabel {
		inPool.Label = labels.SelectorFromSet(labels.Set{v1alpha1.PoolLabel: pool})
	} else {
		inPool.Field = fields.OneTermEqualSelector("spec.nodePool", pool)
	}
	return cache.Options{
		// What the bridge never reads is dropped, and what thousands of
		// objects repeat is kept once (see compactForCache).
		DefaultTransform: compactAndTake(kept),
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.Device{}:        inPool,
			&v1alpha1.DeviceService{}: inPool,
			&v1alpha1.DeviceProfile{}: inPool,
		},
	}
}

// nodePoolOf is the object's spec.nodePool.
func nodePoolOf(obj client.Object) string {
	switch o := obj.(type) {
	case *v1alpha1.Device:
		return o.Spec.NodePool
	case *v1alpha1.DeviceService:
		return o.Spec.NodePool
	case *v1alpha1.DeviceProfile:
		return o.Spec.NodePool
	}
	return ""
}

// serves reports whether obj is the bridge's to act on: in a watched
// namespace and of its pool. A label selector only says what a label says,
// and a person may set the label of another pool's object to this pool; such
// an object reaches the cache, but the bridge leaves it alone (and the
// labeller gives it back its own pool's label).
func (s *shared) serves(obj client.Object) bool {
	return s.watches(obj.GetNamespace()) && nodePoolOf(obj) == s.opts.NodePool
}

// markPool gives an object the label that mirrors its spec.nodePool (set
// by the caller: kind.imported for imports), whichever way the pool is
// selected.
func markPool(obj client.Object, pool string) {
	l := obj.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[v1alpha1.PoolLabel] = pool
	obj.SetLabels(l)
}

// poolKinds are the kinds that carry the pool label.
var poolKinds = map[string]func() client.Object{
	"Device":        func() client.Object { return &v1alpha1.Device{} },
	"DeviceService": func() client.Object { return &v1alpha1.DeviceService{} },
	"DeviceProfile": func() client.Object { return &v1alpha1.DeviceProfile{} },
}

// relabelItem names one object whose pool label may need setting.
type relabelItem struct {
	kind string
	key  types.NamespacedName
}

// poolLabeller keeps PoolLabel equal to spec.nodePool while the pool is
// selected by label, so that no object of the pool is missed:
//
//   - objects without the label, in the watched namespaces and of any pool,
//     come from a watch of their own (label selector "!edgebridge.io/nodepool"),
//     which holds only the few objects not labelled yet: people's manifests,
//     which carry no such label, are labelled as they are created. Every
//     pool's bridge labels what it sees; the value is spec.nodePool, so they
//     agree;
//   - an object of this pool that leaves the cache while it still exists had
//     its label removed or changed, and gets it back;
//   - an object of another pool whose label names this pool gets its own.
//
// spec.nodePool is immutable, so a label once right stays right unless a
// person changes it.
type poolLabeller struct {
	s     *shared
	mgr   manager.Manager
	queue workqueue.TypedRateLimitingInterface[relabelItem]
	kinds map[string]func() client.Object
}

func newPoolLabeller(s *shared, mgr manager.Manager) *poolLabeller {
	return &poolLabeller{s: s, mgr: mgr, kinds: poolKinds}
}

// Start watches unlabelled objects and the pool's cache, and labels until
// ctx ends. It runs only while this replica leads its pool.
func (l *poolLabeller) Start(ctx context.Context) error {
	l.queue = workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[relabelItem](100*time.Millisecond, time.Minute))
	defer l.queue.ShutDown()

	unlabelled, err := l.unlabelledCache()
	if err != nil {
		return err
	}
	for kind, newObject := range l.kinds {
		inf, err := unlabelled.GetInformer(ctx, newObject(), cache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("watch %ss without the %s label: %w", kind, v1alpha1.PoolLabel, err)
		}
		if _, err := inf.AddEventHandler(l.handler(kind, func(client.Object) bool { return true }, func(client.Object) bool { return false })); err != nil {
			return fmt.Errorf("watch %ss without the %s label: %w", kind, v1alpha1.PoolLabel, err)
		}
		pooled, err := l.mgr.GetCache().GetInformer(ctx, newObject(), cache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("watch the pool's %ss for labels: %w", kind, err)
		}
		foreign := func(o client.Object) bool { return nodePoolOf(o) != l.s.opts.NodePool }
		ours := func(o client.Object) bool { return nodePoolOf(o) == l.s.opts.NodePool }
		if _, err := pooled.AddEventHandler(l.handler(kind, foreign, ours)); err != nil {
			return fmt.Errorf("watch the pool's %ss for labels: %w", kind, err)
		}
	}
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- unlabelled.Start(ctx) }()
	go func() {
		<-ctx.Done()
		l.queue.ShutDown()
	}()
	for l.next(ctx) {
	}
	if err := <-cacheDone; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("watch unlabelled objects: %w", err)
	}
	return nil
}

// unlabelledCache watches the objects of the three kinds, in the watched
// namespaces, that lack the pool label.
func (l *poolLabeller) unlabelledCache() (cache.Cache, error) {
	lacking, err := labels.NewRequirement(v1alpha1.PoolLabel, selection.DoesNotExist, nil)
	if err != nil {
		return nil, fmt.Errorf("selector of unlabelled objects: %w", err)
	}
	nsConfig := map[string]cache.Config{}
	for _, ns := range l.s.opts.Namespaces {
		nsConfig[ns] = cache.Config{}
	}
	c, err := cache.New(l.mgr.GetConfig(), cache.Options{
		Scheme: l.mgr.GetScheme(), Mapper: l.mgr.GetRESTMapper(),
		DefaultNamespaces:    nsConfig,
		DefaultLabelSelector: labels.NewSelector().Add(*lacking),
		DefaultTransform:     compactForCache,
	})
	if err != nil {
		return nil, fmt.Errorf("cache of objects without the %s label: %w", v1alpha1.PoolLabel, err)
	}
	return c, nil
}

// handler queues the objects that onChange (additions and updates) or
// onLeave (deletions, which a label selector also reports for objects whose
// label stopped matching) picks.
func (l *poolLabeller) handler(kind string, onChange, onLeave func(client.Object) bool) toolscache.ResourceEventHandler {
	add := func(obj any, pick func(client.Object) bool) {
		if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		o, ok := obj.(client.Object)
		if !ok || !pick(o) {
			return
		}
		l.queue.Add(relabelItem{kind: kind, key: client.ObjectKeyFromObject(o)})
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { add(obj, onChange) },
		UpdateFunc: func(_, obj any) { add(obj, onChange) },
		DeleteFunc: func(obj any) { add(obj, onLeave) },
	}
}

// next labels one queued object; false once the queue is shut down.
func (l *poolLabeller) next(ctx context.Context) bool {
	item, shutdown := l.queue.Get()
	if shutdown {
		return false
	}
	defer l.queue.Done(item)
	if err := l.relabel(ctx, item); err != nil {
		if ctx.Err() == nil {
			l.s.log.Info("cannot set the pool label; retrying", "kind", item.kind, "object", item.key.String(), "error", err.Error())
			l.queue.AddRateLimited(item)
		}
		return true
	}
	l.queue.Forget(item)
	return true
}

// relabel reads the object from the API server (the event that queued it
// may be old) and sets its pool label to its spec.nodePool when they differ.
// Nothing else of the object is touched, and an object that is gone is
// left so.
func (l *poolLabeller) relabel(ctx context.Context, item relabelItem) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	obj := l.kinds[item.kind]()
	if err := l.mgr.GetAPIReader().Get(ctx, item.key, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	want := nodePoolOf(obj)
	if want == "" || obj.GetLabels()[v1alpha1.PoolLabel] == want {
		return nil
	}
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	markPool(obj, want)
	if err := l.s.client.Patch(ctx, obj, patch); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("label %s %s with its pool: %w", item.kind, item.key, err))
	}
	l.s.log.V(1).Info("labelled with its pool", "kind", item.kind, "object", item.key.String(), "nodePool", want)
	return nil
}
