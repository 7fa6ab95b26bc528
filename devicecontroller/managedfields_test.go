package devicecontroller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// The API server's record of field owners (managedFields) is emptied on
// every object nobody applies server-side, of all three kinds, imported
// or made in the cloud, and stays empty through the bridge's and people's
// later writes. An object a server-side applier owns fields of keeps its
// record, whether it had one from the start or gains one later.
func TestManagedFieldsEmptiedUnlessSomeoneApplies(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.ManagedFieldsQuiet = 100 * time.Millisecond
	}})
	svc, prof, dev := managedSet(p, "mf")
	applied := managedDevice(p, "mf-applied", svc.Name, prof.Name)
	applyAs(t, p, "gitops", applied)
	waitFor(p, &v1alpha1.Device{}, applied.Name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })

	imported := importedDeviceNames(t, p)
	emptied := []client.Object{svc, prof, dev}
	for _, name := range imported {
		emptied = append(emptied, &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Name: name}})
	}
	waitEmptied := func() {
		t.Helper()
		for _, obj := range emptied {
			waitFor(p, obj.DeepCopyObject().(client.Object), obj.GetName(), func(o client.Object) error {
				if mf := o.GetManagedFields(); len(mf) > 0 {
					return fmt.Errorf("%T %s has %d managedFields entries", o, o.GetName(), len(mf))
				}
				return nil
			})
		}
		testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
			if left := metric(t, "edgebridge_managed_fields_left", p.name); left != 0 {
				return fmt.Errorf("%v objects left to empty", left)
			}
			return nil
		})
	}
	waitEmptied()
	if n := metric(t, "edgebridge_managed_fields_emptied_total", p.name); n < float64(len(emptied)) {
		t.Errorf("edgebridge_managed_fields_emptied_total = %v, want at least %d", n, len(emptied))
	}
	// Nothing is left to empty, so the applier's record was looked at and
	// kept.
	assertApplier(t, p, applied.Name, "gitops")

	// A person's edit and the bridge's status write that follows it start
	// no new record.
	update(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) { d.Spec.Description = "edited" })
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
		if d.Status.ObservedGeneration != d.Generation {
			return fmt.Errorf("status.observedGeneration %d, generation %d", d.Status.ObservedGeneration, d.Generation)
		}
		if len(d.ManagedFields) > 0 {
			return fmt.Errorf("managedFields came back: %+v", d.ManagedFields)
		}
		return nil
	})

	// An object made after the pruner has drained is emptied too.
	made := managedDevice(p, "mf-later", svc.Name, prof.Name)
	p.create(made)
	emptied = append(emptied, made)
	waitEmptied()

	// Someone applies an emptied object server-side: the record starts
	// again, and the bridge keeps it from then on.
	later := dev.DeepCopy()
	later.Spec.Description = "applied later"
	applyAs(t, p, "gitops-later", later)
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
		if d.Status.ObservedGeneration != d.Generation {
			return fmt.Errorf("status.observedGeneration %d, generation %d", d.Status.ObservedGeneration, d.Generation)
		}
		return nil
	})
	emptied = slices.DeleteFunc(emptied, func(o client.Object) bool { return o.GetName() == dev.Name })
	waitEmptied()
	assertApplier(t, p, dev.Name, "gitops-later")
}

// applyAs applies d server-side as manager.
func applyAs(t *testing.T, p *pool, manager string, d *v1alpha1.Device) {
	t.Helper()
	out := d.DeepCopy()
	out.APIVersion, out.Kind = v1alpha1.GroupVersion.String(), "Device"
	out.ResourceVersion, out.ManagedFields, out.Status = "", nil, v1alpha1.DeviceStatus{}
	body, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	target := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: d.Name}}
	if err := p.c.Patch(ctx, target, client.RawPatch(types.ApplyPatchType, body), client.FieldOwner(manager), client.ForceOwnership); err != nil {
		t.Fatalf("apply %s as %s: %v", d.Name, manager, err)
	}
}

func assertApplier(t *testing.T, p *pool, name, manager string) {
	t.Helper()
	live := &v1alpha1.Device{}
	if err := p.get(live, name); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(live.ManagedFields, func(m metav1.ManagedFieldsEntry) bool {
		return m.Manager == manager && m.Operation == metav1.ManagedFieldsOperationApply
	}) {
		t.Errorf("device %s lost the record of its server-side applier %s: %+v", name, manager, live.ManagedFields)
	}
}

// importedDeviceNames waits for the simulator's demo devices to be
// imported and returns their objects' names.
func importedDeviceNames(t *testing.T, p *pool) []string {
	t.Helper()
	var names []string
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		var list v1alpha1.DeviceList
		if err := p.c.List(ctx, &list, client.InNamespace(p.ns)); err != nil {
			return err
		}
		names = names[:0]
		for _, d := range list.Items {
			if !d.Spec.Managed && synced(d.Status.Synced, d.Status.Conditions) == nil {
				names = append(names, d.Name)
			}
		}
		if len(names) < 3 {
			return fmt.Errorf("%d of the demo's 3 devices imported", len(names))
		}
		return nil
	})
	return names
}
