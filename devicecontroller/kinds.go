package devicecontroller

import (
	"context"
	"fmt"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/convert"
)

// kind is how one of the three kinds maps onto EdgeX. The reconciler, the
// edge queue and the resync are written once against it; the three values
// below (devices, services, profiles) are the only kind-specific code.
type kind[O client.Object, E any] struct {
	// Name is the Kubernetes kind, for logs, events and metrics.
	Name string
	// InUseReason is the condition reason when EdgeX refuses a delete
	// because other objects still use this one.
	InUseReason string

	newObject func() O
	newList   func() client.ObjectList
	items     func(client.ObjectList) []O

	edgeName     func(E) string
	edgeID       func(E) string
	edgeModified func(E) int64
	setID        func(E, string) E

	// toEdge renders the object as EdgeX should hold it.
	toEdge func(O) (E, error)
	// yieldToEdge, when set, gives back to EdgeX what it owns at run time
	// in want, given what EdgeX has.
	yieldToEdge func(obj O, want *E, have E)
	// add creates the object in EdgeX and returns its id.
	add func(ctx context.Context, want E) (string, error)
	// apply sends EdgeX only what differs between want and have and returns
	// what EdgeX then holds (as far as the bridge can tell before the update
	// event arrives), or changed=false when nothing differed.
	apply func(ctx context.Context, want, have E) (now E, changed bool, err error)
	// get reads the object from EdgeX by name.
	get func(ctx context.Context, name string) (E, error)
	// remove deletes the object from EdgeX by name.
	remove func(ctx context.Context, name string) error
	// list is a complete, paged list of the kind in EdgeX.
	list func(ctx context.Context) ([]E, error)
	// firstPage lists one object of the kind, for its totalCount.
	firstPage func(ctx context.Context) (edgex.Page[E], error)

	// managed says whether the object is the truth for EdgeX.
	managed func(O) bool
	// mirror makes an imported object's spec equal EdgeX's and reports
	// whether it changed.
	mirror func(O, E) bool
	// imported builds the object for an EdgeX object the cloud lacks, spec
	// only; the caller names and places it.
	imported func(E) O
	// status points into the object's status fields that every kind has.
	status func(O) syncStatus
	// edgeStatus copies what EdgeX reports (states, times) into status and
	// reports whether anything changed.
	edgeStatus func(O, E) bool
	// statusOf returns the status struct, for computing status patches.
	statusOf func(O) any
	// watchStatus, when set, lets through the status-only updates the kind's
	// reconciler must see.
	watchStatus predicate.Predicate
}

// syncStatus points at the status fields the generic machinery writes.
type syncStatus struct {
	Synced             *bool
	EdgeID             *string
	Conditions         *[]v1alpha1.Condition
	ObservedGeneration *int64
}

func deviceKind(edge EdgeX) *kind[*v1alpha1.Device, dtos.Device] {
	return &kind[*v1alpha1.Device, dtos.Device]{
		Name:         "Device",
		newObject:    func() *v1alpha1.Device { return &v1alpha1.Device{} },
		newList:      func() client.ObjectList { return &v1alpha1.DeviceList{} },
		items:        func(l client.ObjectList) []*v1alpha1.Device { return ptrs(l.(*v1alpha1.DeviceList).Items) },
		edgeName:     func(d dtos.Device) string { return d.Name },
		edgeID:       func(d dtos.Device) string { return d.Id },
		edgeModified: func(d dtos.Device) int64 { return d.Modified },
		setID:        func(d dtos.Device, id string) dtos.Device { d.Id = id; return d },
		toEdge:       convert.DeviceToEdgeX,
		yieldToEdge: func(d *v1alpha1.Device, want *dtos.Device, have dtos.Device) {
			// The device service owns operatingState at run time (it marks
			// an unreachable device DOWN). The bridge sends the spec's value
			// only with a spec change, never to undo the device service.
			if d.Spec.OperatingState == "" || d.Generation == d.Status.ObservedGeneration {
				want.OperatingState = have.OperatingState
			}
		},
		add: func(ctx context.Context, want dtos.Device) (string, error) {
			return addOne(ctx, edge.Devices, want, "device", want.Name)
		},
		apply: func(ctx context.Context, want, have dtos.Device) (dtos.Device, bool, error) {
			patch, changed := convert.DeviceUpdate(want, have)
			if !changed {
				return have, false, nil
			}
			if err := updateOne(ctx, edge.Devices, patch, "device", want.Name); err != nil {
				return have, true, err
			}
			return mergeDevice(want, have), true, nil
		},
		get:       edge.Devices.Get,
		remove:    edge.Devices.Delete,
		list:      edge.Devices.List,
		firstPage: func(ctx context.Context) (edgex.Page[dtos.Device], error) { return edge.Devices.ListPage(ctx, 0, 1) },
		managed:   func(d *v1alpha1.Device) bool { return d.Spec.Managed },
		mirror: func(d *v1alpha1.Device, e dtos.Device) bool {
			want := convert.DeviceFromEdgeX(e)
			want.Managed, want.NodePool = d.Spec.Managed, d.Spec.NodePool
			// Desired property values are the user's intent, not EdgeX
			// metadata: a mirror keeps them.
			want.DeviceProperties = d.Spec.DeviceProperties
			if equality.Semantic.DeepEqual(want, d.Spec) {
				return false
			}
			d.Spec = want
			return true
		},
		imported: func(e dtos.Device) *v1alpha1.Device {
			return &v1alpha1.Device{Spec: convert.DeviceFromEdgeX(e)}
		},
		status: func(d *v1alpha1.Device) syncStatus {
			return syncStatus{&d.Status.Synced, &d.Status.EdgeId, &d.Status.Conditions, &d.Status.ObservedGeneration}
		},
		edgeStatus: func(d *v1alpha1.Device, e dtos.Device) bool {
			admin, op := v1alpha1.AdminState(e.AdminState), v1alpha1.OperatingState(e.OperatingState)
			changed := d.Status.AdminState != admin || d.Status.OperatingState != op
			d.Status.AdminState, d.Status.OperatingState = admin, op
			return changed
		},
		statusOf:    func(d *v1alpha1.Device) any { return &d.Status },
		watchStatus: reportedDesiredChanged(),
	}
}

