package devicecontroller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
)

// deviceKind is how a Device maps onto an EdgeX device.
//
// What happens to it, in both directions:
//   - Created or edited in the cloud (managed, or born in the cloud):
//     created in EdgeX, or sent the fields that differ (apply);
//     operatingState is the device service's at run time and is never
//     undone (the spec's value goes only with a spec change).
//   - Created or changed at the edge: imported (imported) or mirrored into
//     its spec (mirror), desired values kept, by the edge queue
//     (edgequeue.go).
//   - Once it and EdgeX agree, the command driver (commands.go) sends its
//     desired property values; a reported value that drifts from one
//     brings it back (watchStatus). Readings reach its status through
//     telemetry.go.
//   - Deleted in the cloud: deleted in EdgeX first, then the commands and
//     readings kept for it are dropped, and the profile and service whose
//     deletion waited for it are looked at again (Bridge.New).
//   - Deleted at the edge: an import (origin edge, managed: false) is
//     deleted, on a delete system event, or on a complete list that lacks
//     it unless the deletion guard holds it (resync.go, deletionguard.go);
//     one born in the cloud is re-created from its spec.
type deviceKind struct {
	edgeStore[dtos.Device, dtos.UpdateDevice]
}

var _ kind[*v1alpha1.Device, dtos.Device] = deviceKind{}

func newDeviceKind(edge EdgeX) deviceKind {
	return deviceKind{edgeStore[dtos.Device, dtos.UpdateDevice]{store: edge.Devices, noun: "device"}}
}

func (deviceKind) name() string                    { return "Device" }
func (deviceKind) inUseReason() string             { return "" }
func (deviceKind) newObject() *v1alpha1.Device     { return &v1alpha1.Device{} }
func (deviceKind) newList() client.ObjectList      { return &v1alpha1.DeviceList{} }
func (deviceKind) managed(d *v1alpha1.Device) bool { return d.Spec.Managed }

func (deviceKind) items(l client.ObjectList) []*v1alpha1.Device {
	return ptrs(l.(*v1alpha1.DeviceList).Items)
}

func (deviceKind) edgeName(d dtos.Device) string    { return d.Name }
func (deviceKind) edgeID(d dtos.Device) string      { return d.Id }
func (deviceKind) edgeModified(d dtos.Device) int64 { return d.Modified }
func (deviceKind) withEdgeID(d dtos.Device, id string) dtos.Device {
	d.Id = id
	return d
}

func (deviceKind) toEdge(d *v1alpha1.Device) (dtos.Device, error) { return convert.DeviceToEdgeX(d) }

// yieldToEdge leaves operatingState to the device service, which owns it
// at run time (it marks an unreachable device DOWN): the bridge sends the
// spec's value only with a spec change, never to undo the device service.
func (deviceKind) yieldToEdge(d *v1alpha1.Device, want *dtos.Device, have dtos.Device) {
	if d.Spec.OperatingState == "" || d.Generation == d.Status.ObservedGeneration {
		want.OperatingState = have.OperatingState
	}
}

func (deviceKind) mirror(d *v1alpha1.Device, e dtos.Device) bool {
	want := convert.DeviceFromEdgeX(e)
	want.Managed, want.NodePool = d.Spec.Managed, d.Spec.NodePool
	// Desired property values are the user's intent, not EdgeX metadata:
	// a mirror keeps them.
	want.DeviceProperties = d.Spec.DeviceProperties
	if equality.Semantic.DeepEqual(want, d.Spec) {
		return false
	}
	d.Spec = want
	return true
}

func (deviceKind) imported(e dtos.Device, pool string) *v1alpha1.Device {
	d := &v1alpha1.Device{Spec: convert.DeviceFromEdgeX(e)}
	d.Spec.NodePool = pool
	return d
}

func (k deviceKind) add(ctx context.Context, want dtos.Device) (string, error) {
	return k.addOne(ctx, want, want.Name)
}

