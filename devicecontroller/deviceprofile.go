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

// profileKind is how a DeviceProfile maps onto an EdgeX device profile.
//
// What happens to it, in both directions:
//   - Created or edited in the cloud (managed, which a profile without
//     spec.managed is): created in EdgeX, or updated (apply): a PATCH for
//     the basic fields, a full replacement when resources or commands
//     changed, which EdgeX cannot patch.
//   - Created or changed at the edge: imported with managed: false
//     (imported), or mirrored into its spec (mirror), by the edge queue
//     (edgequeue.go).
//   - Deleted in the cloud: deleted in EdgeX first. EdgeX refuses while
//     devices use it; the object then says ProfileInUse and the deletion is
//     tried again after retryInUse, and at once when such a device goes.
//   - Deleted in EdgeX: an import (origin edge, managed: false) that no
//     device in the pool needs is deleted from the cloud, on a delete system
//     event at once, or on a complete list that lacks it, unless the
//     deletion guard holds it (too many vanished at once, or EdgeX looks
//     wiped: DeletionHeld, until a person confirms; resync.go). A profile
//     born in the cloud, or an import that a managed or cloud-born device
//     uses, is re-created in EdgeX from its spec instead (claims.go,
//     keptAtEdge), so that its devices can be re-created too.
type profileKind struct {
	edgeStore[dtos.DeviceProfile, dtos.UpdateDeviceProfileBasicInfo]
	profiles ProfileStore
}

var _ kind[*v1alpha1.DeviceProfile, dtos.DeviceProfile] = profileKind{}

func newProfileKind(edge EdgeX) profileKind {
	return profileKind{
		edgeStore: edgeStore[dtos.DeviceProfile, dtos.UpdateDeviceProfileBasicInfo]{store: edge.Profiles, noun: "device profile"},
		profiles:  edge.Profiles,
	}
}

func (profileKind) name() string                           { return "DeviceProfile" }
func (profileKind) inUseReason() string                    { return v1alpha1.ReasonProfileInUse }
func (profileKind) newObject() *v1alpha1.DeviceProfile     { return &v1alpha1.DeviceProfile{} }
func (profileKind) newList() client.ObjectList             { return &v1alpha1.DeviceProfileList{} }
func (profileKind) managed(p *v1alpha1.DeviceProfile) bool { return p.Spec.IsManaged() }
func (profileKind) watchStatus() predicate.Predicate       { return nil }

func (profileKind) items(l client.ObjectList) []*v1alpha1.DeviceProfile {
	return ptrs(l.(*v1alpha1.DeviceProfileList).Items)
}

func (profileKind) edgeName(p dtos.DeviceProfile) string    { return p.Name }
func (profileKind) edgeID(p dtos.DeviceProfile) string      { return p.Id }
func (profileKind) edgeModified(p dtos.DeviceProfile) int64 { return p.Modified }
func (profileKind) withEdgeID(p dtos.DeviceProfile, id string) dtos.DeviceProfile {
	p.Id = id
	return p
}

func (profileKind) toEdge(p *v1alpha1.DeviceProfile) (dtos.DeviceProfile, error) {
	return convert.ProfileToEdgeX(p)
}

func (profileKind) yieldToEdge(*v1alpha1.DeviceProfile, *dtos.DeviceProfile, dtos.DeviceProfile) {}

func (profileKind) mirror(p *v1alpha1.DeviceProfile, e dtos.DeviceProfile) bool {
	want := convert.ProfileFromEdgeX(e)
	want.Managed, want.NodePool = p.Spec.Managed, p.Spec.NodePool
	if equality.Semantic.DeepEqual(want, p.Spec) {
		return false
	}
	p.Spec = want
	return true
}

func (profileKind) imported(e dtos.DeviceProfile, pool string) *v1alpha1.DeviceProfile {
	notManaged := false
	p := &v1alpha1.DeviceProfile{Spec: convert.ProfileFromEdgeX(e)}
	p.Spec.Managed = &notManaged
	p.Spec.NodePool = pool
	return p
}

func (k profileKind) add(ctx context.Context, want dtos.DeviceProfile) (string, error) {
	return k.addOne(ctx, want, want.Name)
}

func (k profileKind) apply(ctx context.Context, want, have dtos.DeviceProfile) (dtos.DeviceProfile, bool, error) {
	basic, replace, changed := convert.ProfileUpdate(want, have)
	if !changed {
		return have, false, nil
	}
	var err error
	switch {
	case replace:
		want.Id = have.Id
		err = firstItemError(k.profiles.ReplaceProfiles(ctx, want))
		err = wrapOp(err, "replace device profile", want.Name)
	case basic != nil:
		err = k.updateOne(ctx, *basic, want.Name)
	}
	if err != nil {
		return have, true, err
	}
	want.Id, want.Created, want.Modified = have.Id, have.Created, have.Modified
	return want, true, nil
}

func (profileKind) knownEdgeID(p *v1alpha1.DeviceProfile) string { return p.Status.EdgeId }

// recordEdge records the id only: EdgeX reports no state of a profile.
func (profileKind) recordEdge(p *v1alpha1.DeviceProfile, e dtos.DeviceProfile) {
	p.Status.EdgeId = e.Id
	p.Status.ObservedGeneration = p.Generation
}

func (profileKind) setSynced(p *v1alpha1.DeviceProfile, synced bool, c v1alpha1.Condition) {
	p.Status.Synced = synced
	v1alpha1.SetCondition(&p.Status.Conditions, c)
}

func (profileKind) conditions(p *v1alpha1.DeviceProfile) []v1alpha1.Condition {
	return p.Status.Conditions
}
func (profileKind) statusOf(p *v1alpha1.DeviceProfile) any { return &p.Status }
