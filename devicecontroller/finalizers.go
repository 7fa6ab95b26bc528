package devicecontroller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

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
		return fmt.Errorf("add finalizer and EdgeX name to %s %s/%s: %w", r.kind.name(), obj.GetNamespace(), obj.GetName(), err)
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
