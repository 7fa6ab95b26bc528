package devicecontroller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMarkPrunableLeavesServerSideAppliersAlone(t *testing.T) {
	update := func(manager string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: metav1.NewFieldsV1(`{"f:spec":{}}`)}
	}
	apply := func(manager string) metav1.ManagedFieldsEntry {
		e := update(manager)
		e.Operation = metav1.ManagedFieldsOperationApply
		return e
	}
	for _, tc := range []struct {
		name     string
		entries  []metav1.ManagedFieldsEntry
		prunable bool
	}{
		{"no record", nil, false},
		{"updates only (the bridge's import, kubectl create or edit)", []metav1.ManagedFieldsEntry{update("edgebridge"), update("kubectl-edit")}, true},
		{"a server-side applier among updaters", []metav1.ManagedFieldsEntry{update("edgebridge"), apply("argocd-controller")}, false},
		{"a server-side applier alone", []metav1.ManagedFieldsEntry{apply("kubectl")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var obj metav1.PartialObjectMetadata
			obj.ManagedFields = markPrunable(tc.entries)
			if got := prunable(&obj); got != tc.prunable {
				t.Errorf("prunable = %v, want %v (cache keeps %+v)", got, tc.prunable, obj.ManagedFields)
			}
			if len(obj.ManagedFields) > 1 || len(obj.ManagedFields) == 1 && obj.ManagedFields[0].FieldsV1 != nil {
				t.Errorf("the cache keeps the record itself: %+v", obj.ManagedFields)
			}
		})
	}
}