func (k deviceKind) apply(ctx context.Context, want, have dtos.Device) (dtos.Device, bool, error) {
	patch, changed := convert.DeviceUpdate(want, have)
	if !changed {
		return have, false, nil
	}
	if err := k.updateOne(ctx, patch, want.Name); err != nil {
		return have, true, err
	}
	return mergeDevice(want, have), true, nil
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

// encodedDevice is an EdgeX device as the bridge's memory of EdgeX keeps
// it (see viewCodec): the DTO's fields without its omitempty, so that nil
// and empty, which decide what a patch sends, survive, and with short
// names.
type encodedDevice struct {
	Id             string                             `json:"i"`
	Name           string                             `json:"n"`
	Description    string                             `json:"d"`
	AdminState     string                             `json:"a"`
	OperatingState string                             `json:"o"`
	Created        int64                              `json:"c"`
	Modified       int64                              `json:"m"`
	Labels         []string                           `json:"l"`
	Location       any                                `json:"x"`
	ServiceName    string                             `json:"s"`
	ProfileName    string                             `json:"p"`
	AutoEvents     []dtos.AutoEvent                   `json:"e"`
	Protocols      map[string]dtos.ProtocolProperties `json:"r"`
	Tags           map[string]any                     `json:"t"`
	Properties     map[string]any                     `json:"q"`
}

func (deviceKind) encode(d dtos.Device) ([]byte, error) {
	return json.Marshal(encodedDevice{
		Id: d.Id, Name: d.Name, Description: d.Description, AdminState: d.AdminState, OperatingState: d.OperatingState,
		Created: d.Created, Modified: d.Modified, Labels: d.Labels, Location: d.Location,
		ServiceName: d.ServiceName, ProfileName: d.ProfileName, AutoEvents: d.AutoEvents,
		Protocols: d.Protocols, Tags: d.Tags, Properties: d.Properties,
	})
}

func (deviceKind) decode(b []byte) (dtos.Device, error) {
	var e encodedDevice
	dec := json.NewDecoder(bytes.NewReader(b))
	// Numbers in free-form values stay json.Number, as the EdgeX client
	// decodes them, so that their text survives.
	dec.UseNumber()
	if err := dec.Decode(&e); err != nil {
		return dtos.Device{}, fmt.Errorf("decode the kept copy of an EdgeX device: %w", err)
	}
	return dtos.Device{
		DBTimestamp: dtos.DBTimestamp{Created: e.Created, Modified: e.Modified},
		Id:          e.Id, Name: e.Name, Description: e.Description, AdminState: e.AdminState, OperatingState: e.OperatingState,
		Labels: e.Labels, Location: e.Location, ServiceName: e.ServiceName, ProfileName: e.ProfileName,
		AutoEvents: e.AutoEvents, Protocols: e.Protocols, Tags: e.Tags, Properties: e.Properties,
	}, nil
}

func (deviceKind) knownEdgeID(d *v1alpha1.Device) string { return d.Status.EdgeId }

func (deviceKind) recordEdge(d *v1alpha1.Device, e dtos.Device) {
	d.Status.EdgeId = e.Id
	d.Status.AdminState, d.Status.OperatingState = v1alpha1.AdminState(e.AdminState), v1alpha1.OperatingState(e.OperatingState)
	d.Status.ObservedGeneration = d.Generation
}

func (deviceKind) setSynced(d *v1alpha1.Device, synced bool, c v1alpha1.Condition) {
	d.Status.Synced = synced
	v1alpha1.SetCondition(&d.Status.Conditions, c)
}

func (deviceKind) conditions(d *v1alpha1.Device) []v1alpha1.Condition { return d.Status.Conditions }
func (deviceKind) statusOf(d *v1alpha1.Device) any                    { return &d.Status }

// watchStatus lets through a device status update in which the device
// reported a new value for a property it has a desired value for: drift
// the commands must correct. It reacts to the watch event carrying the
// reading, so the reconcile sees it in the cache.
func (deviceKind) watchStatus() predicate.Predicate {
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
