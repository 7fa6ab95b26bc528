package devicecontroller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// ReportedValues holds, outside the pool's cache, the reported values
// (status.deviceProperties) of the Devices that have no desired values.
// Telemetry is their only reader: it compares each reading with the value
// in status, so as to write only changes. In the cache, each Device's map of
// them took about 700 bytes at three resources (Go gives a small map room
// for eight entries, and an entry this large is allocated on its own): 7 MB
// of a 10,000-device pool's heap. Here they are one short slice per Device.
//
// The cache transform (see PoolCacheOptions) moves them here from every
// version of a Device it receives. A Device with desired values keeps its
// whole map in the cache, since the command driver reads and writes it
// there. Nothing is lost on the server: the bridge's writes are merge
// patches computed between two copies of the cached object, and a field
// absent from both is absent from the patch.
type ReportedValues struct {
	mu     sync.RWMutex
	values map[types.NamespacedName][]reportedValue
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

// NewReportedValues returns an empty store, to be given to both
// PoolCacheOptions and Options.Reported.
func NewReportedValues() *ReportedValues {
	return &ReportedValues{values: map[types.NamespacedName][]reportedValue{}}
}

// take moves d's reported values into the store when d has no desired
// values, and forgets what the store held of d otherwise. It runs in the
// cache transform, on an object nobody else holds yet.
func (s *ReportedValues) take(d *v1alpha1.Device) {
	key := types.NamespacedName{Namespace: d.Namespace, Name: d.Name}
	if len(d.Spec.DeviceProperties) > 0 || d.DeletionTimestamp != nil {
		// A Device being deleted is forgotten here too: its last events
		// may come after the reconcile that forgot it.
		s.forget(key)
		return
	}
	var kept []reportedValue
	if len(d.Status.DeviceProperties) > 0 {
		kept = make([]reportedValue, 0, len(d.Status.DeviceProperties))
		for name, p := range d.Status.DeviceProperties {
			v := reportedValue{name: cacheStrings.intern(name), value: p.ActualValue, lastReported: p.LastReported}
			if p.MediaType != "" || p.BinarySize > 0 {
				v.binary = &reportedBinary{mediaType: cacheStrings.intern(p.MediaType), size: p.BinarySize}
			}
			kept = append(kept, v)
		}
	}
	d.Status.DeviceProperties = nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if kept == nil {
		delete(s.values, key)
		return
	}
	s.values[key] = kept
}

// get returns what the store holds of one resource of the Device.
func (s *ReportedValues) get(key types.NamespacedName, resource string) (reportedValue, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.values[key] {
		if v.name == resource {
			return v, true
		}
	}
	return reportedValue{}, false
}

// forget drops what the store holds of a Device.
func (s *ReportedValues) forget(key types.NamespacedName) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.values, key)
}

// len is the number of Devices the store holds values of.
func (s *ReportedValues) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.values)
}

// reportedOf returns the value dev last reported for resource: from its
// status when the cache keeps it there, else from the store.
func reportedOf(store *ReportedValues, key types.NamespacedName, dev *v1alpha1.Device, resource string) (reportedValue, bool) {
	if dev.Status.DeviceProperties != nil || store == nil {
		p, ok := dev.Status.DeviceProperties[resource]
		if !ok {
			return reportedValue{}, false
		}
		v := reportedValue{name: resource, value: p.ActualValue, lastReported: p.LastReported}
		if p.MediaType != "" || p.BinarySize > 0 {
			v.binary = &reportedBinary{mediaType: p.MediaType, size: p.BinarySize}
		}
		return v, true
	}
	return store.get(key, resource)
}
