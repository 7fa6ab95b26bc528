package devicecontroller

import (
	"context"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
)

// serviceKind is how a DeviceService maps onto an EdgeX device service.
//
// What happens to it, in both directions:
//   - Created or edited in the cloud (managed, or born in the cloud): created
//     in EdgeX, or sent the fields that differ (apply); operatingState is the
//     device service's own at run time and is never undone (the spec's
//     value goes only with a spec change).
//   - Created or changed at the edge: imported (imported) or mirrored into
//     its spec (mirror), by the edge queue (edgequeue.go).
//   - Deleted in the cloud: deleted in EdgeX first. EdgeX refuses while
//     devices use it; the object then says ServiceInUse and the deletion is
//     tried again after retryInUse, and at once when such a device goes.
//   - Deleted at the edge: an import that no device in the pool needs is
//     deleted, on a delete system event, or on a complete list that lacks it
//     (held by the deletion guard when many vanish at once, resync.go); one
//     born in the cloud, or an import that such a device uses, is re-created
//     from its spec.
type serviceKind struct {
	edgeStore[dtos.DeviceService, dtos.UpdateDeviceService]
}

var _ kind[*v1alpha1.DeviceService, dtos.DeviceService] = serviceKind{}

func newServiceKind(edge EdgeX) serviceKind {
	return serviceKind{edgeStore[dtos.DeviceService, dtos.UpdateDeviceService]{store: edge.Services, noun: "device service"}}
}

func (serviceKind) name() string                           { return "DeviceService" }
func (serviceKind) inUseReason() string                    { return v1alpha1.ReasonServiceInUse }
func (serviceKind) newObject() *v1alpha1.DeviceService     { return &v1alpha1.DeviceService{} }
func (serviceKind) newList() client.ObjectList             { return &v1alpha1.DeviceServiceList{} }
func (serviceKind) managed(s *v1alpha1.DeviceService) bool { return s.Spec.Managed }
func (serviceKind) watchStatus() predicate.Predicate       { return nil }

func (serviceKind) items(l client.ObjectList) []*v1alpha1.DeviceService {
	return ptrs(l.(*v1alpha1.DeviceServiceList).Items)
}

func (serviceKind) edgeName(s dtos.DeviceService) string    { return s.Name }
func (serviceKind) edgeID(s dtos.DeviceService) string      { return s.Id }
func (serviceKind) edgeModified(s dtos.DeviceService) int64 { return s.Modified }
func (serviceKind) withEdgeID(s dtos.DeviceService, id string) dtos.DeviceService {
	s.Id = id
	return s
}

func (serviceKind) toEdge(s *v1alpha1.DeviceService) (dtos.DeviceService, error) {
	return convert.ServiceToEdgeX(s)
}

func (serviceKind) yieldToEdge(*v1alpha1.DeviceService, *dtos.DeviceService, dtos.DeviceService) {}

func (serviceKind) mirror(s *v1alpha1.DeviceService, e dtos.DeviceService) bool {
	want := convert.ServiceFromEdgeX(e)
	want.Managed, want.NodePool = s.Spec.Managed, s.Spec.NodePool
	if equality.Semantic.DeepEqual(want, s.Spec) {
		return false
	}
	s.Spec = want
	return true
}

func (serviceKind) imported(e dtos.DeviceService, pool string) *v1alpha1.DeviceService {
	s := &v1alpha1.DeviceService{Spec: convert.ServiceFromEdgeX(e)}
	s.Spec.NodePool = pool
	return s
}

func (k serviceKind) add(ctx context.Context, want dtos.DeviceService) (string, error) {
	return k.addOne(ctx, want, want.Name)
}

func (k serviceKind) apply(ctx context.Context, want, have dtos.DeviceService) (dtos.DeviceService, bool, error) {
	patch, changed := convert.ServiceUpdate(want, have)
	if !changed {
		return have, false, nil
	}
	if err := k.updateOne(ctx, patch, want.Name); err != nil {
		return have, true, err
	}
	want.Id, want.Created, want.Modified = have.Id, have.Created, have.Modified
	return want, true, nil
}

func (serviceKind) knownEdgeID(s *v1alpha1.DeviceService) string { return s.Status.EdgeId }

func (serviceKind) recordEdge(s *v1alpha1.DeviceService, e dtos.DeviceService) {
	s.Status.EdgeId = e.Id
	s.Status.AdminState = v1alpha1.AdminState(e.AdminState)
	s.Status.ObservedGeneration = s.Generation
}

func (serviceKind) setSynced(s *v1alpha1.DeviceService, synced bool, c v1alpha1.Condition) {
	s.Status.Synced = synced
	v1alpha1.SetCondition(&s.Status.Conditions, c)
}

func (serviceKind) conditions(s *v1alpha1.DeviceService) []v1alpha1.Condition {
	return s.Status.Conditions
}
func (serviceKind) statusOf(s *v1alpha1.DeviceService) any { return &s.Status }
