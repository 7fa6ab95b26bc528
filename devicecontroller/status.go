package devicecontroller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"unicode/utf8"

	jsonpatch "github.com/evanphx/json-patch/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

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

// setSynced sets status.synced and the Synced condition.
func (r *reconciler[O, E]) setSynced(obj O, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	r.kind.setSynced(obj, ok, v1alpha1.Condition{
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
// reconcile is retried from a fresh copy (see Reconcile).
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
