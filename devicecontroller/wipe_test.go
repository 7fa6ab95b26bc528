package devicecontroller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// A wiped EdgeX answers every list with nothing. However few objects the
// pool imported, that is a wipe, not intent: nothing is deleted, every
// imported object says DeletionHeld with an Event, and when the device
// services register again everything is back in sync, with EdgeX's new ids.
func TestWipeIsHeldInPoolsOfAnySize(t *testing.T) {
	for _, perKind := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("%d imported per kind", perKind), func(t *testing.T) {
			p := startPool(t, poolConfig{noBridge: true})
			names := seedImports(t, p, perKind)
			p.startBridge()
			for _, o := range names {
				waitSynced(p, o)
			}
			oldIDs := edgeIDs(t, p)

			p.sim.Wipe()
			p.bridge.ResyncNow()
			for _, o := range names {
				waitHeld(p, o)
			}
			waitForEvent(t, p, v1alpha1.ReasonDeletionHeld)

			for i := range perKind {
				if _, err := p.sim.RestartDeviceService(fmt.Sprintf("svc-%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			for _, o := range names {
				waitSynced(p, o)
			}
			for key, id := range edgeIDs(t, p) {
				if id == oldIDs[key] {
					t.Errorf("%s still says EdgeX id %s, which the wipe lost", key, id)
				}
			}
		})
	}
}

// seedImports registers perKind device services at the edge, each with one
// profile and one device, and returns the objects their imports will be.
func seedImports(t *testing.T, p *pool, perKind int) []client.Object {
	t.Helper()
	var names []client.Object
	base := simulator.DemoProfiles()[1]
	for i := range perKind {
		svc := simulator.DemoService()
		svc.Name = fmt.Sprintf("svc-%d", i)
		prof := base
		prof.Name = fmt.Sprintf("prof-%d", i)
		dev := simulator.DemoDevices()[1]
		dev.Name, dev.ServiceName, dev.ProfileName, dev.AutoEvents = fmt.Sprintf("dev-%d", i), svc.Name, prof.Name, nil
		if _, err := p.sim.AddDeviceService(svc); err != nil {
			t.Fatal(err)
		}
		if _, err := p.sim.AddDeviceProfile(prof); err != nil {
			t.Fatal(err)
		}
		if _, err := p.sim.AddDevice(dev); err != nil {
			t.Fatal(err)
		}
		names = append(names,
			named(&v1alpha1.DeviceService{}, convert.PreferredKubeName(p.name, svc.Name)),
			named(&v1alpha1.DeviceProfile{}, convert.PreferredKubeName(p.name, prof.Name)),
			named(&v1alpha1.Device{}, convert.PreferredKubeName(p.name, dev.Name)))
	}
	return names
}

func named[O client.Object](obj O, name string) O {
	obj.SetName(name)
	return obj
}

// waitSynced waits until the object is in sync with EdgeX.
func waitSynced(p *pool, obj client.Object) {
	p.t.Helper()
	name := obj.GetName()
	testenv.Eventually(p.t, testenv.DefaultTimeout, func(ctx context.Context) error {
		if err := p.get(obj, name); err != nil {
			return err
		}
		return synced(statusOf(obj))
	})
}

