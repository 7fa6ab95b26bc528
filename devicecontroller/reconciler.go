package devicecontroller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"
	"unicode/utf8"

	jsonpatch "github.com/evanphx/json-patch/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex"
)

// indexEdgeXName indexes objects by their EdgeX name, so that an EdgeX
// event or list entry finds its object without listing the pool.
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
	kind *kind[O, E]
	view *edgeView[E]
	// afterSync, when set, runs once the object and EdgeX agree; devices
	// use it to drive commands.
	afterSync func(ctx context.Context, obj O, edge E) (reconcile.Result, error)
	// onDelete, when set, runs once the object's EdgeX counterpart is gone
	// and its finalizer is about to be removed.
	onDelete func(obj O)
	// edgeGone hands an EdgeX name to the edge queue, which decides whether
	// its object may be deleted.
	edgeGone func(name string)
	// neededBy, when set, names an object in the pool that EdgeX must hold
	// and that uses the named EdgeX object (a device that uses a profile or
	// a service), or "" when none does.
	neededBy func(ctx context.Context, name string) (string, error)
	// writes keeps a reconcile from acting on a cached copy older than the
	// reconciler's own last write.
	writes ownWrites
}

func (r *reconciler[O, E]) Reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, err error) {
	// The work queue owns retrying: a failed reconcile comes back with
	// per-object backoff, freeing its worker at once, and says why in its
	// condition meanwhile. The REST client's own retries would hold the
	// worker for up to three timeouts and repeat every call EdgeX fails.
	ctx = edgex.WithoutRetries(ctx)
	obj := r.kind.newObject()
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.writes.forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if r.writes.behind(req.NamespacedName, obj.GetResourceVersion()) {
		return reconcile.Result{RequeueAfter: cacheCatchUp}, nil
	}
	before := obj.DeepCopyObject().(O)
	defer func() {
		err = errors.Join(err, r.patchStatus(ctx, before, obj))
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
			r.kind.Name, name, owner.GetNamespace(), owner.GetName()))
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
	if c := v1alpha1.FindCondition(*r.kind.status(obj).Conditions, v1alpha1.ConditionSynced); c == nil || c.Reason != v1alpha1.ReasonDeletionHeld {
		r.setSynced(obj, false, v1alpha1.ReasonDeleting, "EdgeX no longer has this object")
	}
	r.edgeGone(name)
	return reconcile.Result{}, nil
}

// goneAtEdge reports whether obj is an imported object whose EdgeX
// original a complete view no longer has.
func (r *reconciler[O, E]) goneAtEdge(obj O, name string) bool {
	if !r.mirrorsEdge(obj) || !r.view.Complete() {
		return false
	}
	_, exists := r.view.Get(name)
	return !exists
}

// mirrorsEdge reports whether obj is an import that still mirrors its
// EdgeX original: the bridge imported it (origin edge) and nobody took it
// over (managed). Only such an object may ever be deleted because the edge
// lost its original. Everything else was born in the cloud (applied there,
// managed or not, or imported by yurt-iot-dock, which left no mark that
// tells its imports from a person's manifests) and goes only when a person
// deletes it.
func (r *reconciler[O, E]) mirrorsEdge(obj O) bool {
	return !r.kind.managed(obj) && obj.GetAnnotations()[v1alpha1.OriginAnnotation] == v1alpha1.OriginEdge
}

// keptAtEdge reports whether EdgeX must hold obj even after the edge lost
// it, and why: it was born in the cloud, or a managed or cloud-born object
// of the pool uses it (an imported profile or service of such a device),
// which could not be re-created without it.
func (r *reconciler[O, E]) keptAtEdge(ctx context.Context, obj O) (bool, string, error) {
	if !r.mirrorsEdge(obj) {
		return true, "it was applied in the cloud", nil
	}
	if r.neededBy == nil {
		return false, "", nil
	}
	user, err := r.neededBy(ctx, v1alpha1.EdgeXName(obj))
	if err != nil || user == "" {
		return false, "", err
	}
	return true, "it is used by " + user, nil
}

