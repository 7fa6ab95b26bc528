package devicecontroller

import (
	"encoding/json"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// DeviceFields holds, outside the pool's cache, two fields of every Device
// in a compact form. Both were mostly Go's small maps, which get room for
// eight entries each however few they hold: at 10,000 devices they were
// 13 MB of the bridge's heap, and are about 2 MB here.
//
//   - spec.protocols, kept as its JSON text. Only a reconcile reads it (to
//     render the device for EdgeX, or to compare it with EdgeX's), and the
//     reconciler puts it back into its own copy of the Device first
//     (restore), so that every comparison and every patch computed from
//     that copy sees the whole spec.
//   - status.deviceProperties, the reported values, of a Device with no
//     desired values, as a short slice. Telemetry is their only reader: it
//     compares each reading with the value in status, so as to write only
//     changes (reportedOf). A Device with desired values keeps the whole
//     map in the cache, since the command driver reads and writes it there.
//
// The cache transform (see PoolCacheOptions) moves both here from every
// version of a Device it receives, before the cache holds it, so the store
// is never older than the cache. Nothing is lost on the server: every other
// write of the bridge is a merge patch computed between two copies of a
// cached object, and a field absent from both is absent from the patch.
type DeviceFields struct {
	mu      sync.RWMutex
	devices map[types.NamespacedName]keptFields
}

// keptFields is what the store holds of one Device.
type keptFields struct {
	// protocols is spec.protocols as JSON, or empty when the Device has none.
	protocols string
	reported  []reportedValue
}

// reportedValue is what telemetry compares a reading with.
type reportedValue struct {
	name, value  string
	lastReported int64
	// binary is set for a binary reading (a camera frame, say), which
	// status describes by its media type and size only.
	binary *reportedBinary
}

type reportedBinary struct {
	mediaType string
	size      int64
}

// NewDeviceFields returns an empty store, to be given to both
// PoolCacheOptions and Options.DeviceFields.
func NewDeviceFields() *DeviceFields {
	return &DeviceFields{devices: map[types.NamespacedName]keptFields{}}
}

// take moves d's protocols, and its reported values when it has no desired
// values, into the store. It runs in the cache transform, on an object
// nobody else holds yet.
func (s *DeviceFields) take(d *v1alpha1.Device) {
	key := types.NamespacedName{Namespace: d.Namespace, Name: d.Name}
	if d.DeletionTimestamp != nil {
		// A Device being deleted is read whole (it is rare), and forgotten
		// here: its last events may come after the reconcile that forgot
		// it.
		s.forget(key)
		return
	}
	var kept keptFields
	if d.Spec.Protocols != nil {
		text, err := json.Marshal(d.Spec.Protocols)
		if err != nil {
			// Maps of strings always encode; should one not, the cache
			// keeps the field.
			s.forget(key)
			return
		}
		kept.protocols = string(text)
		d.Spec.Protocols = nil
	}
	if len(d.Spec.DeviceProperties) == 0 {
		if len(d.Status.DeviceProperties) > 0 {
			kept.reported = make([]reportedValue, 0, len(d.Status.DeviceProperties))
			for name, p := range d.Status.DeviceProperties {
				v := reportedFrom(cacheStrings.intern(name), p)
				if v.binary != nil {
					v.binary.mediaType = cacheStrings.intern(v.binary.mediaType)
				}
				kept.reported = append(kept.reported, v)
			}
		}
		d.Status.DeviceProperties = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if kept.protocols == "" && kept.reported == nil {
		delete(s.devices, key)
		return
	}
	s.devices[key] = kept
}

// restore puts back into d, a reconciler's own copy of a cached Device, the
// spec fields the store holds for it, so that the reconcile reads, compares
// and patches the whole spec. The reported values stay out: only telemetry
// reads them.
func (s *DeviceFields) restore(d *v1alpha1.Device) error {
	if s == nil || d.Spec.Protocols != nil {
		return nil
	}
	s.mu.RLock()
	kept, ok := s.devices[types.NamespacedName{Namespace: d.Namespace, Name: d.Name}]
	s.mu.RUnlock()
	if !ok || kept.protocols == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(kept.protocols), &d.Spec.Protocols); err != nil {
		return fmt.Errorf("restore the protocols of Device %s/%s: %w", d.Namespace, d.Name, err)
	}
	return nil
}

// reported returns what the store holds of one resource of the Device.
func (s *DeviceFields) reported(key types.NamespacedName, resource string) (reportedValue, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.devices[key].reported {
		if v.name == resource {
			return v, true
		}
	}
	return reportedValue{}, false
}

// forget drops what the store holds of a Device.
func (s *DeviceFields) forget(key types.NamespacedName) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.devices, key)
}

// forgetDeleted is an informer handler that forgets a Device once its
// deletion reaches the cache. Every replica's cache feeds the store, while
// only the leader reconciles: without it, a standby would keep what it held
// of every Device deleted meanwhile.
func (s *DeviceFields) forgetDeleted() toolscache.ResourceEventHandlerFuncs {
	return toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if gone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = gone.Obj
		}
		if d, ok := obj.(*v1alpha1.Device); ok {
			s.forget(types.NamespacedName{Namespace: d.Namespace, Name: d.Name})
		}
	}}
}

// len is the number of Devices the store holds fields of.
func (s *DeviceFields) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.devices)
}

// reportedOf returns the value dev last reported for resource: from its
// status when the cache keeps it there, else from the store.
func reportedOf(store *DeviceFields, key types.NamespacedName, dev *v1alpha1.Device, resource string) (reportedValue, bool) {
	if dev.Status.DeviceProperties != nil || store == nil {
		p, ok := dev.Status.DeviceProperties[resource]
		if !ok {
			return reportedValue{}, false
		}
		return reportedFrom(resource, p), true
	}
	return store.reported(key, resource)
}

// reportedFrom is what telemetry compares with of one status entry.
func reportedFrom(name string, p v1alpha1.ActualPropertyState) reportedValue {
	v := reportedValue{name: name, value: p.ActualValue, lastReported: p.LastReported}
	if p.MediaType != "" || p.BinarySize > 0 {
		v.binary = &reportedBinary{mediaType: p.MediaType, size: p.BinarySize}
	}
	return v
}
