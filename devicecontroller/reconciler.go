package devicecontroller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex"
)

// indexEdgeXName indexes objects by their EdgeX name, so that an EdgeX
// event or list entry finds its object without listing the pool. It holds
// only the objects a lookup by name would miss (namedConventionally): an
// index entry costs about 400 bytes per object, 8 MB of a 10,000-device
// pool's heap when every object had one.
const indexEdgeXName = "edgebridge.io/edgexName"

// retryEdgeXDown is how soon a reconcile that found EdgeX unreachable looks
// again; recovery also triggers a resync that enqueues everything at once.
const retryEdgeXDown = 30 * time.Second

// retryInUse is how soon the deletion of a profile or service that EdgeX
// refused because devices use it is tried again.
const retryInUse = 30 * time.Second

// reconciler converges one kind's objects and EdgeX (cloud to edge for
// managed objects, edge to cloud for imported ones) and records the outcome
// in status. One generic implementation serves the three kinds.
type reconciler[O client.Object, E any] struct {
	*shared
	kind kind[O, E]
	view *edgeView[E]
	// afterSync, when set, runs once the object and EdgeX agree; devices
	// use it to drive commands.
	afterSync func(ctx context.Context, obj O, edge E) (reconcile.Result, error)
	// restore, when set, puts back into the reconcile's own copy of the
	// object what the cache keeps outside it (see DeviceFields).
	restore func(obj O) error
	// onDelete, when set, runs once the object's EdgeX counterpart is gone
	// and its finalizer is about to be removed.
	onDelete func(obj O)
	// edgeGone hands an EdgeX name to the edge queue, which decides whether
	// its object may be deleted.
	edgeGone func(name string)
	// seen tells the edge queue that the cache shows the object of an
	// EdgeX name, so that it no longer waits for it (madeAlready).
	seen func(name string)
	// neededBy, when set, names an object in the pool that EdgeX must hold
	// and that uses the named EdgeX object (a device that uses a profile or
	// a service), or "" when none does.
	neededBy func(ctx context.Context, name string) (string, error)
	// writes keeps a reconcile from acting on a cached copy older than the
	// reconciler's own last write.
	writes ownWrites
	// pruner, when set, empties the objects' managedFields once the
	// bridge is quiet (managedfields.go).
	pruner *fieldsPruner
}

// setup registers the kind's controller: it reconciles what the cache
// sees change and what the edge queue and the resync send on reconcileCh.
func (r *reconciler[O, E]) setup(mgr manager.Manager, reconcileCh <-chan event.GenericEvent) error {
	k := r.kind
	err := mgr.GetFieldIndexer().IndexField(context.Background(), k.newObject(), indexEdgeXName,
		func(o client.Object) []string {
			if r.namedConventionally(o) {
				return nil
			}
			return []string{v1alpha1.EdgeXName(o)}
		})
	if err != nil {
		return fmt.Errorf("index %s by EdgeX name: %w", k.name(), err)
	}
	err = builder.ControllerManagedBy(mgr).
		Named(fmt.Sprintf("%s-%s", strings.ToLower(k.name()), r.opts.NodePool)).
		For(k.newObject(), builder.WithPredicates(watched(k))).
		WatchesRawSource(source.Channel(reconcileCh, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: r.opts.Workers,
			RateLimiter:             reconcileRateLimiter(),
			// Several pools' bridges may share a process in tests.
			SkipNameValidation: ptr.To(true),
		}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("set up %s controller: %w", k.name(), err)
	}
	return nil
}

// watched lets through creations, deletions and changes of spec
// (generation), labels, annotations or finalizers, plus what the kind's own
// status predicate wants; other status-only updates, which telemetry makes
// all the time, are skipped.
func watched[O client.Object, E any](k kind[O, E]) predicate.Predicate {
	status := k.watchStatus()
	if status == nil {
		status = predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }}
	}
	synced := func(obj client.Object) *v1alpha1.Condition {
		if o, ok := obj.(O); ok {
			return syncedOf(k, o)
		}
		return nil
	}
	return predicate.Or(
		status,
		predicate.GenerationChangedPredicate{},
		predicate.LabelChangedPredicate{},
		predicate.AnnotationChangedPredicate{},
		predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			return !slices.Equal(e.ObjectOld.GetFinalizers(), e.ObjectNew.GetFinalizers()) ||
				!e.ObjectOld.GetDeletionTimestamp().Equal(e.ObjectNew.GetDeletionTimestamp()) ||
				syncedChanged(synced(e.ObjectOld), synced(e.ObjectNew))
		}},
	)
}