// usersOf returns a lookup of the objects of this kind, by index, that
// EdgeX must hold (managed, or born in the cloud) and that are not being
// deleted: the users that keep an imported dependency alive.
func (r *reconciler[O, E]) usersOf(index string) func(ctx context.Context, name string) (string, error) {
	return func(ctx context.Context, name string) (string, error) {
		list := r.kind.newList()
		if err := r.client.List(ctx, list, client.MatchingFields{index: name}, client.UnsafeDisableDeepCopy); err != nil {
			return "", fmt.Errorf("find %ss that use %q: %w", r.kind.Name, name, err)
		}
		for _, o := range r.kind.items(list) {
			if r.watches(o.GetNamespace()) && o.GetDeletionTimestamp().IsZero() && !r.mirrorsEdge(o) {
				return fmt.Sprintf("%s %s", r.kind.Name, objectKey(o)), nil
			}
		}
		return "", nil
	}
}

// converge makes EdgeX hold what the object says.
func (r *reconciler[O, E]) converge(ctx context.Context, obj O, name string, edge E, exists bool) (reconcile.Result, error) {
	want, err := r.kind.toEdge(obj)
	if err == nil {
		err = edgex.CheckName(r.kind.Name, name)
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
			edge = r.kind.setID(want, id)
			r.view.Put(edge, time.Now())
			if old := *r.kind.status(obj).EdgeID; old != "" {
				r.normal(obj, "Recreated", "Create", fmt.Sprintf("re-created %s %q in EdgeX, which had lost it (id %s, now %s)", r.kind.Name, name, old, id))
			} else {
				r.normal(obj, "Created", "Create", fmt.Sprintf("created %s %q in EdgeX", r.kind.Name, name))
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
	if r.kind.yieldToEdge != nil {
		r.kind.yieldToEdge(obj, &want, edge)
	}
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
			return reconcile.Result{}, fmt.Errorf("mirror EdgeX's %s %q into its spec: %w", r.kind.Name, v1alpha1.EdgeXName(obj), err)
		}
	}
	return r.synced(ctx, obj, edge)
}

