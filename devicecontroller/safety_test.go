package devicecontroller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// EdgeX's database is wiped: managed objects are re-created from the
// cloud; imported ones vanish all at once, which looks like the wipe it is,
// so their deletion is held until a person confirms it.
func TestWipedEdgeXIsRebuiltAndImportsAreHeld(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.DeletionGuardMinimum = 1
	}})
	svc, prof, dev := managedSet(p, "w")
	imported := map[string]string{}
	for _, d := range simulator.DemoDevices() {
		name := convert.PreferredKubeName(p.name, d.Name)
		imported[d.Name] = name
		waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	}

	p.sim.Wipe()
	p.bridge.ResyncNow()

	waitRecreatedInEdgeX(t, p, svc.Name, prof.Name, dev.Name)
	for _, name := range imported {
		waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
			if d.DeletionTimestamp != nil {
				return fmt.Errorf("deleted without confirmation")
			}
			return reason(d.Status.Conditions, v1alpha1.ConditionSynced, v1alpha1.ReasonDeletionHeld)
		})
	}
	waitForEvent(t, p, v1alpha1.ReasonDeletionHeld)

	// A person confirms one deletion.
	first := simulator.DemoDevices()[0].Name
	update(p, &v1alpha1.Device{}, imported[first], func(d *v1alpha1.Device) {
		d.Annotations[v1alpha1.ConfirmEdgeDeletionAnnotation] = "true"
	})
	waitGone(p, &v1alpha1.Device{}, imported[first])

	// The device service brings the others back: nothing was lost.
	for _, d := range simulator.DemoDevices()[1:] {
		if _, err := p.sim.AddDeviceService(simulator.DemoService()); err != nil && !strings.Contains(err.Error(), "exists") {
			t.Fatal(err)
		}
		for _, pr := range simulator.DemoProfiles() {
			if pr.Name == d.ProfileName {
				_, _ = p.sim.AddDeviceProfile(pr)
			}
		}
		d.Id = ""
		if _, err := p.sim.AddDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range simulator.DemoDevices()[1:] {
		waitFor(p, &v1alpha1.Device{}, imported[d.Name], func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	}
}

// EdgeX refuses to delete a profile its devices still use: the object says
// why and the bridge retries, without forcing anything; once the devices
// are gone the profile goes too.
func TestProfileInUseIsNotDeleted(t *testing.T) {
	p := startPool(t, poolConfig{})
	_, prof, dev := managedSet(p, "u")
	// Waiting for devices is not a failure: no reconcile error is logged
	// or counted for it, at any retry.
	reconcileErrors := func() float64 {
		return metricWhere(t, "controller_runtime_reconcile_errors_total", map[string]string{"controller": "deviceprofile-" + p.name})
	}
	errorsBefore := reconcileErrors()
	p.delete(prof)
	waitFor(p, &v1alpha1.DeviceProfile{}, prof.Name, func(dp *v1alpha1.DeviceProfile) error {
		if dp.DeletionTimestamp == nil {
			return fmt.Errorf("not being deleted")
		}
		return reason(dp.Status.Conditions, v1alpha1.ConditionSynced, v1alpha1.ReasonProfileInUse)
	})
	if _, ok := p.sim.Profile(prof.Name); !ok {
		t.Fatal("profile deleted from EdgeX while in use")
	}
	waitForEvent(t, p, v1alpha1.ReasonProfileInUse)
	if got := reconcileErrors() - errorsBefore; got != 0 {
		t.Errorf("%v reconcile errors while the profile waited for its device, want none", got)
	}
	p.delete(dev)
	waitGone(p, &v1alpha1.DeviceProfile{}, prof.Name)
	if _, ok := p.sim.Profile(prof.Name); ok {
		t.Fatal("profile still in EdgeX")
	}
}

// The bridge is stopped in the middle of importing hundreds of devices and
// of creating managed ones, and started again: it converges with every EdgeX
// device represented exactly once and every managed object in EdgeX once.
func TestRestartMidSyncLeavesNoDuplicatesOrOrphans(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, noBridge: true})
	const atEdge, inCloud = 300, 40
	base := simulator.DemoDevices()[1]
	for i := range atEdge {
		d := base
		d.Name, d.Id, d.AutoEvents = fmt.Sprintf("edge-%03d", i), "", nil
		if _, err := p.sim.AddDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	svc := simulator.DemoService().Name
	for i := range inCloud {
		p.create(managedDevice(p, fmt.Sprintf("cloud-%03d", i), svc, simulator.ProfileSensor))
	}

	p.startBridge()
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		if n := countDevices(t, p); n < 60 {
			return fmt.Errorf("%d devices so far", n)
		}
		return nil
	})
	p.stop()
	p.startBridge()

	total := atEdge + inCloud + len(simulator.DemoDevices())
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		var list v1alpha1.DeviceList
		if err := p.c.List(ctx, &list, client.InNamespace(p.ns)); err != nil {
			return err
		}
		claims := map[string]int{}
		notSynced := 0
		for _, d := range list.Items {
			claims[v1alpha1.EdgeXName(&d)]++
			if !d.Status.Synced {
				notSynced++
			}
		}
		for name, n := range claims {
			if n > 1 {
				return fmt.Errorf("EdgeX device %q represented %d times", name, n)
			}
		}
		if len(list.Items) != total || notSynced > 0 {
			return fmt.Errorf("%d devices (%d not synced), want %d synced", len(list.Items), notSynced, total)
		}
		if n := len(p.sim.Devices()); n != total {
			return fmt.Errorf("%d devices in EdgeX, want %d", n, total)
		}
		return nil
	})
}

