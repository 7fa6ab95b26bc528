package devicecontroller

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// The cache keeps a Device's protocols, and its reported values when the
// command driver does not need them in status (it has no desired values),
// in the DeviceFields store. A reconcile gets the protocols back in its own
// copy, exactly as they were (nil and empty alike); telemetry reads the
// same reported values either way.
func TestDeviceFieldsLeaveTheCacheAndComeBack(t *testing.T) {
	device := func(mutate func(*v1alpha1.Device)) *v1alpha1.Device {
		d := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "pools", Name: "dev-1"}}
		d.Spec.NodePool = "pool-a"
		d.Spec.Protocols = map[string]v1alpha1.ProtocolProperties{
			"modbus-tcp": {"Address": "10.0.0.5", "Port": "502"}, "empty": {}, "none": nil,
		}
		d.Status.DeviceProperties = map[string]v1alpha1.ActualPropertyState{
			"temperature": {Name: "temperature", ActualValue: "21.5", ValueType: "Float64", LastReported: 100},
			"frame":       {Name: "frame", MediaType: "image/jpeg", BinarySize: 2048, LastReported: 90},
		}
		mutate(d)
		return d
	}
	key := types.NamespacedName{Namespace: "pools", Name: "dev-1"}
	cases := []struct {
		name string
		dev  *v1alpha1.Device
		// protocolsInCache and reportedInCache say whether the cached copy
		// keeps them.
		protocolsInCache, reportedInCache bool
	}{
		{"no desired values", device(func(*v1alpha1.Device) {}), false, false},
		{"desired values", device(func(d *v1alpha1.Device) {
			d.Spec.DeviceProperties = map[string]v1alpha1.DesiredPropertyState{"temperature": {Name: "temperature", DesiredValue: "20"}}
		}), false, true},
		{"being deleted", device(func(d *v1alpha1.Device) { d.DeletionTimestamp = &metav1.Time{Time: time.Now()} }), true, true},
		{"no protocols, nothing reported", device(func(d *v1alpha1.Device) { d.Spec.Protocols, d.Status.DeviceProperties = nil, nil }), false, false},
		{"empty protocols", device(func(d *v1alpha1.Device) { d.Spec.Protocols = map[string]v1alpha1.ProtocolProperties{} }), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := NewDeviceFields()
			// What the store held of an older version must not outlive it.
			store.take(device(func(d *v1alpha1.Device) { d.Spec.Protocols["old"] = v1alpha1.ProtocolProperties{"Address": "gone"} }))
			out, err := compactAndTake(store)(tc.dev.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			cached := out.(*v1alpha1.Device)
			if got := cached.Spec.Protocols != nil; got != tc.protocolsInCache && tc.dev.Spec.Protocols != nil {
				t.Errorf("the cached copy keeps its protocols: %v, want %v", got, tc.protocolsInCache)
			}
			if got := cached.Status.DeviceProperties != nil; got != tc.reportedInCache && tc.dev.Status.DeviceProperties != nil {
				t.Errorf("the cached copy keeps its reported values: %v, want %v", got, tc.reportedInCache)
			}

			restored := cached.DeepCopy()
			if err := store.restore(restored); err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(restored.Spec, tc.dev.Spec) || restored.Spec.Protocols == nil != (tc.dev.Spec.Protocols == nil) {
				t.Errorf("restored spec %+v\nwant %+v", restored.Spec, tc.dev.Spec)
			}
			for name, want := range tc.dev.Status.DeviceProperties {
				got, ok := reportedOf(store, key, cached, name)
				if !ok || got.value != want.ActualValue || got.lastReported != want.LastReported {
					t.Errorf("%s: telemetry reads %+v (known %v), want value %q reported at %d", name, got, ok, want.ActualValue, want.LastReported)
				}
				if want.MediaType != "" && (got.binary == nil || got.binary.mediaType != want.MediaType || got.binary.size != want.BinarySize) {
					t.Errorf("%s: telemetry reads binary %+v, want %s of %d bytes", name, got.binary, want.MediaType, want.BinarySize)
				}
			}
			store.forget(key)
			if store.len() != 0 {
				t.Errorf("the store still holds %d devices after forget", store.len())
			}
		})
	}
}

// A Device's deletion reaching the cache empties its entry, on every
// replica: as the object itself, or as the tombstone of a deletion the
// watch missed.
func TestDeviceFieldsForgetDeletedDevices(t *testing.T) {
	dev := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "pools", Name: "dev-1"}}
	dev.Spec.Protocols = map[string]v1alpha1.ProtocolProperties{"other": {"Address": "dev-1"}}
	cases := map[string]any{
		"deleted":   dev,
		"tombstone": toolscache.DeletedFinalStateUnknown{Key: "pools/dev-1", Obj: dev},
	}
	for name, deleted := range cases {
		t.Run(name, func(t *testing.T) {
			store := NewDeviceFields()
			store.take(dev.DeepCopy())
			if store.len() != 1 {
				t.Fatalf("the store holds %d devices, want 1", store.len())
			}
			store.forgetDeleted().OnDelete(deleted)
			if store.len() != 0 {
				t.Errorf("the store still holds %d devices after the deletion", store.len())
			}
		})
	}
}
