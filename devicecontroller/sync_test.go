package devicecontroller_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// A managed object is the truth: creating, updating and deleting it does the
// same to EdgeX, for every kind (profiles included, which the dock never
// updated).
func TestManagedObjectsDriveEdgeX(t *testing.T) {
	p := startPool(t, poolConfig{})
	svc, prof, dev := managedSet(p, "m")

	// Created in EdgeX as specified.
	edgeSvc, ok := p.sim.Service(svc.Name)
	if !ok || edgeSvc.BaseAddress != svc.Spec.BaseAddress {
		t.Fatalf("service not in EdgeX as specified: %+v", edgeSvc)
	}
	if _, ok := p.sim.Profile(prof.Name); !ok {
		t.Fatal("profile not in EdgeX")
	}
	edgeDev, ok := p.sim.Device(dev.Name)
	if !ok || edgeDev.ProfileName != prof.Name || edgeDev.ServiceName != svc.Name {
		t.Fatalf("device not in EdgeX as specified: %+v", edgeDev)
	}
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
		if d.Status.EdgeId != edgeDev.Id || !slices.Contains(d.Finalizers, v1alpha1.Finalizer) {
			return fmt.Errorf("edgeId %q finalizers %v", d.Status.EdgeId, d.Finalizers)
		}
		return nil
	})

	// Updates reach EdgeX.
	update(p, &v1alpha1.DeviceService{}, svc.Name, func(s *v1alpha1.DeviceService) { s.Spec.Description = "new service text" })
	update(p, &v1alpha1.DeviceProfile{}, prof.Name, func(d *v1alpha1.DeviceProfile) {
		d.Spec.Model = "mixed-02"
		d.Spec.DeviceResources = append(d.Spec.DeviceResources, v1alpha1.DeviceResource{
			Name: "humidity", Description: "added later", Properties: v1alpha1.ResourceProperties{ValueType: "Float32", ReadWrite: "R", Units: "%"},
		})
	})
	update(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) {
		d.Spec.Labels = []string{"cloud", "relabelled"}
		d.Spec.AdminState = v1alpha1.Locked
	})
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		s, _ := p.sim.Service(svc.Name)
		pr, _ := p.sim.Profile(prof.Name)
		d, _ := p.sim.Device(dev.Name)
		switch {
		case s.Description != "new service text":
			return fmt.Errorf("service description %q", s.Description)
		case pr.Model != "mixed-02" || len(pr.DeviceResources) != 5:
			return fmt.Errorf("profile model %q with %d resources", pr.Model, len(pr.DeviceResources))
		case !slices.Equal(d.Labels, []string{"cloud", "relabelled"}) || d.AdminState != "LOCKED":
			return fmt.Errorf("device labels %v admin %s", d.Labels, d.AdminState)
		}
		return nil
	})
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
		if d.Status.AdminState != v1alpha1.Locked {
			return fmt.Errorf("status admin state %s", d.Status.AdminState)
		}
		return nil
	})

	// Deletes reach EdgeX, and only then do the objects go.
	p.delete(dev)
	waitGone(p, &v1alpha1.Device{}, dev.Name)
	if _, ok := p.sim.Device(dev.Name); ok {
		t.Fatal("device still in EdgeX after its object was deleted")
	}
	p.delete(prof)
	p.delete(svc)
	waitGone(p, &v1alpha1.DeviceProfile{}, prof.Name)
	waitGone(p, &v1alpha1.DeviceService{}, svc.Name)
	if _, ok := p.sim.Profile(prof.Name); ok {
		t.Fatal("profile still in EdgeX")
	}
	if _, ok := p.sim.Service(svc.Name); ok {
		t.Fatal("service still in EdgeX")
	}
}

// If the edge changes a managed object behind the bridge's back, the
// bridge puts it back: the object is the truth.
func TestManagedObjectsAreRestoredAfterEdgeChanges(t *testing.T) {
	p := startPool(t, poolConfig{})
	_, _, dev := managedSet(p, "r")
	desc := "edited in the EdgeX UI"
	if err := p.sim.UpdateDevice(dtos.UpdateDevice{Name: &dev.Name, Description: &desc}); err != nil {
		t.Fatal(err)
	}
	if err := p.sim.DeleteDevice(dev.Name); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		d, ok := p.sim.Device(dev.Name)
		if !ok || d.Description != dev.Spec.Description {
			return fmt.Errorf("device not restored: present=%v description=%q", ok, d.Description)
		}
		return nil
	})
}

