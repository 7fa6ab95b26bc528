package admission_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller/admission"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// TestDeployedRBACIsEnoughAndNoMore runs the webhook's reads as the
// ServiceAccount of deploy/admission, with deploy/admission/rbac.yaml
// applied in the namespace the deployment uses: the profile cache and the
// live read work, and nothing else may be read.
func TestDeployedRBACIsEnoughAndNoMore(t *testing.T) {
	needKube(t)
	const ns = "edgebridge"
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
	defer cancel()
	mustCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	applyManifest(ctx, t, filepath.Join(testenv.RepoRoot(), "deploy", "admission", "rbac.yaml"), ns)
	mustCreate(t, capturedProfile(t, ns, poolA, profileName))

	cfg := rest.CopyConfig(kube.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":edgebridge-admission"}
	asWebhook, err := client.New(cfg, client.Options{Scheme: kube.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	profiles := startCache(ctx, t, cfg, admission.CacheOptions([]string{ns}))
	dev := device(ns, "lamp", poolA, profileName, map[string]string{"counter": "5000"})
	readers := []struct {
		name string
		v    *admission.Validator
	}{
		{"from the cache", &admission.Validator{Profiles: profiles, Namespaces: []string{ns}}},
		{"from the API server", &admission.Validator{Profiles: blindCache(ctx, t), Live: asWebhook, Namespaces: []string{ns}}},
	}
	for _, r := range readers {
		t.Run("reads profiles "+r.name, func(t *testing.T) {
			testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
				warnings, err := r.v.ValidateCreate(ctx, dev)
				return compareAnswer(warnings, err, "spec.deviceProperties[counter].desiredValue", "")
			})
		})
	}

	forbidden := []struct {
		name string
		list client.ObjectList
		opts []client.ListOption
	}{
		{"devices", &v1alpha1.DeviceList{}, []client.ListOption{client.InNamespace(ns)}},
		{"secrets", &corev1.SecretList{}, []client.ListOption{client.InNamespace(ns)}},
		{"profiles of another namespace", &v1alpha1.DeviceProfileList{}, []client.ListOption{client.InNamespace("default")}},
	}
	for _, f := range forbidden {
		t.Run("may not read "+f.name, func(t *testing.T) {
			if err := asWebhook.List(ctx, f.list, f.opts...); !apierrors.IsForbidden(err) {
				t.Errorf("list %s: %v, want forbidden", f.name, err)
			}
		})
	}
}

// applyManifest creates every object of a YAML file, namespaced ones in
// ns, as kustomize would place them.
func applyManifest(ctx context.Context, t *testing.T, path, ns string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		if namespaced, err := kube.Client.IsObjectNamespaced(obj); err != nil {
			t.Fatalf("%s: %s: %v", path, obj.GetKind(), err)
		} else if namespaced {
			obj.SetNamespace(ns)
		}
		if err := kube.Client.Create(ctx, obj); err != nil {
			t.Fatalf("%s: create %s %s: %v", path, obj.GetKind(), obj.GetName(), err)
		}
	}
}

// startCache starts a cache with the webhook's index, as cfg's user, and
// waits until it has synced.
func startCache(ctx context.Context, t *testing.T, cfg *rest.Config, opts cache.Options) cache.Cache {
	t.Helper()
	opts.Scheme = kube.Scheme
	c, err := cache.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := admission.IndexProfiles(ctx, c); err != nil {
		t.Fatal(err)
	}
	cacheCtx, stop := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- c.Start(cacheCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-stopped; err != nil {
			t.Errorf("cache: %v", err)
		}
	})
	if !c.WaitForCacheSync(ctx) {
		t.Fatalf("cache as %q never synced", cfg.Impersonate.UserName)
	}
	return c
}
