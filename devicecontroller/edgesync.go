package devicecontroller

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
)

// edgeSync turns what EdgeX says, by system event or full list, into
// imports, reconciles and, with positive evidence only, deletions of
// imported objects. There is one per kind, keyed by EdgeX name.
type edgeSync[O client.Object, E any] struct {
	*shared
	kind  *kind[O, E]
	view  *edgeView[E]
	rec   *reconciler[O, E]
	guard *deletionGuard
	queue workqueue.TypedRateLimitingInterface[string]
	// reconcileCh feeds the kind's controller.
	reconcileCh chan event.GenericEvent
	// done is closed when the workers stop, so that nothing waits forever
	// on reconcileCh after shutdown.
	done chan struct{}
}

func newEdgeSync[O client.Object, E any](s *shared, k *kind[O, E], view *edgeView[E], rec *reconciler[O, E], guard *deletionGuard) *edgeSync[O, E] {
	return &edgeSync[O, E]{
		shared: s, kind: k, view: view, rec: rec, guard: guard,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "edge-" + k.Name}),
		reconcileCh: make(chan event.GenericEvent, 1024),
		done:        make(chan struct{}),
	}
}

// onEvent records a system event in the view and queues the name.
func (s *edgeSync[O, E]) onEvent(action string, obj E) {
	name := s.kind.edgeName(obj)
	if s.kind.edgeID(obj) == "" {
		// core-metadata's add event for a device service carries no id;
		// keep the one the bridge already knows.
		if known, ok := s.view.Get(name); ok {
			obj = s.kind.setID(obj, s.kind.edgeID(known))
		}
	}
	if action == "delete" {
		s.view.Remove(name, time.Now())
	} else {
		s.view.Put(obj, time.Now())
	}
	s.metrics.edgeEvents.WithLabelValues(s.metrics.pool, s.kind.Name, action).Inc()
	s.queue.Add(name)
}

// Start runs the workers until ctx ends; it is a manager runnable (leader
// only).
func (s *edgeSync[O, E]) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	close(s.done)
	s.queue.ShutDown()
	wg.Wait()
	return nil
}

func (s *edgeSync[O, E]) processNext(ctx context.Context) bool {
	name, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(name)
	if err := s.sync(ctx, name); err != nil {
		s.log.Error(err, "edge change not applied; retrying", "kind", s.kind.Name, "edgexName", name)
		s.queue.AddRateLimited(name)
		return true
	}
	s.queue.Forget(name)
	return true
}

// sync decides what one EdgeX name means for the cloud.
func (s *edgeSync[O, E]) sync(ctx context.Context, name string) error {
	claims, err := s.rec.claimants(ctx, name)
	if err != nil {
		return err
	}
	edge, exists := s.view.Get(name)
	if len(claims) == 0 {
		if !exists {
			return nil
		}
		return s.importObject(ctx, name, edge)
	}
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
		verdict, why := s.guard.verdict(s.kind.Name, name)
		switch {
		case verdict == deletionHeld && !confirmed(owner):
			return s.markHeld(ctx, owner, why)
		case verdict == deletionHeld, verdict == deletionAllowed:
			if err := s.deleteMirror(ctx, owner.DeepCopyObject().(O), "a complete EdgeX list that no longer has it"); err != nil {
				return err
			}
			// The verdict was about this object: a later one of the same
			// name is weighed anew.
			s.guard.forget(s.kind.Name, name)
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
func (s *edgeSync[O, E]) requeue(ctx context.Context, obj client.Object) error {
	select {
	case s.reconcileCh <- event.GenericEvent{Object: obj}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return context.Canceled
	}
}

// requeueKey asks the kind's controller to reconcile the named object.
func (s *edgeSync[O, E]) requeueKey(key types.NamespacedName) {
	obj := s.kind.newObject()
	obj.SetNamespace(key.Namespace)
	obj.SetName(key.Name)
	_ = s.requeue(context.Background(), obj)
}

// importObject creates the object for an EdgeX object the cloud lacks. Its
// status is written by the reconcile the creation triggers.
func (s *edgeSync[O, E]) importObject(ctx context.Context, name string, edge E) error {
	ns := s.opts.Namespaces[0]
	obj := s.kind.imported(edge)
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
			s.metrics.imports.WithLabelValues(s.metrics.pool, s.kind.Name).Inc()
			s.normal(obj, "Imported", "Import", fmt.Sprintf("imported %s %q from EdgeX", s.kind.Name, name))
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("import EdgeX %s %q: %w", s.kind.Name, name, err)
		}
		existing := s.kind.newObject()
		if err := s.client.Get(ctx, client.ObjectKeyFromObject(obj), existing); err == nil && v1alpha1.EdgeXName(existing) == name {
			return nil // imported already; the cache had not caught up
		}
		obj.SetResourceVersion("")
	}
	return fmt.Errorf("import EdgeX %s %q: no free Kubernetes name after 5 attempts", s.kind.Name, name)
}

