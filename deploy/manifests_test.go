package deploy

import (
	"context"
	"fmt"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/edgebridge/edgebridge/hack/testenv"
)

// What each installation must contain, as Kind/name.
var (
	baseObjects = []string{
		"CustomResourceDefinition/devices.iot.openyurt.io",
		"CustomResourceDefinition/deviceservices.iot.openyurt.io",
		"CustomResourceDefinition/deviceprofiles.iot.openyurt.io",
		"Namespace/" + namespace,
		"ServiceAccount/edgebridge",
		"Role/edgebridge",
		"RoleBinding/edgebridge",
		"ClusterRole/edgebridge-node-reader",
		"ClusterRoleBinding/edgebridge-node-reader",
	}
	admissionObjects = []string{
		"ServiceAccount/edgebridge-admission",
		"ClusterRole/edgebridge-admission",
		"RoleBinding/edgebridge-admission",
		"Service/edgebridge-admission",
		"Deployment/edgebridge-admission",
		"Issuer/edgebridge-admission-selfsigned",
		"Certificate/edgebridge-admission",
		"ValidatingWebhookConfiguration/edgebridge-device-admission",
	}
)

// checkedStructurally are the kinds the test API server does not serve,
// and the test that checks them instead. OpenYurt's YurtAppSet is not
// among them: the test API server serves OpenYurt's own CRD.
var checkedStructurally = map[schema.GroupKind]string{
	{Group: "cert-manager.io", Kind: "Issuer"}:               "TestAdmissionComponentPartsFitTogether",
	{Group: "cert-manager.io", Kind: "Certificate"}:          "TestAdmissionComponentPartsFitTogether",
	{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}: "TestChartRendersServiceMonitorOnlyWithThePrometheusOperator",
}

func TestEveryKustomizationIsAcceptedByTheAPIServer(t *testing.T) {
	needNamespace(t)
	cases := []struct {
		v    variant
		want []string
	}{
		{variant{dir: "base"}, baseObjects},
		{variant{dir: "overlays/deployment"}, append(slices.Clone(baseObjects), "Deployment/edgebridge")},
		{variant{dir: "overlays/yurtappset"}, append(slices.Clone(baseObjects), "YurtAppSet/edgebridge")},
		{variant{dir: "overlays/deployment", admission: true},
			slices.Concat(baseObjects, []string{"Deployment/edgebridge"}, admissionObjects)},
		{variant{dir: "overlays/yurtappset", admission: true},
			slices.Concat(baseObjects, []string{"YurtAppSet/edgebridge"}, admissionObjects)},
	}
	if len(cases) != len(variants) {
		t.Fatalf("%d cases for %d variants: every variant needs its expected objects", len(cases), len(variants))
	}
	for _, tc := range cases {
		t.Run(tc.v.String(), func(t *testing.T) {
			objs := build(t, tc.v)
			installed := map[string]bool{}
			for _, o := range objs {
				installed[o.GetKind()+"/"+o.GetName()] = true
			}
			for _, w := range tc.want {
				if !installed[w] {
					t.Errorf("does not install %s", w)
				}
			}
			if len(objs) != len(tc.want) {
				t.Errorf("installs %d objects, want %d: %v", len(objs), len(tc.want), keys(installed))
			}
			ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
			defer cancel()
			for _, obj := range objs {
				if err := checkAgainstAPIServer(ctx, obj); err != nil {
					t.Errorf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
		})
	}
}

// checkAgainstAPIServer dry-runs obj when the API server serves its kind,
// and otherwise insists that a test checks it structurally. Either way the
// object must land where it belongs: namespaced ones in the bridge's
// namespace, cluster-scoped ones in none.
func checkAgainstAPIServer(ctx context.Context, obj *unstructured.Unstructured) error {
	namespaced, err := kube.Client.IsObjectNamespaced(obj)
	if meta.IsNoMatchError(err) {
		if _, ok := checkedStructurally[obj.GroupVersionKind().GroupKind()]; !ok {
			return fmt.Errorf("the API server does not know %s and no test checks it", obj.GroupVersionKind())
		}
		// Every such kind deploy/ uses (cert-manager's, the Prometheus
		// Operator's) is namespaced.
		namespaced = true
	} else if err != nil {
		return err
	}
	switch {
	case namespaced && obj.GetNamespace() != namespace:
		return fmt.Errorf("lands in namespace %q, want %q", obj.GetNamespace(), namespace)
	case !namespaced && obj.GetNamespace() != "":
		return fmt.Errorf("cluster-scoped, yet has namespace %q", obj.GetNamespace())
	}
	if meta.IsNoMatchError(err) {
		return nil
	}
	return dryRunApply(ctx, obj)
}

// TestBindingsGrantInstalledRolesToInstalledAccounts catches a binding that
// names a role or ServiceAccount (or its namespace) that the installation
// does not create: the API server accepts such a binding, and the bridge
// is then forbidden everything.
func TestBindingsGrantInstalledRolesToInstalledAccounts(t *testing.T) {
	for _, v := range variants {
		t.Run(v.String(), func(t *testing.T) {
			objs := build(t, v)
			has := func(kind, ns, name string) bool {
				return slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool {
					return o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name
				})
			}
			for _, o := range objs {
				var roleRef rbacv1.RoleRef
				var subjects []rbacv1.Subject
				switch o.GetKind() {
				case "RoleBinding":
					b := decode[rbacv1.RoleBinding](t, o)
					roleRef, subjects = b.RoleRef, b.Subjects
				case "ClusterRoleBinding":
					b := decode[rbacv1.ClusterRoleBinding](t, o)
					roleRef, subjects = b.RoleRef, b.Subjects
				default:
					continue
				}
				roleNS := ""
				if roleRef.Kind == "Role" {
					roleNS = o.GetNamespace()
				}
				if !has(roleRef.Kind, roleNS, roleRef.Name) {
					t.Errorf("%s %s grants %s %q, which is not installed", o.GetKind(), o.GetName(), roleRef.Kind, roleRef.Name)
				}
				for _, s := range subjects {
					ns := s.Namespace
					if ns == "" && o.GetKind() == "RoleBinding" {
						ns = o.GetNamespace()
					}
					if s.Kind != "ServiceAccount" || !has("ServiceAccount", ns, s.Name) {
						t.Errorf("%s %s binds %s %s/%s, which is not an installed ServiceAccount", o.GetKind(), o.GetName(), s.Kind, ns, s.Name)
					}
				}
			}
		})
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
