package admission_test

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	alice := userWhoMayEditDevicesIn(ctx, t, "alice", mine)

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

// userWhoMayEditDevicesIn returns a client acting as user, who may read
// and write Devices in namespace ns and nothing else.
func userWhoMayEditDevicesIn(ctx context.Context, t *testing.T, user, ns string) client.Client {
	t.Helper()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "device-editor", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"devices"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch"},
		}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "device-editor-" + user, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := kube.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
	}
	cfg := rest.CopyConfig(kube.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// The API server's authorizer learns of the binding through a watch.
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		return c.List(ctx, &v1alpha1.DeviceList{}, client.InNamespace(ns))
	})
	return c
}