// deleteMirror deletes an imported object whose EdgeX original is gone.
// The finalizer goes first, so that its deletion cannot reach EdgeX (where
// a new object of the same name may already exist).
func (s *edgeSync[O, E]) deleteMirror(ctx context.Context, obj O, evidence string) error {
	if err := s.removeFinalizers(ctx, obj); err != nil {
		return err
	}
	uid := obj.GetUID()
	if err := s.client.Delete(ctx, obj, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s after %s: %w", s.kind.Name, objectKey(obj), evidence, err)
	}
	s.metrics.edgeDeletions.WithLabelValues(s.metrics.pool, s.kind.Name).Inc()
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
func (s *edgeSync[O, E]) markHeld(ctx context.Context, obj O, msg string) error {
	current := s.kind.newObject()
	if err := s.client.Get(ctx, client.ObjectKeyFromObject(obj), current); err != nil {
		return client.IgnoreNotFound(err)
	}
	before := current.DeepCopyObject().(O)
	s.rec.setSynced(current, false, v1alpha1.ReasonDeletionHeld, msg)
	if c := v1alpha1.FindCondition(*s.kind.status(before).Conditions, v1alpha1.ConditionSynced); c == nil || c.Reason != v1alpha1.ReasonDeletionHeld {
		s.warn(current, v1alpha1.ReasonDeletionHeld, "Delete", msg)
	}
	return patchStatusOf(ctx, s.client, current, s.kind.statusOf(before), s.kind.statusOf(current))
}

func setNodePool(obj client.Object, pool string) {
	switch o := obj.(type) {
	case *v1alpha1.Device:
		o.Spec.NodePool = pool
	case *v1alpha1.DeviceService:
		o.Spec.NodePool = pool
	case *v1alpha1.DeviceProfile:
		o.Spec.NodePool = pool
	}
}

// deletionGuard remembers, per kind, what the last resync decided about the
// imported objects its complete list lacked: held until a person confirms
// (too many at once, or EdgeX looked wiped), or allowed to go. A name the
// guard has not weighed is not deleted on list evidence at all.
type deletionGuard struct {
	mu      sync.Mutex
	held    map[string]map[string]struct{}
	allowed map[string]map[string]struct{}
	why     map[string]string
}

type deletionVerdict int

const (
	deletionNotWeighed deletionVerdict = iota
	deletionHeld
	deletionAllowed
)

func newDeletionGuard() *deletionGuard {
	return &deletionGuard{held: map[string]map[string]struct{}{}, allowed: map[string]map[string]struct{}{}, why: map[string]string{}}
}

func nameSet(names []string) map[string]struct{} {
	set := make(map[string]struct{}, len(names))
	for _, n := range names {
		set[n] = struct{}{}
	}
	return set
}

// hold records that the kind's vanished names wait for a person, and why.
func (g *deletionGuard) hold(kind string, names []string, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held[kind], g.why[kind] = nameSet(names), why
	delete(g.allowed, kind)
}

// allow records that the kind's vanished names may be deleted.
func (g *deletionGuard) allow(kind string, names []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.allowed[kind] = nameSet(names)
	delete(g.held, kind)
	delete(g.why, kind)
}

// forget drops the verdict about one name, once acted on.
func (g *deletionGuard) forget(kind, name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.held[kind], name)
	delete(g.allowed[kind], name)
}

func (g *deletionGuard) verdict(kind, name string) (deletionVerdict, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.held[kind][name]; ok {
		return deletionHeld, g.why[kind]
	}
	if _, ok := g.allowed[kind][name]; ok {
		return deletionAllowed, ""
	}
	return deletionNotWeighed, ""
}
