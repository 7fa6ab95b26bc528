package admission_test

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// Two teams share a node pool: the bridge serves both namespaces, and a
// user may edit devices only in her own. Through a putURL she must not
// reach the other team's device: admission refuses it, naming the field.
func TestPutURLCannotReachAnotherNamespacesDevice(t *testing.T) {
	needKube(t)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
	defer cancel()
	mine, theirs := kube.Namespace(t), kube.Namespace(t)
	for _, ns := range []string{mine, theirs} {
		mustCreate(t, capturedProfile(t, ns, poolA, profileName))
	}
	victim := device(theirs, "door-lock", poolA, profileName, map[string]string{"gpio_out_1": "false"})
	mustCreate(t, victim)
	alice := kube.DeviceEditor(t, "alice", mine)

	// The RBAC holds: she cannot edit the other team's device directly.
	victim.Spec.DeviceProperties["gpio_out_1"] = v1alpha1.DesiredPropertyState{Name: "gpio_out_1", DesiredValue: "true"}
	if err := alice.Update(ctx, victim); !apierrors.IsForbidden(err) {
		t.Fatalf("alice updated %s/%s: %v; the test's RBAC is wrong", theirs, victim.Name, err)
	}

	const victimURL = "http://edgex-core-command:59882/api/v3/device/name/door-lock/gpio_out_1"
	lamp := device(mine, "lamp", poolA, profileName, map[string]string{"gpio_out_1": "true"})
	lamp.Spec.DeviceProperties["gpio_out_1"] = v1alpha1.DesiredPropertyState{Name: "gpio_out_1", DesiredValue: "true", PutURL: victimURL}
	err := alice.Create(ctx, lamp.DeepCopy())
	expectRefused(t, err, []string{"spec.deviceProperties[gpio_out_1].putURL"},
		`it names device "door-lock", not this device's EdgeX name "lamp"`)

	// Her own device with its own putURL is hers to set; changing the
	// putURL to the victim's afterwards is refused as well.
	lamp.Spec.DeviceProperties["gpio_out_1"] = v1alpha1.DesiredPropertyState{Name: "gpio_out_1", DesiredValue: "true",
		PutURL: "http://edgex-core-command:59882/api/v3/device/name/lamp/gpio_out_1"}
	if err := alice.Create(ctx, lamp); err != nil {
		t.Fatalf("alice could not create her own device with its own putURL: %v", err)
	}
	p := lamp.Spec.DeviceProperties["gpio_out_1"]
	p.PutURL = victimURL
	lamp.Spec.DeviceProperties["gpio_out_1"] = p
	expectRefused(t, alice.Update(ctx, lamp), []string{"spec.deviceProperties[gpio_out_1].putURL"}, `it names device "door-lock"`)
}
