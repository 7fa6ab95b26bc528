package devicecontroller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// Two teams share a node pool, and the bridge serves both namespaces. A
// user who may edit devices only in her namespace sets, on her own device,
// a putURL naming the other team's device. Admission refuses that (see the
// admission package); here the object got in anyway (the webhook was down,
// or the object predates it), and the bridge must not follow the URL: the
// other team's device gets nothing, and her property says why, with an
// Event.
func TestPutURLNamingAnotherDeviceIsNeverFollowed(t *testing.T) {
	theirs := kube.Namespace(t)
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.Namespaces = append(o.Namespaces, theirs)
	}})
	w := recordWrites(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
	defer cancel()

	victim := managedDevice(p, "door-lock", simulator.DemoServiceName, simulator.ProfileGPIO)
	victim.Namespace = theirs
	if err := p.c.Create(ctx, victim); err != nil {
		t.Fatal(err)
	}
	alice := kube.DeviceEditor(t, "alice", p.ns)
	if err := alice.Delete(ctx, victim); !apierrors.IsForbidden(err) {
		t.Fatalf("alice could delete %s/%s (%v): the test's RBAC is wrong", theirs, victim.Name, err)
	}

	cases := []struct{ name, putURL, says string }{
		{"another namespace's device", p.sim.CommandURL() + "/api/v3/device/name/door-lock/pin_17",
			`it names device "door-lock", not this device's EdgeX name "lamp-0"`},
		{"another resource of her own device", p.sim.CommandURL() + "/api/v3/device/name/lamp-1/pin_18",
			`it names command "pin_18", not the property's resource "pin_17"`},
		{"another core-command", "http://203.0.113.7:59882/api/v3/device/name/lamp-2/pin_17",
			"not this node pool's core-command"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lamp := managedDevice(p, fmt.Sprintf("lamp-%d", i), simulator.DemoServiceName, simulator.ProfileGPIO)
			lamp.Spec.DeviceProperties = map[string]v1alpha1.DesiredPropertyState{
				"pin_17": {Name: "pin_17", DesiredValue: "true", PutURL: tc.putURL},
			}
			if err := alice.Create(ctx, lamp); err != nil {
				t.Fatalf("alice creates her device: %v", err)
			}
			waitFor(p, &v1alpha1.Device{}, lamp.Name, func(d *v1alpha1.Device) error {
				st := d.Status.DeviceProperties["pin_17"]
				last := st.LastCommand
				if last == nil || last.Result != v1alpha1.CommandBlocked || last.Reason != v1alpha1.ReasonInvalidPutURL ||
					!strings.Contains(last.Message, tc.says) {
					return fmt.Errorf("pin_17 last command %+v, want blocked as %s saying %q", last, v1alpha1.ReasonInvalidPutURL, tc.says)
				}
				if st.PutURL == tc.putURL {
					return fmt.Errorf("status shows the refused putURL as where commands go")
				}
				return reason(d.Status.Conditions, v1alpha1.ConditionPropertiesSynced, v1alpha1.ReasonInvalidPutURL)
			})
			waitForEvent(t, p, v1alpha1.ReasonInvalidPutURL)
		})
	}
	for i := range cases {
		if got := w.to(fmt.Sprintf("lamp-%d", i), "pin_17"); len(got) != 0 {
			t.Fatalf("commands went out for a refused putURL: %+v", got)
		}
	}
	if got := append(w.to("door-lock", "pin_17"), w.to("lamp-1", "pin_18")...); len(got) != 0 {
		t.Fatalf("commands reached what refused putURLs named: %+v", got)
	}
	// Once she fixes the putURL, her own device is commanded.
	update(p, &v1alpha1.Device{}, "lamp-0", func(d *v1alpha1.Device) {
		d.Spec.DeviceProperties["pin_17"] = v1alpha1.DesiredPropertyState{Name: "pin_17", DesiredValue: "true",
			PutURL: p.sim.CommandURL() + "/api/v3/device/name/lamp-0/pin_17"}
	})
	waitProperty(p, "lamp-0", "pin_17", "Bool", "true")
	if n := len(w.to("door-lock", "pin_17")); n != 0 {
		t.Fatalf("%d commands reached the other team's device", n)
	}
}
