package devicecontroller_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Objects that exist only at the edge (created by device services or the
// EdgeX UI) appear in the cluster as imported objects that mirror EdgeX.
func TestEdgeObjectsAreImported(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	for _, d := range simulator.DemoDevices() {
		name := convert.PreferredKubeName(p.name, d.Name)
		edge, _ := p.sim.Device(d.Name)
		waitFor(p, &v1alpha1.Device{}, name, func(dev *v1alpha1.Device) error {
			if err := synced(dev.Status.Synced, dev.Status.Conditions); err != nil {
				return err
			}
			switch {
			case dev.Spec.Managed:
				return fmt.Errorf("imported device is managed")
			case dev.Spec.NodePool != p.name:
				return fmt.Errorf("nodePool %q", dev.Spec.NodePool)
			case v1alpha1.EdgeXName(dev) != d.Name:
				return fmt.Errorf("EdgeX name %q, want %q", v1alpha1.EdgeXName(dev), d.Name)
			case dev.Annotations[v1alpha1.OriginAnnotation] != v1alpha1.OriginEdge:
				return fmt.Errorf("origin annotation %q", dev.Annotations[v1alpha1.OriginAnnotation])
			case dev.Status.EdgeId != edge.Id:
				return fmt.Errorf("edgeId %q, want %q", dev.Status.EdgeId, edge.Id)
			case dev.Spec.Profile != d.ProfileName || dev.Spec.Service != d.ServiceName:
				return fmt.Errorf("spec does not mirror EdgeX: %+v", dev.Spec)
			case dev.Status.AdminState != v1alpha1.UnLocked || dev.Status.OperatingState != v1alpha1.Up:
				return fmt.Errorf("states %s/%s", dev.Status.AdminState, dev.Status.OperatingState)
			}
			return nil
		})
	}
	for _, pr := range simulator.DemoProfiles() {
		waitFor(p, &v1alpha1.DeviceProfile{}, convert.PreferredKubeName(p.name, pr.Name), func(dp *v1alpha1.DeviceProfile) error {
			if dp.Spec.IsManaged() {
				return fmt.Errorf("imported profile is managed")
			}
			if len(dp.Spec.DeviceResources) != len(pr.DeviceResources) {
				return fmt.Errorf("%d resources, want %d", len(dp.Spec.DeviceResources), len(pr.DeviceResources))
			}
			return synced(dp.Status.Synced, dp.Status.Conditions)
		})
	}
	waitFor(p, &v1alpha1.DeviceService{}, convert.PreferredKubeName(p.name, simulator.DemoServiceName), func(s *v1alpha1.DeviceService) error {
		return synced(s.Status.Synced, s.Status.Conditions)
	})
}

// EdgeX allows names Kubernetes does not; imported objects get valid,
// stable, distinct names and keep the original.
func TestEdgeNamesKubernetesCannotHold(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	names := []string{"Cam_01", "cam-01", "CAM.01", "cam~01", "Kamera-Süd", fmt.Sprintf("long-%0300d", 7)}
	for _, n := range names {
		d := simulator.DemoDevices()[0]
		d.Name, d.Id = n, ""
		if _, err := p.sim.AddDevice(d); err != nil {
			t.Fatalf("add %q at the edge: %v", n, err)
		}
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		var list v1alpha1.DeviceList
		if err := p.c.List(ctx, &list, client.InNamespace(p.ns)); err != nil {
			return err
		}
		byEdgeX := map[string]string{}
		for _, d := range list.Items {
			byEdgeX[v1alpha1.EdgeXName(&d)] = d.Name
		}
		for _, n := range names {
			if _, ok := byEdgeX[n]; !ok {
				return fmt.Errorf("EdgeX device %q not imported (have %v)", n, byEdgeX)
			}
		}
		return nil
	})
}