func countDevices(t *testing.T, p *pool) int {
	var list v1alpha1.DeviceList
	if err := p.c.List(context.Background(), &list, client.InNamespace(p.ns)); err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

// Finalizers are added and removed with patches that leave other
// controllers' finalizers alone; the dock's own finalizer is adopted.
func TestForeignFinalizersSurvive(t *testing.T) {
	p := startPool(t, poolConfig{})
	svc := managedService(p, "f-svc")
	svc.Finalizers = []string{"example.com/keep", "iot.openyurt.io/deviceservice"}
	p.create(svc)
	waitFor(p, &v1alpha1.DeviceService{}, svc.Name, func(s *v1alpha1.DeviceService) error {
		if !slices.Contains(s.Finalizers, v1alpha1.Finalizer) || !slices.Contains(s.Finalizers, "example.com/keep") {
			return fmt.Errorf("finalizers %v", s.Finalizers)
		}
		return synced(s.Status.Synced, s.Status.Conditions)
	})
	p.delete(svc)
	waitFor(p, &v1alpha1.DeviceService{}, svc.Name, func(s *v1alpha1.DeviceService) error {
		if !slices.Equal(s.Finalizers, []string{"example.com/keep"}) {
			return fmt.Errorf("finalizers %v, want only the foreign one", s.Finalizers)
		}
		return nil
	})
	if _, ok := p.sim.Service(svc.Name); ok {
		t.Fatal("service still in EdgeX")
	}
	update(p, &v1alpha1.DeviceService{}, svc.Name, func(s *v1alpha1.DeviceService) { s.Finalizers = nil })
	waitGone(p, &v1alpha1.DeviceService{}, svc.Name)
}

// yurt-iot-dock v1.4 to v1.7 puts its own finalizer on every object it
// handles (DeviceFinalizer, DeviceProfileFinalizer, DeviceServiceFinalizer
// in the openyurt module). With the dock gone, nobody else would remove
// them: the bridge adopts them, so that deleting such an object deletes it
// in EdgeX and then lets it go, leaving other finalizers alone.
func TestDockFinalizersAreAdopted(t *testing.T) {
	p := startPool(t, poolConfig{})
	svc := managedService(p, "dock-svc")
	prof := managedProfile(p, "dock-profile")
	dev := managedDevice(p, "dock-dev", svc.Name, prof.Name)
	cases := []struct {
		obj       client.Object
		finalizer string
		inEdgeX   func() bool
		fresh     client.Object
	}{
		{dev, "iot.openyurt.io/device", func() bool { _, ok := p.sim.Device(dev.Name); return ok }, &v1alpha1.Device{}},
		{prof, "iot.openyurt.io/deviceprofile", func() bool { _, ok := p.sim.Profile(prof.Name); return ok }, &v1alpha1.DeviceProfile{}},
		{svc, "iot.openyurt.io/deviceservice", func() bool { _, ok := p.sim.Service(svc.Name); return ok }, &v1alpha1.DeviceService{}},
	}
	for _, c := range cases {
		c.obj.SetFinalizers([]string{c.finalizer, "example.com/keep"})
		p.create(c.obj)
	}
	for _, c := range cases {
		waitSynced(p, named(c.fresh, c.obj.GetName()))
	}
	// Devices first: EdgeX refuses to delete a profile or service in use.
	for _, c := range cases {
		p.delete(c.obj)
		waitFor(p, c.fresh, c.obj.GetName(), func(o client.Object) error {
			if !slices.Equal(o.GetFinalizers(), []string{"example.com/keep"}) {
				return fmt.Errorf("finalizers %v, want only the foreign one", o.GetFinalizers())
			}
			return nil
		})
		if c.inEdgeX() {
			t.Errorf("%s still in EdgeX", c.obj.GetName())
		}
		update(p, c.fresh, c.obj.GetName(), func(o client.Object) { o.SetFinalizers(nil) })
		waitGone(p, c.fresh, c.obj.GetName())
	}
}

// Two objects claiming one EdgeX name: the older represents it; the other
// says so and never touches EdgeX, not even when deleted.
func TestTwoObjectsClaimingOneEdgeXName(t *testing.T) {
	p := startPool(t, poolConfig{})
	first := managedService(p, "claimed")
	p.create(first)
	waitFor(p, &v1alpha1.DeviceService{}, first.Name, func(s *v1alpha1.DeviceService) error { return synced(s.Status.Synced, s.Status.Conditions) })
	second := managedService(p, "claimant")
	second.Annotations = map[string]string{v1alpha1.EdgeXNameAnnotation: "claimed"}
	second.Spec.Description = "a competing truth"
	p.create(second)
	waitFor(p, &v1alpha1.DeviceService{}, second.Name, func(s *v1alpha1.DeviceService) error {
		return reason(s.Status.Conditions, v1alpha1.ConditionSynced, v1alpha1.ReasonConflict)
	})
	if s, _ := p.sim.Service("claimed"); s.Description == "a competing truth" {
		t.Fatal("the second claimant changed EdgeX")
	}
	p.delete(second)
	waitGone(p, &v1alpha1.DeviceService{}, second.Name)
	if _, ok := p.sim.Service("claimed"); !ok {
		t.Fatal("deleting the second claimant deleted the EdgeX object")
	}
}

// As under yurt-iot-dock, an object applied in the cloud with managed false
// is created in EdgeX once, and mirrors EdgeX from then on.
func TestUnmanagedCloudObjectIsCreatedOnceThenMirrored(t *testing.T) {
	p := startPool(t, poolConfig{})
	svc := managedService(p, "dock-style")
	svc.Spec.Managed = false
	p.create(svc)
	waitFor(p, &v1alpha1.DeviceService{}, svc.Name, func(s *v1alpha1.DeviceService) error { return synced(s.Status.Synced, s.Status.Conditions) })
	if _, ok := p.sim.Service(svc.Name); !ok {
		t.Fatal("not created in EdgeX")
	}
	addr := "http://moved:59900"
	if err := p.sim.UpdateDeviceService(updateServiceAddress(svc.Name, addr)); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.DeviceService{}, svc.Name, func(s *v1alpha1.DeviceService) error {
		if s.Spec.BaseAddress != addr {
			return fmt.Errorf("baseAddress %q", s.Spec.BaseAddress)
		}
		return nil
	})
}