// syncedChanged reports whether the Synced condition changed. A reconcile
// may read the object from a cache that has not yet seen the previous
// reconcile's status write, find nothing to change and write nothing; the
// write's own event then brings the object back with the stored status, so
// a stale "waiting" or failure reason cannot outlive its cause. It costs
// one reconcile per change of the condition, which is rare.
func syncedChanged(a, b *v1alpha1.Condition) bool {
	if a == nil || b == nil {
		return a != b
	}
	return a.Status != b.Status || a.Reason != b.Reason || a.Message != b.Message
}

// reconcileRateLimiter retries failures from 100ms up to a minute, per
// object, with no global bucket: a burst of 10,000 imports must not be
// throttled to ten a second.
func reconcileRateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](100*time.Millisecond, time.Minute)
}

func (r *reconciler[O, E]) Reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, err error) {
	// The work queue owns retrying: a failed reconcile comes back with
	// per-object backoff, freeing its worker at once, and says why in its
	// condition meanwhile. The REST client's own retries would hold the
	// worker for up to three timeouts and repeat every call EdgeX fails.
	ctx = edgex.WithoutRetries(ctx)
	r.pruner.busy()
	obj := r.kind.newObject()
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.writes.forget(req.NamespacedName)
			r.opts.DeviceFields.forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !r.serves(obj) {
		return reconcile.Result{}, nil // another pool's, labelled as this one's
	}
	if r.restore != nil {
		if err := r.restore(obj); err != nil {
			return reconcile.Result{}, err
		}
	}
	if r.seen != nil {
		r.seen(v1alpha1.EdgeXName(obj))
	}
	r.pruner.enqueue(r.kind.name(), obj)
	if r.writes.behind(req.NamespacedName, obj.GetResourceVersion()) {
		return reconcile.Result{RequeueAfter: cacheCatchUp}, nil
	}
	before := obj.DeepCopyObject().(O)
	defer func() {
		written := r.patchStatus(ctx, before, obj)
		if apierrors.IsConflict(written) {
			// Another writer (telemetry, a person) came first. The next
			// reconcile recomputes from the newer copy, which the watch
			// is about to deliver; losing such a race is not an error, so
			// it neither logs one nor backs the object off.
			written = nil
			if res.RequeueAfter == 0 || res.RequeueAfter > cacheCatchUp {
				res.RequeueAfter = cacheCatchUp
			}
		}
		err = errors.Join(err, written)
		// Writes update obj from the API server's answer.
		if rv := obj.GetResourceVersion(); rv != before.GetResourceVersion() {
			r.writes.record(req.NamespacedName, rv)
		}
	}()
	if !obj.GetDeletionTimestamp().IsZero() {
		return r.reconcileDelete(ctx, obj)
	}
	return r.reconcileNormal(ctx, obj)
}

func (r *reconciler[O, E]) reconcileNormal(ctx context.Context, obj O) (reconcile.Result, error) {
	name := v1alpha1.EdgeXName(obj)
	if !hasBridgeFinalizer(obj) && r.goneAtEdge(obj, name) {
		// The edge queue is deleting it, finalizer first (deleteMirror).
		// Putting the finalizer back here would turn that deletion into
		// the cloud-side kind, which deletes by name in EdgeX, where a new
		// object of that name may exist by now.
		return reconcile.Result{}, nil
	}
	if err := r.ensureMetadata(ctx, obj, name); err != nil {
		return reconcile.Result{}, err
	}
	if owner, found, err := r.owner(ctx, name); err != nil {
		return reconcile.Result{}, err
	} else if found && owner.GetUID() != obj.GetUID() {
		r.setSynced(obj, false, v1alpha1.ReasonConflict, fmt.Sprintf(
			"EdgeX %s %q is already represented by %s/%s; this object is ignored until that one is deleted or renamed",
			r.kind.name(), name, owner.GetNamespace(), owner.GetName()))
		return reconcile.Result{}, nil
	}
	if !r.view.Complete() {
		// Until a full list succeeded, absence from the view proves nothing;
		// the first resync enqueues every object.
		reason, msg := v1alpha1.ReasonCreating, "waiting for the first complete list of EdgeX"
		if down, lastErr := r.health.Down(); down {
			reason, msg = v1alpha1.ReasonEdgeXUnreachable, lastErr.Error()
		} else if err := r.view.ListError(); err != nil {
			reason, msg = reasonFor(err), "EdgeX refuses to list: "+err.Error()
		}
		r.setSynced(obj, false, reason, msg)
		return reconcile.Result{}, nil
	}
	edge, exists := r.view.Get(name)
	if r.kind.managed(obj) {
		return r.converge(ctx, obj, name, edge, exists)
	}
	if exists {
		return r.mirror(ctx, obj, edge)
	}
	// EdgeX lacks it. What was born in the cloud, and what such an object
	// depends on, is (re-)created from its spec; only an import nothing
	// needs may go, and that takes evidence, which the edge queue weighs
	// (and the guard may hold until a person confirms).
	if kept, _, err := r.keptAtEdge(ctx, obj); err != nil {
		return reconcile.Result{}, err
	} else if kept {
		return r.converge(ctx, obj, name, edge, false)
	}
	if c := syncedOf(r.kind, obj); c == nil || c.Reason != v1alpha1.ReasonDeletionHeld {
		r.setSynced(obj, false, v1alpha1.ReasonDeleting, "EdgeX no longer has this object")
	}
	r.edgeGone(name)
	return reconcile.Result{}, nil
}

