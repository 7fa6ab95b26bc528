package deploy

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/edgebridge/edgebridge/hack/testenv"
)

// variant is one way to install the bridge: a kustomization of deploy/,
// with the admission component added the way its kustomization.yaml tells
// users to add it.
type variant struct {
	dir       string
	admission bool
}

func (v variant) String() string {
	if v.admission {
		return v.dir + "+admission"
	}
	return v.dir
}

// variants are every installation deploy/ offers.
var variants = []variant{
	{dir: "base"},
	{dir: "overlays/deployment"},
	{dir: "overlays/yurtappset"},
	{dir: "overlays/deployment", admission: true},
	{dir: "overlays/yurtappset", admission: true},
}

// memRoot is where the in-memory copy of deploy/ lives.
const memRoot = "/deploy"

// build runs kustomize in process over an in-memory copy of deploy/ and
// returns the objects it emits, as `kubectl apply -k` would send them.
func build(t *testing.T, v variant) []*unstructured.Unstructured {
	t.Helper()
	fs := copyDeployTree(t)
	dir := path.Join(memRoot, v.dir)
	if v.admission {
		addAdmissionComponent(t, fs, dir)
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", v, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range resources.Resources() {
		// Through JSON, so that numbers are what the API machinery expects.
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("kustomize build %s: %s: %v", v, r.CurId(), err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			t.Fatalf("kustomize build %s: %s: %v", v, r.CurId(), err)
		}
		out = append(out, obj)
	}
	return out
}

// copyDeployTree copies deploy/ (its manifests, not its tests) into memory,
// so that a variant can change a kustomization without touching the tree.
func copyDeployTree(t *testing.T) filesys.FileSystem {
	t.Helper()
	src := filepath.Join(testenv.RepoRoot(), "deploy")
	fs := filesys.MakeFsInMemory()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return fs.WriteFile(path.Join(memRoot, filepath.ToSlash(rel)), data)
	})
	if err != nil {
		t.Fatalf("copy deploy/: %v", err)
	}
	return fs
}

// addAdmissionComponent lists deploy/admission under the kustomization's
// components, as deploy/admission/kustomization.yaml tells users to.
func addAdmissionComponent(t *testing.T, fs filesys.FileSystem, dir string) {
	t.Helper()
	file := path.Join(dir, "kustomization.yaml")
	data, err := fs.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	k := map[string]any{}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	rel, err := filepath.Rel(dir, path.Join(memRoot, "admission"))
	if err != nil {
		t.Fatal(err)
	}
	components, _ := k["components"].([]any)
	k["components"] = append(components, filepath.ToSlash(rel))
	if data, err = yaml.Marshal(k); err != nil {
		t.Fatal(err)
	}
	if err := fs.WriteFile(file, data); err != nil {
		t.Fatal(err)
	}
}

// find returns the emitted object of that kind and name, or fails the test.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %q among the built objects", kind, name)
	return nil
}

// decode converts an emitted object into its typed form.
func decode[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// dryRunApply sends obj to the API server as `kubectl apply --server-side
// --dry-run=server --validate=strict` would: validated against its schema
// (OpenYurt's own for a YurtAppSet), defaulted and admitted, never stored.
// Strict field validation refuses a field the schema does not know, which
// the API server would otherwise prune with only a warning.
func dryRunApply(ctx context.Context, obj *unstructured.Unstructured) error {
	return serverSideApply(ctx, obj, true)
}

// apply stores obj for real, for the tests that run the bridge under it.
func apply(ctx context.Context, obj *unstructured.Unstructured) error {
	return serverSideApply(ctx, obj, false)
}

func serverSideApply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	gvk := obj.GroupVersionKind()
	mapping, err := kube.Client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(kube.Config)
	if err != nil {
		return err
	}
	var res dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		res = dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{
		FieldManager:    "edgebridge-deploy-test",
		Force:           ptr.To(true),
		FieldValidation: metav1.FieldValidationStrict,
	}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = res.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	return err
}