// Edge-side updates of an imported object appear in its spec; an edge-side
// delete (a system event) removes it.
func TestImportedObjectsMirrorEdgeChanges(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	edgeName := simulator.DemoDevices()[1].Name
	name := convert.PreferredKubeName(p.name, edgeName)
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })

	desc, locked := "moved to hall B", "LOCKED"
	if err := p.sim.UpdateDevice(dtos.UpdateDevice{Name: &edgeName, Description: &desc, AdminState: &locked, Labels: []string{"hall-b"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
		if d.Spec.Description != desc || d.Spec.AdminState != v1alpha1.Locked || !slices.Equal(d.Spec.Labels, []string{"hall-b"}) {
			return fmt.Errorf("spec does not mirror EdgeX: %+v", d.Spec)
		}
		if d.Status.AdminState != v1alpha1.Locked {
			return fmt.Errorf("status admin state %s", d.Status.AdminState)
		}
		return nil
	})

	if err := p.sim.DeleteDevice(edgeName); err != nil {
		t.Fatal(err)
	}
	waitGone(p, &v1alpha1.Device{}, name)
}

// The message bus is at most once. What the bridge missed while it heard
// nothing is repaired by the next full resync: adds, updates and deletes.
func TestMissedEventsAreRepairedByResync(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	gone := simulator.DemoDevices()[0].Name
	changed := simulator.DemoDevices()[1].Name
	waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, gone), func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })

	p.sim.Faults().DropBus()
	if err := p.sim.DeleteDevice(gone); err != nil {
		t.Fatal(err)
	}
	desc := "changed while nobody listened"
	if err := p.sim.UpdateDevice(dtos.UpdateDevice{Name: &changed, Description: &desc}); err != nil {
		t.Fatal(err)
	}
	added := simulator.DemoDevices()[2]
	added.Name, added.Id = "added-unheard", ""
	if _, err := p.sim.AddDevice(added); err != nil {
		t.Fatal(err)
	}
	p.sim.Faults().RestoreBus()

	p.bridge.ResyncNow()
	waitGone(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, gone))
	waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, changed), func(d *v1alpha1.Device) error {
		if d.Spec.Description != desc {
			return fmt.Errorf("description %q", d.Spec.Description)
		}
		return nil
	})
	waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, added.Name), func(d *v1alpha1.Device) error {
		return synced(d.Status.Synced, d.Status.Conditions)
	})
}

// A resync that fails, or that EdgeX answers with errors or garbage, must
// delete nothing. Once EdgeX answers properly again, the same resync
// deletes what is really gone, which shows the test could fail.
func TestFailedResyncDeletesNothing(t *testing.T) {
	faults := []struct {
		name   string
		inject func(f *simulator.Faults)
	}{
		{"500 on every list", func(f *simulator.Faults) { f.FailLists(500, -1) }},
		{"error body with 200", func(f *simulator.Faults) { f.ErrorBodyOnSuccess(true) }},
		{"truncated JSON", func(f *simulator.Faults) { f.TruncateResponses(true) }},
		{"timeouts", func(f *simulator.Faults) { f.SetLatency(5 * time.Second) }},
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			p := startPool(t, poolConfig{seedDemo: true})
			victim := simulator.DemoDevices()[0].Name
			name := convert.PreferredKubeName(p.name, victim)
			waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })

			// The device vanishes without a delete event, then lists fail.
			p.sim.Faults().DropBus()
			if err := p.sim.DeleteDevice(victim); err != nil {
				t.Fatal(err)
			}
			p.sim.Faults().RestoreBus()
			tc.inject(p.sim.Faults())
			before := p.sim.RequestCount()
			p.bridge.ResyncNow()
			testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
				if p.sim.RequestCount() < before+2 {
					return fmt.Errorf("the bridge has not tried to list yet")
				}
				return nil
			})
			// Give the bridge every chance to act on the failed list: its
			// edge queue and reconciles run within milliseconds.
			assertStays(t, 2*time.Second, func() error {
				d := &v1alpha1.Device{}
				if err := p.get(d, name); err != nil {
					return fmt.Errorf("imported device deleted after a failed resync: %v", err)
				}
				if d.DeletionTimestamp != nil {
					return fmt.Errorf("imported device being deleted after a failed resync")
				}
				return nil
			})

			p.sim.Faults().Clear()
			p.bridge.ResyncNow()
			waitGone(p, &v1alpha1.Device{}, name)
		})
	}
}