func (r *reconciler[O, E]) synced(ctx context.Context, obj O, edge E) (reconcile.Result, error) {
	st := r.kind.status(obj)
	*st.EdgeID = r.kind.edgeID(edge)
	r.kind.edgeStatus(obj, edge)
	*st.ObservedGeneration = obj.GetGeneration()
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
			r.normal(obj, "Deleted", "Delete", fmt.Sprintf("deleted %s %q from EdgeX", r.kind.Name, name))
		case edgex.IsConflict(err) && r.kind.InUseReason != "":
			msg := fmt.Sprintf("EdgeX refuses to delete %s %q while devices use it; retrying: %v", r.kind.Name, name, err)
			if c := v1alpha1.FindCondition(*r.kind.status(obj).Conditions, v1alpha1.ConditionSynced); c == nil || c.Reason != r.kind.InUseReason {
				r.warn(obj, r.kind.InUseReason, "Delete", msg)
			}
			r.setSynced(obj, false, r.kind.InUseReason, msg)
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

// keepingStatus runs a write of obj's metadata or spec and then puts back
// the status obj had. The API server answers a write with the whole object,
// and the client decodes it into obj: the status would then hold whatever
// telemetry wrote meanwhile, and the deferred status patch, a diff against
// the status read at the start, would send those values again as if they
// were this reconcile's, overwriting anything newer written after. Kept as
// it was, the diff holds only what this reconcile changed.
func (r *reconciler[O, E]) keepingStatus(obj O, write func() error) error {
	held := obj.DeepCopyObject().(O)
	err := write()
	reflect.ValueOf(r.kind.statusOf(obj)).Elem().Set(reflect.ValueOf(r.kind.statusOf(held)).Elem())
	return err
}

// neverCreated reports whether EdgeX cannot hold the object: its name
// cannot be addressed (so the bridge refused to create it), or it has no
// EdgeX id and a complete list, kept current since, lacks it.
func (r *reconciler[O, E]) neverCreated(obj O, name string) bool {
	if edgex.CheckName(r.kind.Name, name) != nil {
		return true
	}
	if *r.kind.status(obj).EdgeID != "" || !r.view.Complete() {
		return false
	}
	_, exists := r.view.Get(name)
	return !exists
}

// edgeFailure records a failed EdgeX call in the Synced condition and an
// Event, and returns the error so that the object is retried with backoff.
func (r *reconciler[O, E]) edgeFailure(obj O, action string, err error) (reconcile.Result, error) {
	reason := reasonFor(err)
	// One Event per new reason: retries with backoff would otherwise repeat
	// the same Event for as long as EdgeX keeps failing.
	if c := v1alpha1.FindCondition(*r.kind.status(obj).Conditions, v1alpha1.ConditionSynced); c == nil || c.Reason != reason {
		r.warn(obj, reason, action, err.Error())
	}
	r.setSynced(obj, false, reason, err.Error())
	r.metrics.edgexFailures.WithLabelValues(r.metrics.pool, r.kind.Name, reason).Inc()
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

// ensureMetadata adds the bridge's finalizer and records the EdgeX name on
// the object, in one patch that leaves other controllers' finalizers alone
// (it carries the resourceVersion, so a concurrent change makes it retry).
func (r *reconciler[O, E]) ensureMetadata(ctx context.Context, obj O, name string) error {
	needFinalizer := !controllerutil.ContainsFinalizer(obj, v1alpha1.Finalizer)
	needAnnotation := obj.GetAnnotations()[v1alpha1.EdgeXNameAnnotation] != name
	needLabel := fitsLabel(name) && obj.GetLabels()[v1alpha1.LegacyEdgeXNameLabel] == ""
	if !needFinalizer && !needAnnotation && !needLabel {
		return nil
	}
	patch := client.MergeFromWithOptions(obj.DeepCopyObject().(O), client.MergeFromWithOptimisticLock{})
	controllerutil.AddFinalizer(obj, v1alpha1.Finalizer)
	recordEdgeXName(obj, name)
	if err := r.keepingStatus(obj, func() error { return r.client.Patch(ctx, obj, patch) }); err != nil {
		return fmt.Errorf("add finalizer and EdgeX name to %s %s/%s: %w", r.kind.Name, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// recordEdgeXName keeps the EdgeX name on the object: always in the
// annotation, and in yurt-iot-dock's label when it fits a label value.
func recordEdgeXName(obj client.Object, name string) {
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[v1alpha1.EdgeXNameAnnotation] = name
	obj.SetAnnotations(ann)
	if fitsLabel(name) {
		labels := obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		if labels[v1alpha1.LegacyEdgeXNameLabel] == "" {
			labels[v1alpha1.LegacyEdgeXNameLabel] = name
		}
		obj.SetLabels(labels)
	}
}

func fitsLabel(value string) bool {
	return len(validation.IsValidLabelValue(value)) == 0
}

func hasBridgeFinalizer(obj client.Object) bool {
	if controllerutil.ContainsFinalizer(obj, v1alpha1.Finalizer) {
		return true
	}
	for _, f := range v1alpha1.LegacyFinalizers {
		if controllerutil.ContainsFinalizer(obj, f) {
			return true
		}
	}
	return false
}

// removeFinalizers removes the bridge's finalizer and the ones it adopted
// from yurt-iot-dock, and nothing else.
func (r *shared) removeFinalizers(ctx context.Context, obj client.Object) error {
	if !hasBridgeFinalizer(obj) {
		return nil
	}
	patch := client.MergeFromWithOptions(obj.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(obj, v1alpha1.Finalizer)
	for _, f := range v1alpha1.LegacyFinalizers {
		controllerutil.RemoveFinalizer(obj, f)
	}
	if err := r.client.Patch(ctx, obj, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove finalizer from %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// owner returns the object that represents the named EdgeX object in this
// pool: the oldest claimant when several objects claim one EdgeX name.
func (r *reconciler[O, E]) owner(ctx context.Context, name string) (O, bool, error) {
	claims, err := r.claimants(ctx, name)
	if err != nil || len(claims) == 0 {
		var zero O
		return zero, false, err
	}
	return claims[0], true, nil
}

// claimants lists the objects in the pool that claim the named EdgeX
// object, the one that represents it first: the incumbent (the object whose
// status holds the EdgeX object's id), else the oldest.
func (r *reconciler[O, E]) claimants(ctx context.Context, name string) ([]O, error) {
	list := r.kind.newList()
	if err := r.client.List(ctx, list, client.MatchingFields{indexEdgeXName: name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("find %s objects for EdgeX name %q: %w", r.kind.Name, name, err)
	}
	var claims []O
	for _, o := range r.kind.items(list) {
		if r.watches(o.GetNamespace()) {
			claims = append(claims, o)
		}
	}
	if len(claims) < 2 {
		return claims, nil
	}
	edgeID := ""
	if edge, ok := r.view.Get(name); ok {
		edgeID = r.kind.edgeID(edge)
	}
	incumbent := func(o O) bool { return edgeID != "" && *r.kind.status(o).EdgeID == edgeID }
	sort.SliceStable(claims, func(i, j int) bool {
		a, b := claims[i], claims[j]
		if ia, ib := incumbent(a), incumbent(b); ia != ib {
			return ia
		}
		ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
		if !ta.Equal(&tb) {
			return ta.Before(&tb)
		}
		// Created in the same second: an object named like the EdgeX
		// object wins over one that claims it by annotation.
		if na, nb := a.GetName() == name, b.GetName() == name; na != nb {
			return na
		}
		return objectKey(a) < objectKey(b)
	})
	return claims, nil
}

// setSynced sets status.synced and the Synced condition.
func (r *reconciler[O, E]) setSynced(obj O, ok bool, reason, message string) {
	st := r.kind.status(obj)
	*st.Synced = ok
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	v1alpha1.SetCondition(st.Conditions, v1alpha1.Condition{
		Type: v1alpha1.ConditionSynced, Status: status, Reason: reason,
		Message: truncate(message, 4096), ObservedGeneration: obj.GetGeneration(),
	})
}

// patchStatus writes what changed in status, as a merge patch of the status
// alone (no write when nothing changed), on the condition that the object
// is still the version the changes were computed from: a reconcile works on
// a cached copy, and a diff against it may hold fields that others write
// (a property entry new to this copy carries the actualValue the copy had),
// which must not go over a newer telemetry write. On a conflict the
// reconcile is retried from a fresh copy.
func (r *reconciler[O, E]) patchStatus(ctx context.Context, before, after O) error {
	if after.GetDeletionTimestamp() != nil && !hasBridgeFinalizer(after) {
		return nil // gone, or about to be
	}
	if down, _, cause := r.cloud.Down(); down && !reflect.DeepEqual(r.kind.statusOf(before), r.kind.statusOf(after)) {
		// Held, not lost: the resync that follows the cloud's return
		// reconciles every object, and writes this again.
		return fmt.Errorf("status of %s/%s waits for the cloud: %w", after.GetNamespace(), after.GetName(), cause)
	}
	return patchStatusOf(ctx, r.client, after, r.kind.statusOf(before), r.kind.statusOf(after))
}

func patchStatusOf(ctx context.Context, c client.Client, obj client.Object, before, after any) error {
	old, err := json.Marshal(before)
	if err != nil {
		return err
	}
	cur, err := json.Marshal(after)
	if err != nil {
		return err
	}
	if bytes.Equal(old, cur) {
		return nil
	}
	diff, err := jsonpatch.CreateMergePatch(old, cur)
	if err != nil {
		return fmt.Errorf("compute status patch: %w", err)
	}
	rv, err := json.Marshal(obj.GetResourceVersion())
	if err != nil {
		return err
	}
	body := []byte(`{"metadata":{"resourceVersion":` + string(rv) + `},"status":` + string(diff) + `}`)
	if err := c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, body)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("write status of %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// truncate shortens s to at most n bytes plus "...", cutting before a
// UTF-8 character rather than through it: API server validation and
// Event consumers reject or mangle invalid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
