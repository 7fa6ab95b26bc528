package devicecontroller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// `kubectl get device -o wide` shows, per device, whether its desired
// values reached it, or why not: the PROPERTIES column, as the API server
// renders it for kubectl.
func TestWideListingShowsWhetherDesiredValuesAreInSync(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	commandDevice(p, "in-sync", simulator.ProfileGPIO)
	setDesired(p, "in-sync", "pin_17", "true")
	waitProperty(p, "in-sync", "pin_17", "Bool", "true")
	commandDevice(p, "locked", simulator.ProfileGPIO)
	update(p, &v1alpha1.Device{}, "locked", func(d *v1alpha1.Device) {
		d.Spec.AdminState = v1alpha1.Locked
		d.Spec.DeviceProperties = map[string]v1alpha1.DesiredPropertyState{"pin_17": {Name: "pin_17", DesiredValue: "true"}}
	})

	cfg := rest.CopyConfig(kube.Config)
	cfg.GroupVersion, cfg.APIPath = &v1alpha1.GroupVersion, "/apis"
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"in-sync": v1alpha1.ReasonInSync, "locked": v1alpha1.ReasonDeviceLocked}
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		raw, err := rc.Get().Namespace(p.ns).Resource("devices").
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
		if err != nil {
			return err
		}
		var table metav1.Table
		if err := json.Unmarshal(raw, &table); err != nil {
			return err
		}
		col := -1
		for i, c := range table.ColumnDefinitions {
			if c.Name == "PROPERTIES" && c.Priority == 1 { // priority 1: shown by -o wide
				col = i
			}
		}
		if col < 0 {
			return fmt.Errorf("no wide PROPERTIES column among %+v", table.ColumnDefinitions)
		}
		got := map[string]string{}
		for _, row := range table.Rows {
			var meta metav1.PartialObjectMetadata
			if err := json.Unmarshal(row.Object.Raw, &meta); err != nil {
				return err
			}
			got[meta.Name] = fmt.Sprint(row.Cells[col])
		}
		for name, reason := range want {
			if got[name] != reason {
				return fmt.Errorf("PROPERTIES of %s is %q, want %q", name, got[name], reason)
			}
		}
		return nil
	})
}
