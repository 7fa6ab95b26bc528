package devicecontroller

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// The cache keeps a Device's reported values in its status only when the
// command driver needs them there (the Device has desired values);
// otherwise the store holds them, and telemetry reads the same values
// either way.
func TestReportedValuesLeaveTheCacheOnlyWithoutDesiredValues(t *testing.T) {
	reported := func() map[string]v1alpha1.ActualPropertyState {
		return map[string]v1alpha1.ActualPropertyState{
			"temperature": {Name: "temperature", ActualValue: "21.5", ValueType: "Float64", LastReported: 100},
			"frame":       {Name: "frame", MediaType: "image/jpeg", BinarySize: 2048, LastReported: 90},
		}
	}
	device := func(mutate func(*v1alpha1.Device)) *v1alpha1.Device {
		d := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "pools", Name: "dev-1"}}
		d.Spec.NodePool = "pool-a"
		d.Status.DeviceProperties = reported()
		mutate(d)
		return d
	}
	key := types.NamespacedName{Namespace: "pools", Name: "dev-1"}
	cases := []struct {
		name string
		dev  *v1alpha1.Device
		// inCache says whether the cached copy keeps its reported values.
		inCache, inStore bool
	}{
		{"no desired values", device(func(*v1alpha1.Device) {}), false, true},
		{"desired values", device(func(d *v1alpha1.Device) {
			d.Spec.DeviceProperties = map[string]v1alpha1.DesiredPropertyState{"temperature": {Name: "temperature", DesiredValue: "20"}}
		}), true, false},
		{"being deleted", device(func(d *v1alpha1.Device) { d.DeletionTimestamp = &metav1.Time{Time: time.Now()} }), true, false},
		{"nothing reported yet", device(func(d *v1alpha1.Device) { d.Status.DeviceProperties = nil }), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := NewReportedValues()
			// What the store held of an older version must not outlive it.
			store.take(device(func(*v1alpha1.Device) {}))
			out, err := compactAndTake(store)(tc.dev.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			cached := out.(*v1alpha1.Device)
			if got := cached.Status.DeviceProperties != nil; got != tc.inCache {
				t.Errorf("the cached copy keeps its reported values: %v, want %v", got, tc.inCache)
			}
			if got := store.len() == 1; got != tc.inStore {
				t.Errorf("the store holds the device: %v, want %v", got, tc.inStore)
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
