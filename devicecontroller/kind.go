package devicecontroller

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex"
)

// kind is how one of the three kinds maps onto EdgeX. The reconciler
// (reconciler.go), the edge queue (edgequeue.go) and the resync (resync.go)
// are written once against it; device.go, deviceservice.go and
// deviceprofile.go implement it, and hold everything that differs between
// the kinds. O is the Kubernetes object, E its EdgeX form.
type kind[O client.Object, E any] interface {
	// name is the Kubernetes kind, for logs, events and metrics.
	name() string
	// inUseReason is the condition reason when EdgeX refuses a delete
	// because other objects still use this one; "" when it never does.
	inUseReason() string
	newObject() O
	newList() client.ObjectList
	items(client.ObjectList) []O
	// managed says whether the object is the truth for EdgeX.
	managed(O) bool
	// watchStatus lets through the status-only updates the kind's
	// reconciler must see; nil when there are none.
	watchStatus() predicate.Predicate

	// The EdgeX form's identity.
	edgeName(E) string
	edgeID(E) string
	edgeModified(E) int64
	withEdgeID(E, string) E

	// toEdge renders the object as EdgeX should hold it.
	toEdge(O) (E, error)
	// yieldToEdge gives back to EdgeX, in want, what EdgeX owns at run
	// time, given what EdgeX has.
	yieldToEdge(obj O, want *E, have E)
	// mirror makes an imported object's spec equal EdgeX's and reports
	// whether it changed.
	mirror(O, E) bool
	// imported builds the object for an EdgeX object the cloud lacks, in
	// the pool, spec only; the caller names it.
	imported(e E, pool string) O

	// add creates the object in EdgeX and returns its id.
	add(ctx context.Context, want E) (string, error)
	// apply sends EdgeX only what differs between want and have and
	// returns what EdgeX then holds (as far as the bridge can tell before
	// the update event arrives), or changed=false when nothing differed.
	apply(ctx context.Context, want, have E) (now E, changed bool, err error)
	// get reads the object from EdgeX by name.
	get(ctx context.Context, name string) (E, error)
	// remove deletes the object from EdgeX by name.
	remove(ctx context.Context, name string) error
	// list is a complete, paged list of the kind in EdgeX.
	list(ctx context.Context) ([]E, error)
	// firstPage lists one object of the kind, for its totalCount.
	firstPage(ctx context.Context) (edgex.Page[E], error)

	// knownEdgeID is the EdgeX id status records.
	knownEdgeID(O) string
	// recordEdge records in status what EdgeX holds (its id, and states
	// EdgeX reports) and that the object's generation was acted on.
	recordEdge(O, E)
	// setSynced sets status.synced and the Synced condition.
	setSynced(obj O, synced bool, c v1alpha1.Condition)
	conditions(O) []v1alpha1.Condition
	// statusOf returns the status struct, for computing status patches.
	statusOf(O) any
}

// edgeStore is the EdgeX calls every kind makes the same way, through the
// kind's Store; noun names the kind in errors ("device service").
type edgeStore[E, U any] struct {
	store Store[E, U]
	noun  string
}

func (s edgeStore[E, U]) get(ctx context.Context, name string) (E, error) {
	return s.store.Get(ctx, name)
}
func (s edgeStore[E, U]) remove(ctx context.Context, name string) error {
	return s.store.Delete(ctx, name)
}
func (s edgeStore[E, U]) list(ctx context.Context) ([]E, error) { return s.store.List(ctx) }

func (s edgeStore[E, U]) firstPage(ctx context.Context) (edgex.Page[E], error) {
	return s.store.ListPage(ctx, 0, 1)
}

func (s edgeStore[E, U]) addOne(ctx context.Context, item E, name string) (string, error) {
	results, err := s.store.Add(ctx, item)
	if err != nil {
		return "", wrapOp(err, "add "+s.noun, name)
	}
	if len(results) != 1 {
		return "", fmt.Errorf("add %s %q: EdgeX answered %d results for 1 item", s.noun, name, len(results))
	}
	if results[0].Err != nil {
		return "", wrapOp(results[0].Err, "add "+s.noun, name)
	}
	return results[0].ID, nil
}

func (s edgeStore[E, U]) updateOne(ctx context.Context, patch U, name string) error {
	return wrapOp(firstItemError(s.store.Update(ctx, patch)), "update "+s.noun, name)
}

func firstItemError(results []edgex.Result, err error) error {
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

func wrapOp(err error, op, name string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %q in EdgeX: %w", op, name, err)
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// syncedOf is the kind's Synced condition, or nil.
func syncedOf[O client.Object, E any](k kind[O, E], obj O) *v1alpha1.Condition {
	return v1alpha1.FindCondition(k.conditions(obj), v1alpha1.ConditionSynced)
}