// converge makes EdgeX hold what the object says.
func (r *reconciler[O, E]) converge(ctx context.Context, obj O, name string, edge E, exists bool) (reconcile.Result, error) {
	want, err := r.kind.toEdge(obj)
	if err == nil {
		err = edgex.CheckName(r.kind.name(), name)
	}
	if err != nil {
		r.setSynced(obj, false, v1alpha1.ReasonValidationFailed, err.Error())
		r.warn(obj, v1alpha1.ReasonValidationFailed, "Convert", err.Error())
		return reconcile.Result{}, nil // only a spec change can fix it
	}
	if down, lastErr := r.health.Down(); down {
		r.setSynced(obj, false, v1alpha1.ReasonEdgeXUnreachable, lastErr.Error())
		return reconcile.Result{RequeueAfter: retryEdgeXDown}, nil
	}
	if !exists {
		id, err := r.kind.add(ctx, want)
		r.health.observe(ctx, err)
		switch {
		case err == nil:
			edge = r.kind.withEdgeID(want, id)
			r.view.Put(edge, time.Now())
			if old := r.kind.knownEdgeID(obj); old != "" {
				r.normal(obj, "Recreated", "Create", fmt.Sprintf("re-created %s %q in EdgeX, which had lost it (id %s, now %s)", r.kind.name(), name, old, id))
			} else {
				r.normal(obj, "Created", "Create", fmt.Sprintf("created %s %q in EdgeX", r.kind.name(), name))
			}
			return r.synced(ctx, obj, edge)
		case !edgex.IsConflict(err):
			return r.edgeFailure(obj, "Create", err)
		}
		// EdgeX has it although the view did not know (a missed event):
		// learn what it holds, then update it like any other.
		if edge, err = r.kind.get(ctx, name); err != nil {
			r.health.observe(ctx, err)
			return r.edgeFailure(obj, "Create", err)
		}
		r.view.Put(edge, time.Now())
	}
	r.kind.yieldToEdge(obj, &want, edge)
	now, changed, err := r.kind.apply(ctx, want, edge)
	if changed {
		r.health.observe(ctx, err)
	}
	if err != nil {
		return r.edgeFailure(obj, "Update", err)
	}
	if changed {
		r.view.Put(now, time.Now())
		edge = now
	}
	return r.synced(ctx, obj, edge)
}

// mirror makes an imported object say what EdgeX holds.
func (r *reconciler[O, E]) mirror(ctx context.Context, obj O, edge E) (reconcile.Result, error) {
	original := obj.DeepCopyObject().(O)
	if r.kind.mirror(obj, edge) {
		patch := client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})
		if err := r.keepingStatus(obj, func() error { return r.client.Patch(ctx, obj, patch) }); err != nil {
			return reconcile.Result{}, fmt.Errorf("mirror EdgeX's %s %q into its spec: %w", r.kind.name(), v1alpha1.EdgeXName(obj), err)
		}
	}
	return r.synced(ctx, obj, edge)
}

func (r *reconciler[O, E]) synced(ctx context.Context, obj O, edge E) (reconcile.Result, error) {
	r.kind.recordEdge(obj, edge)
	r.setSynced(obj, true, v1alpha1.ReasonInSync, "")
	if r.afterSync != nil {
		return r.afterSync(ctx, obj, edge)
	}
	return reconcile.Result{}, nil
}