// reportedDesiredChanged lets through a device status update in which the
// device reported a new value for a property it has a desired value for:
// drift the commander must correct. It reacts to the watch event carrying
// the reading, so the reconcile sees it in the cache.
func reportedDesiredChanged() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			old, oldOK := e.ObjectOld.(*v1alpha1.Device)
			cur, curOK := e.ObjectNew.(*v1alpha1.Device)
			if !oldOK || !curOK || !cur.Spec.Managed {
				return false
			}
			for name, want := range cur.Spec.DeviceProperties {
				if want.DesiredValue == "" {
					continue
				}
				was, is := old.Status.DeviceProperties[name], cur.Status.DeviceProperties[name]
				if was.LastReported != is.LastReported || was.ActualValue != is.ActualValue {
					return true
				}
			}
			return false
		},
	}
}

func serviceKind(edge EdgeX) *kind[*v1alpha1.DeviceService, dtos.DeviceService] {
	return &kind[*v1alpha1.DeviceService, dtos.DeviceService]{
		Name:        "DeviceService",
		InUseReason: v1alpha1.ReasonServiceInUse,
		newObject:   func() *v1alpha1.DeviceService { return &v1alpha1.DeviceService{} },
		newList:     func() client.ObjectList { return &v1alpha1.DeviceServiceList{} },
		items: func(l client.ObjectList) []*v1alpha1.DeviceService {
			return ptrs(l.(*v1alpha1.DeviceServiceList).Items)
		},
		edgeName:     func(s dtos.DeviceService) string { return s.Name },
		edgeID:       func(s dtos.DeviceService) string { return s.Id },
		edgeModified: func(s dtos.DeviceService) int64 { return s.Modified },
		setID:        func(s dtos.DeviceService, id string) dtos.DeviceService { s.Id = id; return s },
		toEdge:       convert.ServiceToEdgeX,
		add: func(ctx context.Context, want dtos.DeviceService) (string, error) {
			return addOne(ctx, edge.Services, want, "device service", want.Name)
		},
		apply: func(ctx context.Context, want, have dtos.DeviceService) (dtos.DeviceService, bool, error) {
			patch, changed := convert.ServiceUpdate(want, have)
			if !changed {
				return have, false, nil
			}
			if err := updateOne(ctx, edge.Services, patch, "device service", want.Name); err != nil {
				return have, true, err
			}
			want.Id, want.Created, want.Modified = have.Id, have.Created, have.Modified
			return want, true, nil
		},
		get:    edge.Services.Get,
		remove: edge.Services.Delete,
		list:   edge.Services.List,
		firstPage: func(ctx context.Context) (edgex.Page[dtos.DeviceService], error) {
			return edge.Services.ListPage(ctx, 0, 1)
		},
		managed: func(s *v1alpha1.DeviceService) bool { return s.Spec.Managed },
		mirror: func(s *v1alpha1.DeviceService, e dtos.DeviceService) bool {
			want := convert.ServiceFromEdgeX(e)
			want.Managed, want.NodePool = s.Spec.Managed, s.Spec.NodePool
			if equality.Semantic.DeepEqual(want, s.Spec) {
				return false
			}
			s.Spec = want
			return true
		},
		imported: func(e dtos.DeviceService) *v1alpha1.DeviceService {
			return &v1alpha1.DeviceService{Spec: convert.ServiceFromEdgeX(e)}
		},
		status: func(s *v1alpha1.DeviceService) syncStatus {
			return syncStatus{&s.Status.Synced, &s.Status.EdgeId, &s.Status.Conditions, &s.Status.ObservedGeneration}
		},
		edgeStatus: func(s *v1alpha1.DeviceService, e dtos.DeviceService) bool {
			admin := v1alpha1.AdminState(e.AdminState)
			changed := s.Status.AdminState != admin
			s.Status.AdminState = admin
			return changed
		},
		statusOf: func(s *v1alpha1.DeviceService) any { return &s.Status },
	}
}