// waitHeld waits until the object says its deletion is held, and fails if
// it is being deleted.
func waitHeld(p *pool, obj client.Object) {
	p.t.Helper()
	name := obj.GetName()
	testenv.Eventually(p.t, testenv.DefaultTimeout, func(ctx context.Context) error {
		if err := p.get(obj, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if obj.GetDeletionTimestamp() != nil {
			return fmt.Errorf("%s is being deleted", name)
		}
		_, conds := statusOf(obj)
		return reason(conds, v1alpha1.ConditionSynced, v1alpha1.ReasonDeletionHeld)
	})
}

func statusOf(obj client.Object) (bool, []v1alpha1.Condition) {
	switch o := obj.(type) {
	case *v1alpha1.Device:
		return o.Status.Synced, o.Status.Conditions
	case *v1alpha1.DeviceService:
		return o.Status.Synced, o.Status.Conditions
	case *v1alpha1.DeviceProfile:
		return o.Status.Synced, o.Status.Conditions
	}
	panic(fmt.Sprintf("%T is not one of the bridge's kinds", obj))
}

// edgeIDs returns every object's status.edgeId in the pool's namespace, by
// kind and name.
func edgeIDs(t *testing.T, p *pool) map[string]string {
	t.Helper()
	ctx := context.Background()
	ids := map[string]string{}
	var devices v1alpha1.DeviceList
	var services v1alpha1.DeviceServiceList
	var profiles v1alpha1.DeviceProfileList
	for _, l := range []client.ObjectList{&devices, &services, &profiles} {
		if err := p.c.List(ctx, l, client.InNamespace(p.ns)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range devices.Items {
		ids["Device/"+d.Name] = d.Status.EdgeId
	}
	for _, s := range services.Items {
		ids["DeviceService/"+s.Name] = s.Status.EdgeId
	}
	for _, pr := range profiles.Items {
		ids["DeviceProfile/"+pr.Name] = pr.Status.EdgeId
	}
	return ids
}

// The pool the wipe was first seen in: the demo's service, profiles and
// devices imported; a managed service, profile and device from the cloud;
// a device applied from the cloud without managed, as the dock allowed; an
// imported device a person switched to managed; and a device still carrying
// the dock's finalizer. After the wipe nothing in the cluster is deleted:
// what was born in the cloud, and every imported object such an object
// depends on, is re-created in EdgeX; what only mirrored EdgeX is held.
func TestWipeKeepsCloudObjectsAndWhatTheyDependOn(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	svc, prof, dev := managedSet(p, "w")
	demo := simulator.DemoDevices() // gpio-board-01 (GPIO), env-sensor-01 (sensor), camera-01 (camera)
	for _, d := range demo {
		waitSynced(p, named(&v1alpha1.Device{}, convert.PreferredKubeName(p.name, d.Name)))
	}
	// Applied in the cloud without managed: created in EdgeX once, then
	// mirrored, as under the dock.
	unmanaged := managedDevice(p, "cloud-unmanaged", simulator.DemoServiceName, simulator.ProfileSensor)
	unmanaged.Spec.Managed = false
	p.create(unmanaged)
	// Carries the dock's finalizer, as objects created under the dock do.
	dockFinalized := managedDevice(p, "dock-finalized", svc.Name, prof.Name)
	dockFinalized.Finalizers = []string{"iot.openyurt.io/device"}
	p.create(dockFinalized)
	// An imported camera a person took over.
	camera := convert.PreferredKubeName(p.name, demo[2].Name)
	update(p, &v1alpha1.Device{}, camera, func(d *v1alpha1.Device) { d.Spec.Managed = true })
	for _, name := range []string{unmanaged.Name, dockFinalized.Name, camera} {
		waitSynced(p, named(&v1alpha1.Device{}, name))
	}

	p.sim.Wipe()
	p.bridge.ResyncNow()

	// Re-created in EdgeX: the cloud's objects, and the imported service
	// and profiles they use.
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		var missing []string
		for _, name := range []string{svc.Name, simulator.DemoServiceName} {
			if _, ok := p.sim.Service(name); !ok {
				missing = append(missing, "service "+name)
			}
		}
		for _, name := range []string{prof.Name, simulator.ProfileSensor, simulator.ProfileCamera} {
			if _, ok := p.sim.Profile(name); !ok {
				missing = append(missing, "profile "+name)
			}
		}
		for _, name := range []string{dev.Name, unmanaged.Name, dockFinalized.Name, demo[2].Name} {
			if _, ok := p.sim.Device(name); !ok {
				missing = append(missing, "device "+name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("not re-created in EdgeX: %v", missing)
		}
		return nil
	})
	for _, o := range []client.Object{
		named(&v1alpha1.DeviceService{}, svc.Name),
		named(&v1alpha1.DeviceService{}, convert.PreferredKubeName(p.name, simulator.DemoServiceName)),
		named(&v1alpha1.DeviceProfile{}, prof.Name),
		named(&v1alpha1.DeviceProfile{}, convert.PreferredKubeName(p.name, simulator.ProfileSensor)),
		named(&v1alpha1.DeviceProfile{}, convert.PreferredKubeName(p.name, simulator.ProfileCamera)),
		named(&v1alpha1.Device{}, dev.Name),
		named(&v1alpha1.Device{}, unmanaged.Name),
		named(&v1alpha1.Device{}, dockFinalized.Name),
		named(&v1alpha1.Device{}, camera),
	} {
		waitSynced(p, o)
	}
	// Held: imported objects nothing in the cloud needs.
	for _, o := range []client.Object{
		named(&v1alpha1.Device{}, convert.PreferredKubeName(p.name, demo[0].Name)),
		named(&v1alpha1.Device{}, convert.PreferredKubeName(p.name, demo[1].Name)),
		named(&v1alpha1.DeviceProfile{}, convert.PreferredKubeName(p.name, simulator.ProfileGPIO)),
	} {
		waitHeld(p, o)
	}

	// The dock's finalizer does not hold a deletion forever.
	p.delete(dockFinalized)
	waitGone(p, &v1alpha1.Device{}, dockFinalized.Name)
	if _, ok := p.sim.Device(dockFinalized.Name); ok {
		t.Error("deleting the device left it in EdgeX")
	}
}

// A wipe of a large pool: a thousand imported devices on one imported
// service and profile, and one managed device on them. The imported
// devices are held; the service and profile the managed device needs are
// re-created, so that the managed device can be re-created too.
func TestWipeOfALargePool(t *testing.T) {
	const devices = 1000
	p := startPool(t, poolConfig{noBridge: true})
	svc, prof := simulator.DemoService(), simulator.DemoProfiles()[1]
	if _, err := p.sim.AddDeviceService(svc); err != nil {
		t.Fatal(err)
	}
	if _, err := p.sim.AddDeviceProfile(prof); err != nil {
		t.Fatal(err)
	}
	for i := range devices {
		d := simulator.DemoDevices()[1]
		d.Name, d.AutoEvents = fmt.Sprintf("imported-%04d", i), nil
		if _, err := p.sim.AddDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	p.startBridge()
	managed := managedDevice(p, "managed-on-imports", svc.Name, prof.Name)
	p.create(managed)
	waitSynced(p, named(&v1alpha1.Device{}, managed.Name))
	waitAllDevices(t, p, devices+1, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })

	p.sim.Wipe()
	p.bridge.ResyncNow()

	waitRecreatedInEdgeX(t, p, svc.Name, prof.Name, managed.Name)
	waitSynced(p, named(&v1alpha1.DeviceService{}, convert.PreferredKubeName(p.name, svc.Name)))
	waitSynced(p, named(&v1alpha1.DeviceProfile{}, convert.PreferredKubeName(p.name, prof.Name)))
	waitSynced(p, named(&v1alpha1.Device{}, managed.Name))
	waitAllDevices(t, p, devices+1, func(d *v1alpha1.Device) error {
		if d.Name == managed.Name {
			return nil
		}
		if d.DeletionTimestamp != nil {
			return fmt.Errorf("%s is being deleted", d.Name)
		}
		return reason(d.Status.Conditions, v1alpha1.ConditionSynced, v1alpha1.ReasonDeletionHeld)
	})
}

// waitAllDevices waits until the namespace holds want devices and each
// passes check.
func waitAllDevices(t *testing.T, p *pool, want int, check func(*v1alpha1.Device) error) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		var list v1alpha1.DeviceList
		if err := p.c.List(ctx, &list, client.InNamespace(p.ns)); err != nil {
			return err
		}
		if len(list.Items) != want {
			return fmt.Errorf("%d devices, want %d", len(list.Items), want)
		}
		failing := 0
		var first error
		for i := range list.Items {
			if err := check(&list.Items[i]); err != nil {
				if first == nil {
					first = fmt.Errorf("%s: %w", list.Items[i].Name, err)
				}
				failing++
			}
		}
		if failing > 0 {
			return fmt.Errorf("%d of %d devices not there yet, first: %w", failing, want, first)
		}
		return nil
	})
}

// A wiped EdgeX announces nothing, and the next full resync may be ten
// minutes away. The bridge counts EdgeX now and then with a list of one
// object, notices that it is empty, and resyncs: the imports are held and
// the managed objects re-created without waiting for the resync period.
func TestWipeIsNoticedBeforeTheNextResync(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.ResyncPeriod = time.Hour
		o.WipeCheckInterval = 100 * time.Millisecond
	}})
	svc, prof, dev := managedSet(p, "n")
	for _, d := range simulator.DemoDevices() {
		waitSynced(p, named(&v1alpha1.Device{}, convert.PreferredKubeName(p.name, d.Name)))
	}

	p.sim.Wipe()

	for _, d := range simulator.DemoDevices() {
		waitHeld(p, named(&v1alpha1.Device{}, convert.PreferredKubeName(p.name, d.Name)))
	}
	waitRecreatedInEdgeX(t, p, svc.Name, prof.Name, dev.Name)
}
