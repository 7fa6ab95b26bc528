package devicecontroller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
)

// edgeQueue turns what EdgeX says, by system event or full list, into
// imports, reconciles and, with positive evidence only, deletions of
// imported objects. There is one per kind, keyed by EdgeX name; it is a
// controller that controller-runtime runs (leader only), retries with
// backoff, recovers from panics and reports on, like the kinds' own.
type edgeQueue[O client.Object, E any] struct {
	*shared
	kind  kind[O, E]
	view  *edgeView[E]
	rec   *reconciler[O, E]
	guard *deletionGuard
	// names feeds the edge queue's controller.
	names *queueSource[string]
	// reconcileCh feeds the kind's controller.
	reconcileCh chan event.GenericEvent
	// created are the imports whose objects the cache may not show yet.
	created *pendingImports
}

func newEdgeQueue[O client.Object, E any](s *shared, k kind[O, E], guard *deletionGuard) *edgeQueue[O, E] {
	q := &edgeQueue[O, E]{
		shared: s, kind: k, view: newEdgeView(k.edgeName, k.edgeModified), guard: guard,
		names:       newQueueSource[string](),
		reconcileCh: make(chan event.GenericEvent, 1024),
		created:     newPendingImports(),
	}
	if c, ok := any(k).(viewCodec[E]); ok {
		q.view.codec = c
	}
	q.rec = &reconciler[O, E]{shared: s, kind: k, view: q.view, edgeGone: q.names.Add, seen: q.created.seen}
	return q
}

// setup registers the kind's controller and the edge queue's.
func (s *edgeQueue[O, E]) setup(mgr manager.Manager) error {
	if err := s.rec.setup(mgr, s.reconcileCh); err != nil {
		return err
	}
	k := s.kind
	err := builder.TypedControllerManagedBy[string](mgr).
		Named(fmt.Sprintf("edge-%s-%s", strings.ToLower(k.name()), s.opts.NodePool)).
		WatchesRawSource(s.names).
		WithOptions(controller.TypedOptions[string]{
			MaxConcurrentReconciles: s.opts.Workers,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, time.Minute),
			SkipNameValidation:      ptr.To(true),
		}).
		Complete(s)
	if err != nil {
		return fmt.Errorf("set up the edge queue of %s: %w", k.name(), err)
	}
	return nil
}

// onEvent records a system event in the view and queues the name.
func (s *edgeQueue[O, E]) onEvent(action string, obj E) {
	name := s.kind.edgeName(obj)
	if s.kind.edgeID(obj) == "" {
		// core-metadata's add event for a device service carries no id;
		// keep the one the bridge already knows.
		if known, ok := s.view.Get(name); ok {
			obj = s.kind.withEdgeID(obj, s.kind.edgeID(known))
		}
	}
	if action == "delete" {
		s.view.Remove(name, time.Now())
	} else {
		s.view.Put(obj, time.Now())
	}
	s.metrics.edgeEvents.WithLabelValues(s.metrics.pool, s.kind.name(), action).Inc()
	s.names.Add(name)
}

// Reconcile decides what one EdgeX name means for the cloud; an error
// retries it with backoff.
func (s *edgeQueue[O, E]) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	return reconcile.Result{}, s.sync(ctx, name)
}

// sync decides what one EdgeX name means for the cloud.
func (s *edgeQueue[O, E]) sync(ctx context.Context, name string) error {
	claims, err := s.rec.claimants(ctx, name)
	if err != nil {
		return err
	}
	edge, exists := s.view.Get(name)
	if len(claims) == 0 {
		if !exists {
			return nil
		}
		if made, err := s.madeAlready(ctx, name); made || err != nil {
			return err
		}
		return s.importObject(ctx, name, edge)
	}
	s.created.seen(name)
	// The cache's own copy: it is only read here, and copied before any
	// write (deleteMirror).
	owner := claims[0]
	if exists || !s.rec.mirrorsEdge(owner) {
		// The reconciler mirrors, converges or re-creates.
		return s.requeue(ctx, owner)
	}
	if kept, _, err := s.rec.keptAtEdge(ctx, owner); err != nil {
		return err
	} else if kept {
		return s.requeue(ctx, owner) // re-created for what needs it
	}
	switch {
	case s.view.DeletedByEvent(name):
		return s.deleteMirror(ctx, owner.DeepCopyObject().(O), "a delete system event from EdgeX")
	case s.view.Deleted(name):
		verdict, why := s.guard.verdict(s.kind.name(), name)
		switch {
		case verdict == deletionHeld && !confirmed(owner):
			return s.markHeld(ctx, owner, why)
		case verdict == deletionHeld, verdict == deletionAllowed:
			if err := s.deleteMirror(ctx, owner.DeepCopyObject().(O), "a complete EdgeX list that no longer has it"); err != nil {
				return err
			}
			// The verdict was about this object: a later one of the same
			// name is weighed anew.
			s.guard.forget(s.kind.name(), name)
			return nil
		}
		// Not weighed yet: the resync that found it gone weighs it with
		// the rest of what vanished, and queues it again.
	}
	return nil
}

func confirmed(obj client.Object) bool {
	_, ok := obj.GetAnnotations()[v1alpha1.ConfirmEdgeDeletionAnnotation]
	return ok
}

// requeue asks the kind's controller to reconcile obj.
func (s *edgeQueue[O, E]) requeue(ctx context.Context, obj client.Object) error {
	select {
	case s.reconcileCh <- event.GenericEvent{Object: obj}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.names.Stopped():
		// The bridge stopped leading: nothing reads reconcileCh any more.
		return context.Canceled
	}
}