// Objects yurt-iot-dock imported (its label, its finalizer, managed false)
// are recognised, not imported a second time, and delete cleanly.
func TestObjectsImportedByTheDockAreAdopted(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, noBridge: true})
	edgeName := simulator.DemoDevices()[0].Name
	edge, _ := p.sim.Device(edgeName)
	dock := &v1alpha1.Device{
		ObjectMeta: metav1.ObjectMeta{
			Name:       p.name + "-" + strings.ToLower(strings.ReplaceAll(edgeName, "_", "-")) + "-dock",
			Labels:     map[string]string{v1alpha1.LegacyEdgeXNameLabel: edgeName},
			Finalizers: []string{"iot.openyurt.io/device"},
		},
		Spec: convert.DeviceFromEdgeX(edge),
	}
	dock.Spec.NodePool = p.name
	p.create(dock)
	p.startBridge()
	waitFor(p, &v1alpha1.Device{}, dock.Name, func(d *v1alpha1.Device) error {
		if d.Annotations[v1alpha1.EdgeXNameAnnotation] != edgeName {
			return fmt.Errorf("EdgeX name not recorded: %v", d.Annotations)
		}
		return synced(d.Status.Synced, d.Status.Conditions)
	})
	for _, d := range simulator.DemoDevices()[1:] {
		waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, d.Name), func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	}
	if n := countDevices(t, p); n != len(simulator.DemoDevices()) {
		t.Fatalf("%d devices, want %d: the dock's import was imported again", n, len(simulator.DemoDevices()))
	}
	p.delete(dock)
	waitGone(p, &v1alpha1.Device{}, dock.Name)
}

// waitForEvent waits for a Kubernetes Event with the given reason in the
// pool's namespace.
func waitForEvent(t *testing.T, p *pool, reason string) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		var events eventsv1.EventList
		if err := p.c.List(ctx, &events, client.InNamespace(p.ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == reason {
				return nil
			}
		}
		return fmt.Errorf("no %s event among %d", reason, len(events.Items))
	})
}

// waitRecreatedInEdgeX waits until EdgeX holds the named service, profile
// and device again, as the bridge re-creates them after a wipe.
func waitRecreatedInEdgeX(t *testing.T, p *pool, service, profile, device string) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		_, s := p.sim.Service(service)
		_, pr := p.sim.Profile(profile)
		_, d := p.sim.Device(device)
		if !s || !pr || !d {
			return fmt.Errorf("not re-created in EdgeX: service=%v profile=%v device=%v", s, pr, d)
		}
		return nil
	})
}
