package devicecontroller_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// The pool's cache keeps only what the bridge reads: no managedFields, no
// kubectl last-applied copy, and no reported values of a device without
// desired values. None is ever lost on the server: the bridge's writes are
// patches of what it changed, so a person's annotation, field ownership and
// the device's reported values survive them.
func TestCacheDropsWhatTheBridgeNeverReads(t *testing.T) {
	// Emptying server-side apply's record is another matter
	// (TestManagedFieldsEmptiedUnlessSomeoneApplies): here the record
	// shows whether the bridge's own writes keep what its cache drops.
	p := startPool(t, poolConfig{noBridge: true, options: func(o *devicecontroller.Options) { o.KeepManagedFields = true }})
	r := p.launchBridge()
	p.bridge, p.stop = r.bridge, r.stop
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error { return p.bridge.Ready() })

	svc := managedService(p, "lean-svc")
	prof := managedProfile(p, "lean-profile")
	dev := managedDevice(p, "lean-dev", svc.Name, prof.Name)
	dev.Annotations = map[string]string{lastApplied: `{"kind":"Device","spec":{"managed":true}}`, "example.com/owner": "team-a"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, obj := range []client.Object{svc, prof, dev} {
		if err := p.c.Create(ctx, obj, client.FieldOwner("person")); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
	}
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })

	key := client.ObjectKey{Namespace: p.ns, Name: dev.Name}
	cached := &v1alpha1.Device{}
	if err := r.mgr.GetCache().Get(ctx, key, cached); err != nil {
		t.Fatal(err)
	}
	// At most the one entry that marks a record the bridge may empty.
	if len(cached.ManagedFields) > 1 || len(cached.ManagedFields) == 1 && cached.ManagedFields[0].FieldsV1 != nil {
		t.Errorf("the cache holds managedFields: %+v", cached.ManagedFields)
	}
	if _, ok := cached.Annotations[lastApplied]; ok {
		t.Errorf("the cache holds the %s annotation", lastApplied)
	}
	if cached.Annotations["example.com/owner"] != "team-a" || v1alpha1.EdgeXName(cached) != dev.Name {
		t.Errorf("the cache lost annotations the bridge may read: %v", cached.Annotations)
	}

	// The device reports values. Without desired values, the cache keeps
	// them out of its copy (in the bridge's store of reported values), and
	// the bridge's status writes, computed from cached copies, keep them on
	// the server.
	reported := map[string]v1alpha1.ActualPropertyState{
		"temperature": {Name: "temperature", ActualValue: "21.5", ValueType: "Float64", LastReported: 1700000000000},
	}
	statusPatch := client.RawPatch(types.MergePatchType,
		[]byte(`{"status":{"deviceProperties":{"temperature":{"name":"temperature","actualValue":"21.5","valueType":"Float64","lastReported":1700000000000}}}}`))
	if err := p.c.Status().Patch(ctx, dev, statusPatch); err != nil {
		t.Fatal(err)
	}
	update(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) { d.Spec.Description = "described" })
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
		if d.Status.ObservedGeneration != d.Generation {
			return fmt.Errorf("status.observedGeneration %d, generation %d", d.Status.ObservedGeneration, d.Generation)
		}
		return nil
	})
	if err := r.mgr.GetCache().Get(ctx, key, cached); err != nil {
		t.Fatal(err)
	}
	if cached.Status.DeviceProperties != nil {
		t.Errorf("the cache holds the reported values of a device without desired values: %v", cached.Status.DeviceProperties)
	}

	// A person takes the bridge's finalizer off; the bridge puts it back
	// with a patch computed from its cached (trimmed) copy.
	update(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) {
		d.Finalizers = slices.DeleteFunc(d.Finalizers, func(f string) bool { return f == v1alpha1.Finalizer })
	})
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
		if !slices.Contains(d.Finalizers, v1alpha1.Finalizer) {
			return fmt.Errorf("finalizers %v", d.Finalizers)
		}
		return nil
	})
	live := &v1alpha1.Device{}
	if err := p.get(live, dev.Name); err != nil {
		t.Fatal(err)
	}
	if live.Annotations[lastApplied] != dev.Annotations[lastApplied] || live.Annotations["example.com/owner"] != "team-a" {
		t.Errorf("a bridge write lost a person's annotations: %v", live.Annotations)
	}
	if !equality.Semantic.DeepEqual(live.Status.DeviceProperties, reported) {
		t.Errorf("a bridge write lost the reported values: %v, want %v", live.Status.DeviceProperties, reported)
	}
	if !slices.ContainsFunc(live.ManagedFields, func(m metav1.ManagedFieldsEntry) bool { return m.Manager == "person" }) {
		t.Errorf("a bridge write lost the person's managedFields: %+v", live.ManagedFields)
	}
}