// assertStays checks that cond keeps holding for a while: for asserting
// that something does NOT happen, which no condition can signal.
func assertStays(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := cond(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a negative check
	}
}

// Two pools may hold objects of the same EdgeX name: each bridge sees only
// its pool's objects and talks only to its pool's EdgeX.
func TestPoolsWithTheSameEdgeXNamesDoNotCrossTalk(t *testing.T) {
	ns := kube.Namespace(t)
	a := startPool(t, poolConfig{namespace: ns, seedDemo: true})
	b := startPool(t, poolConfig{namespace: ns, seedDemo: true})
	edgeName := simulator.DemoDevices()[0].Name
	for _, p := range []*pool{a, b} {
		waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, edgeName), func(d *v1alpha1.Device) error {
			if d.Spec.NodePool != p.name {
				return fmt.Errorf("device of pool %s", d.Spec.NodePool)
			}
			return synced(d.Status.Synced, d.Status.Conditions)
		})
	}
	// Same EdgeX name in both pools, managed from the cloud.
	for _, p := range []*pool{a, b} {
		svc := managedService(p, p.name+"-svc")
		svc.Name = p.name + "-svc"
		p.create(svc)
	}
	desc := "only pool A's"
	edge := edgeName
	if err := a.sim.UpdateDevice(dtos.UpdateDevice{Name: &edge, Description: &desc}); err != nil {
		t.Fatal(err)
	}
	waitFor(a, &v1alpha1.Device{}, convert.PreferredKubeName(a.name, edgeName), func(d *v1alpha1.Device) error {
		if d.Spec.Description != desc {
			return fmt.Errorf("pool A's device description %q", d.Spec.Description)
		}
		return nil
	})
	d := &v1alpha1.Device{}
	if err := b.get(d, convert.PreferredKubeName(b.name, edgeName)); err != nil || d.Spec.Description == desc {
		t.Fatalf("pool B's device changed with pool A's EdgeX: %v %q", err, d.Spec.Description)
	}
	if _, ok := b.sim.Service(a.name + "-svc"); ok {
		t.Fatal("pool A's service reached pool B's EdgeX")
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if _, ok := a.sim.Service(a.name + "-svc"); !ok {
			return fmt.Errorf("pool A's service not in pool A's EdgeX")
		}
		return nil
	})
	var list v1alpha1.DeviceList
	if err := kube.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2*len(simulator.DemoDevices()) {
		t.Fatalf("%d devices in the namespace, want one set per pool", len(list.Items))
	}
}

// A managed object whose EdgeX counterpart exists though the bridge missed
// its creation (EdgeX answers 409 to the add) is adopted and updated, not
// reported as a conflict forever.
func TestManagedObjectAdoptsAnEdgeXObjectItDidNotKnow(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	p.sim.Faults().DropBus()
	unheard := simulator.DemoDevices()[0]
	unheard.Name, unheard.Id, unheard.Description = "unheard", "", "created at the edge"
	if _, err := p.sim.AddDevice(unheard); err != nil {
		t.Fatal(err)
	}
	p.sim.Faults().RestoreBus()
	dev := managedDevice(p, "unheard", simulator.DemoServiceName, simulator.ProfileGPIO)
	p.create(dev)
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if d, _ := p.sim.Device("unheard"); d.Description != dev.Spec.Description {
			return fmt.Errorf("EdgeX description %q", d.Description)
		}
		return nil
	})
}