// requeueKey asks the kind's controller to reconcile the named object.
func (s *edgeQueue[O, E]) requeueKey(key types.NamespacedName) {
	obj := s.kind.newObject()
	obj.SetNamespace(key.Namespace)
	obj.SetName(key.Name)
	_ = s.requeue(context.Background(), obj)
}

// madeAlready reports whether the bridge created the named import and it
// still exists, though the cache has not shown it yet: the name came back
// (a second system event, a resync) within moments of the import. Asking
// the API server costs a read; creating again would cost a write refused
// as a duplicate, and up to five of them (importObject cannot tell its own
// object from another one's by a cache that lacks it).
func (s *edgeQueue[O, E]) madeAlready(ctx context.Context, name string) (bool, error) {
	key, ok := s.created.get(name)
	if !ok {
		return false, nil
	}
	existing := s.kind.newObject()
	err := s.apiReader.Get(ctx, key, existing)
	switch {
	case err == nil && v1alpha1.EdgeXName(existing) == name && existing.GetDeletionTimestamp().IsZero():
		return true, nil // its create event brings it to the reconciler
	case err == nil, apierrors.IsNotFound(err):
		s.created.seen(name) // gone, or no longer this name's: import anew
		return false, nil
	default:
		return false, fmt.Errorf("read the imported %s %s: %w", s.kind.name(), key, err)
	}
}

// importObject creates the object for an EdgeX object the cloud lacks. Its
// status is written by the reconcile the creation triggers.
func (s *edgeQueue[O, E]) importObject(ctx context.Context, name string, edge E) error {
	ns := s.opts.Namespaces[0]
	obj := s.kind.imported(edge, s.opts.NodePool)
	obj.SetNamespace(ns)
	markPool(obj, s.opts.NodePool)
	recordEdgeXName(obj, name)
	ann := obj.GetAnnotations()
	ann[v1alpha1.OriginAnnotation] = v1alpha1.OriginEdge
	obj.SetAnnotations(ann)
	obj.SetFinalizers([]string{v1alpha1.Finalizer})

	taken := func(candidate string) bool {
		existing := s.kind.newObject()
		err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: candidate}, existing)
		return err == nil && v1alpha1.EdgeXName(existing) != name
	}
	for attempt := 0; attempt < 5; attempt++ {
		obj.SetName(convert.KubeNameAvoiding(s.opts.NodePool, name, taken))
		err := s.client.Create(ctx, obj)
		if err == nil {
			// No Event: the object is its own record (origin edge, its
			// EdgeX name, its creation time), and an Event per object
			// was a third API write per device in a large import.
			s.created.add(name, client.ObjectKeyFromObject(obj))
			s.metrics.imports.WithLabelValues(s.metrics.pool, s.kind.name()).Inc()
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("import EdgeX %s %q: %w", s.kind.name(), name, err)
		}
		existing := s.kind.newObject()
		if err := s.client.Get(ctx, client.ObjectKeyFromObject(obj), existing); err == nil && v1alpha1.EdgeXName(existing) == name {
			return nil // imported already; the cache had not caught up
		}
		obj.SetResourceVersion("")
	}
	return fmt.Errorf("import EdgeX %s %q: no free Kubernetes name after 5 attempts", s.kind.name(), name)
}

// deleteMirror deletes an imported object whose EdgeX original is gone.
// The finalizer goes first, so that its deletion cannot reach EdgeX (where
// a new object of the same name may already exist).
func (s *edgeQueue[O, E]) deleteMirror(ctx context.Context, obj O, evidence string) error {
	if err := s.removeFinalizers(ctx, obj); err != nil {
		return err
	}
	uid := obj.GetUID()
	if err := s.client.Delete(ctx, obj, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s after %s: %w", s.kind.name(), objectKey(obj), evidence, err)
	}
	s.metrics.edgeDeletions.WithLabelValues(s.metrics.pool, s.kind.name()).Inc()
	// Without its finalizer the object never passes through reconcileDelete,
	// so what the bridge keeps for it (reading series, command state) is
	// dropped here.
	if s.rec.onDelete != nil {
		s.rec.onDelete(obj)
	}
	s.normal(obj, "DeletedAtEdge", "Delete", fmt.Sprintf("deleted because of %s", evidence))
	return nil
}

// markHeld records on the object that its deletion waits for a person.
func (s *edgeQueue[O, E]) markHeld(ctx context.Context, obj O, msg string) error {
	current := s.kind.newObject()
	if err := s.client.Get(ctx, client.ObjectKeyFromObject(obj), current); err != nil {
		return client.IgnoreNotFound(err)
	}
	before := current.DeepCopyObject().(O)
	s.rec.setSynced(current, false, v1alpha1.ReasonDeletionHeld, msg)
	if c := syncedOf(s.kind, before); c == nil || c.Reason != v1alpha1.ReasonDeletionHeld {
		s.warn(current, v1alpha1.ReasonDeletionHeld, "Delete", msg)
	}
	return patchStatusOf(ctx, s.client, current, s.kind.statusOf(before), s.kind.statusOf(current))
}

// pendingImports are the objects an edge queue created that the cache may
// not have shown yet, by EdgeX name. An entry goes as soon as the kind's
// reconciler or the edge queue sees the object in the cache, so the map
// holds only the imports of the last moments.
type pendingImports struct {
	mu   sync.Mutex
	keys map[string]types.NamespacedName
}

func newPendingImports() *pendingImports {
	return &pendingImports{keys: map[string]types.NamespacedName{}}
}

func (p *pendingImports) add(name string, key types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[name] = key
}

func (p *pendingImports) get(name string) (types.NamespacedName, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key, ok := p.keys[name]
	return key, ok
}

// seen drops the entry of an import the cache shows.
func (p *pendingImports) seen(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.keys, name)
}