func (r *reconciler[O, E]) reconcileDelete(ctx context.Context, obj O) (reconcile.Result, error) {
	if !hasBridgeFinalizer(obj) {
		return reconcile.Result{}, nil
	}
	name := v1alpha1.EdgeXName(obj)
	owner, found, err := r.owner(ctx, name)
	if err != nil {
		return reconcile.Result{}, err
	}
	// Only the object that represents the EdgeX object may delete it, and
	// only if EdgeX may hold it: an object the bridge never created (EdgeX
	// refused it, or its name cannot be addressed) has nothing to delete.
	if (!found || owner.GetUID() == obj.GetUID()) && !r.neverCreated(obj, name) {
		if down, lastErr := r.health.Down(); down {
			r.setSynced(obj, false, v1alpha1.ReasonEdgeXUnreachable, lastErr.Error())
			return reconcile.Result{RequeueAfter: retryEdgeXDown}, nil
		}
		err := r.kind.remove(ctx, name)
		r.health.observe(ctx, err)
		switch {
		case err == nil, edgex.IsNotFound(err):
			r.view.Remove(name, time.Now())
			r.normal(obj, "Deleted", "Delete", fmt.Sprintf("deleted %s %q from EdgeX", r.kind.name(), name))
		case edgex.IsConflict(err) && r.kind.inUseReason() != "":
			msg := fmt.Sprintf("EdgeX refuses to delete %s %q while devices use it; retrying: %v", r.kind.name(), name, err)
			if c := syncedOf(r.kind, obj); c == nil || c.Reason != r.kind.inUseReason() {
				r.warn(obj, r.kind.inUseReason(), "Delete", msg)
			}
			r.setSynced(obj, false, r.kind.inUseReason(), msg)
			// Waiting for devices to go is not a failure: the condition and
			// the Event say so once, where an error would log one at every
			// backoff step. A device's deletion looks again at once
			// (Bridge.New); the requeue covers users the bridge does not
			// see, such as devices of another pool.
			return reconcile.Result{RequeueAfter: retryInUse}, nil
		default:
			return r.edgeFailure(obj, "Delete", err)
		}
	}
	if r.onDelete != nil {
		r.onDelete(obj)
	}
	return reconcile.Result{}, r.keepingStatus(obj, func() error { return r.removeFinalizers(ctx, obj) })
}

// neverCreated reports whether EdgeX cannot hold the object: its name
// cannot be addressed (so the bridge refused to create it), or it has no
// EdgeX id and a complete list, kept current since, lacks it.
func (r *reconciler[O, E]) neverCreated(obj O, name string) bool {
	if edgex.CheckName(r.kind.name(), name) != nil {
		return true
	}
	if r.kind.knownEdgeID(obj) != "" || !r.view.Complete() {
		return false
	}
	return !r.view.Has(name)
}

// edgeFailure records a failed EdgeX call in the Synced condition and an
// Event, and returns the error so that the object is retried with backoff.
func (r *reconciler[O, E]) edgeFailure(obj O, action string, err error) (reconcile.Result, error) {
	reason := reasonFor(err)
	// One Event per new reason: retries with backoff would otherwise repeat
	// the same Event for as long as EdgeX keeps failing.
	if c := syncedOf(r.kind, obj); c == nil || c.Reason != reason {
		r.warn(obj, reason, action, err.Error())
	}
	r.setSynced(obj, false, reason, err.Error())
	r.metrics.edgexFailures.WithLabelValues(r.metrics.pool, r.kind.name(), reason).Inc()
	return reconcile.Result{}, err
}

// reasonFor names an EdgeX failure for a condition.
func reasonFor(err error) string {
	switch edgex.KindOf(err) {
	case edgex.KindUnavailable:
		if unreachable(err) {
			return v1alpha1.ReasonEdgeXUnreachable
		}
		return v1alpha1.ReasonServiceUnavailable
	case edgex.KindUnauthorized:
		return v1alpha1.ReasonUnauthorized
	case edgex.KindInvalid:
		return v1alpha1.ReasonValidationFailed
	case edgex.KindNotFound:
		return v1alpha1.ReasonDependencyMissing
	case edgex.KindConflict:
		return v1alpha1.ReasonConflict
	case edgex.KindLocked:
		return v1alpha1.ReasonDeviceLocked
	default:
		return v1alpha1.ReasonEdgeXError
	}
}