func profileKind(edge EdgeX) *kind[*v1alpha1.DeviceProfile, dtos.DeviceProfile] {
	return &kind[*v1alpha1.DeviceProfile, dtos.DeviceProfile]{
		Name:        "DeviceProfile",
		InUseReason: v1alpha1.ReasonProfileInUse,
		newObject:   func() *v1alpha1.DeviceProfile { return &v1alpha1.DeviceProfile{} },
		newList:     func() client.ObjectList { return &v1alpha1.DeviceProfileList{} },
		items: func(l client.ObjectList) []*v1alpha1.DeviceProfile {
			return ptrs(l.(*v1alpha1.DeviceProfileList).Items)
		},
		edgeName:     func(p dtos.DeviceProfile) string { return p.Name },
		edgeID:       func(p dtos.DeviceProfile) string { return p.Id },
		edgeModified: func(p dtos.DeviceProfile) int64 { return p.Modified },
		setID:        func(p dtos.DeviceProfile, id string) dtos.DeviceProfile { p.Id = id; return p },
		toEdge:       convert.ProfileToEdgeX,
		add: func(ctx context.Context, want dtos.DeviceProfile) (string, error) {
			return addOne(ctx, edge.Profiles, want, "device profile", want.Name)
		},
		apply: func(ctx context.Context, want, have dtos.DeviceProfile) (dtos.DeviceProfile, bool, error) {
			basic, replace, changed := convert.ProfileUpdate(want, have)
			if !changed {
				return have, false, nil
			}
			var err error
			switch {
			case replace:
				want.Id = have.Id
				err = firstItemError(edge.Profiles.ReplaceProfiles(ctx, want))
				err = wrapOp(err, "replace device profile", want.Name)
			case basic != nil:
				err = updateOne(ctx, edge.Profiles, *basic, "device profile", want.Name)
			}
			if err != nil {
				return have, true, err
			}
			want.Id, want.Created, want.Modified = have.Id, have.Created, have.Modified
			return want, true, nil
		},
		get:    edge.Profiles.Get,
		remove: edge.Profiles.Delete,
		list:   edge.Profiles.List,
		firstPage: func(ctx context.Context) (edgex.Page[dtos.DeviceProfile], error) {
			return edge.Profiles.ListPage(ctx, 0, 1)
		},
		managed: func(p *v1alpha1.DeviceProfile) bool { return p.Spec.IsManaged() },
		mirror: func(p *v1alpha1.DeviceProfile, e dtos.DeviceProfile) bool {
			want := convert.ProfileFromEdgeX(e)
			want.Managed, want.NodePool = p.Spec.Managed, p.Spec.NodePool
			if equality.Semantic.DeepEqual(want, p.Spec) {
				return false
			}
			p.Spec = want
			return true
		},
		imported: func(e dtos.DeviceProfile) *v1alpha1.DeviceProfile {
			notManaged := false
			p := &v1alpha1.DeviceProfile{Spec: convert.ProfileFromEdgeX(e)}
			p.Spec.Managed = &notManaged
			return p
		},
		status: func(p *v1alpha1.DeviceProfile) syncStatus {
			return syncStatus{&p.Status.Synced, &p.Status.EdgeId, &p.Status.Conditions, &p.Status.ObservedGeneration}
		},
		edgeStatus: func(*v1alpha1.DeviceProfile, dtos.DeviceProfile) bool { return false },
		statusOf:   func(p *v1alpha1.DeviceProfile) any { return &p.Status },
	}
}

// mergeDevice is what EdgeX holds after a device patch: the wanted fields,
// and EdgeX's own for what the object leaves unmanaged.
func mergeDevice(want, have dtos.Device) dtos.Device {
	if want.AutoEvents == nil {
		want.AutoEvents = have.AutoEvents
	}
	if want.Tags == nil {
		want.Tags = have.Tags
	}
	if want.Properties == nil {
		want.Properties = have.Properties
	}
	want.Id, want.Created, want.Modified = have.Id, have.Created, have.Modified
	return want
}

func addOne[E, U any](ctx context.Context, s Store[E, U], item E, what, name string) (string, error) {
	results, err := s.Add(ctx, item)
	if err != nil {
		return "", wrapOp(err, "add "+what, name)
	}
	if len(results) != 1 {
		return "", fmt.Errorf("add %s %q: EdgeX answered %d results for 1 item", what, name, len(results))
	}
	if results[0].Err != nil {
		return "", wrapOp(results[0].Err, "add "+what, name)
	}
	return results[0].ID, nil
}

func updateOne[E, U any](ctx context.Context, s Store[E, U], patch U, what, name string) error {
	return wrapOp(firstItemError(s.Update(ctx, patch)), "update "+what, name)
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
