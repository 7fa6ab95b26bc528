package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

var kube *testenv.Kube

func TestMain(m *testing.M) {
	var err error
	kube, err = testenv.StartKube(testenv.KubeOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := kube.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop control plane:", err)
	}
	os.Exit(code)
}

func readSample(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return u
}

// Manifests written for yurt-iot-dock's CRDs must apply unchanged and read
// back exactly as written: same fields, same values, nothing dropped or added.
func TestUpstreamManifestsAreAcceptedAndRoundTrip(t *testing.T) {
	samples, err := filepath.Glob("testdata/upstream/*.yaml")
	if err != nil || len(samples) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	ns := kube.Namespace(t)
	for _, path := range samples {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ctx := context.Background()
			sent := readSample(t, path)
			sent.SetNamespace(ns)
			if err := kube.Client.Create(ctx, sent.DeepCopy()); err != nil {
				t.Fatalf("apiserver rejected an upstream manifest: %v", err)
			}
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(sent.GroupVersionKind())
			if err := kube.Client.Get(ctx, client.ObjectKeyFromObject(sent), got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sent.Object["spec"], got.Object["spec"]) {
				t.Errorf("spec changed on the way through the apiserver:\nsent %v\ngot  %v", sent.Object["spec"], got.Object["spec"])
			}
			for _, field := range []string{"labels", "annotations", "finalizers"} {
				want, _, _ := unstructured.NestedFieldNoCopy(sent.Object, "metadata", field)
				have, _, _ := unstructured.NestedFieldNoCopy(got.Object, "metadata", field)
				if !reflect.DeepEqual(want, have) {
					t.Errorf("metadata.%s changed: sent %v, got %v", field, want, have)
				}
			}
		})
	}
}

// The Go types must carry every field upstream manifests use: decoding a
// sample into them and encoding it again keeps every key and value.
func TestGoTypesKeepEveryUpstreamField(t *testing.T) {
	samples, _ := filepath.Glob("testdata/upstream/*.yaml")
	for _, path := range samples {
		t.Run(filepath.Base(path), func(t *testing.T) {
			sent := readSample(t, path)
			var typed interface{}
			switch sent.GetKind() {
			case "Device":
				typed = &v1alpha1.Device{}
			case "DeviceService":
				typed = &v1alpha1.DeviceService{}
			case "DeviceProfile":
				typed = &v1alpha1.DeviceProfile{}
			default:
				t.Fatalf("unknown kind %q", sent.GetKind())
			}
			raw, _ := json.Marshal(sent.Object)
			if err := json.Unmarshal(raw, typed); err != nil {
				t.Fatal(err)
			}
			again, _ := json.Marshal(typed)
			var back map[string]interface{}
			if err := json.Unmarshal(again, &back); err != nil {
				t.Fatal(err)
			}
			if missing := missingPaths("", sent.Object, back); len(missing) > 0 {
				t.Errorf("the Go types dropped or changed: %s", strings.Join(missing, ", "))
			}
		})
	}
}

// missingPaths lists the paths in want whose value is absent or different
// in have.
func missingPaths(prefix string, want, have interface{}) []string {
	switch w := want.(type) {
	case map[string]interface{}:
		h, ok := have.(map[string]interface{})
		if !ok {
			return []string{prefix}
		}
		var out []string
		for k, v := range w {
			out = append(out, missingPaths(prefix+"."+k, v, h[k])...)
		}
		return out
	case []interface{}:
		h, ok := have.([]interface{})
		if !ok || len(h) != len(w) {
			return []string{prefix}
		}
		var out []string
		for i := range w {
			out = append(out, missingPaths(fmt.Sprintf("%s[%d]", prefix, i), w[i], h[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(want, have) {
			return []string{prefix}
		}
		return nil
	}
}

// Invalid objects are refused at admission with a message that names the
// offending field.
func TestInvalidObjectsAreRejectedNamingTheField(t *testing.T) {
	ns := kube.Namespace(t)
	cases := []struct {
		name   string
		sample string
		mutate func(u map[string]interface{})
		want   []string
	}{{
		name:   "admin state outside the enum",
		sample: "device-minimal.yaml",
		mutate: func(u map[string]interface{}) { spec(u)["adminState"] = "SLEEPING" },
		want:   []string{"spec.adminState", "SLEEPING"},
	}, {
		name:   "operating state outside the enum",
		sample: "device-minimal.yaml",
		mutate: func(u map[string]interface{}) { spec(u)["operatingState"] = "up" },
		want:   []string{"spec.operatingState"},
	}, {
		name:   "device without nodePool",
		sample: "device-minimal.yaml",
		mutate: func(u map[string]interface{}) { delete(spec(u), "nodePool") },
		want:   []string{"spec.nodePool", "Required"},
	}, {
		name:   "service without nodePool",
		sample: "deviceservice-full.yaml",
		mutate: func(u map[string]interface{}) { delete(spec(u), "nodePool") },
		want:   []string{"spec.nodePool", "Required"},
	}, {
		name:   "profile without nodePool",
		sample: "deviceprofile-full.yaml",
		mutate: func(u map[string]interface{}) { delete(spec(u), "nodePool") },
		want:   []string{"spec.nodePool", "Required"},
	}, {
		name:   "device property key differs from its name",
		sample: "device-full.yaml",
		mutate: func(u map[string]interface{}) {
			props := spec(u)["deviceProperties"].(map[string]interface{})
			props["gpio_out_1"].(map[string]interface{})["name"] = "gpio_out_2"
		},
		want: []string{"spec.deviceProperties", "every key must equal its .name"},
	}, {
		name:   "notify of the wrong type",
		sample: "device-minimal.yaml",
		mutate: func(u map[string]interface{}) { spec(u)["notify"] = "yes" },
		want:   []string{"spec.notify"},
	}, {
		name:   "labels of the wrong type",
		sample: "device-minimal.yaml",
		mutate: func(u map[string]interface{}) { spec(u)["labels"] = "gpio" },
		want:   []string{"spec.labels"},
	}, {
		name:   "device without serviceName",
		sample: "device-minimal.yaml",
		mutate: func(u map[string]interface{}) { delete(spec(u), "serviceName") },
		want:   []string{"spec.serviceName", "Required"},
	}, {
		name:   "unknown value type",
		sample: "deviceprofile-full.yaml",
		mutate: func(u map[string]interface{}) { resource(u, 0)["valueType"] = "Int128" },
		want:   []string{"spec.deviceResources[0].properties.valueType", "Int128"},
	}, {
		name:   "minimum that is not a number",
		sample: "deviceprofile-full.yaml",
		mutate: func(u map[string]interface{}) { resource(u, 1)["minimum"] = "ten" },
		want:   []string{"spec.deviceResources[1].properties.minimum"},
	}, {
		name:   "readWrite outside the enum",
		sample: "deviceprofile-full.yaml",
		mutate: func(u map[string]interface{}) { resource(u, 0)["readWrite"] = "X" },
		want:   []string{"spec.deviceResources[0].properties.readWrite"},
	}}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := readSample(t, filepath.Join("testdata/upstream", tc.sample))
			u.SetNamespace(ns)
			u.SetName(fmt.Sprintf("invalid-%d", i))
			tc.mutate(u.Object)
			err := kube.Client.Create(context.Background(), u)
			if err == nil {
				t.Fatal("accepted an invalid object")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q: %v", w, err)
				}
			}
		})
	}
}

func TestNodePoolCannotChange(t *testing.T) {
	ctx := context.Background()
	ns := kube.Namespace(t)
	for _, sample := range []string{"device-minimal.yaml", "deviceservice-full.yaml", "deviceprofile-full.yaml"} {
		t.Run(sample, func(t *testing.T) {
			u := readSample(t, filepath.Join("testdata/upstream", sample))
			u.SetNamespace(ns)
			if err := kube.Client.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
			spec(u.Object)["nodePool"] = "shanghai"
			err := kube.Client.Update(ctx, u)
			if err == nil || !strings.Contains(err.Error(), "spec.nodePool is immutable") {
				t.Fatalf("moving an object to another pool: got %v, want an immutability error", err)
			}
		})
	}
}

func spec(u map[string]interface{}) map[string]interface{} {
	return u["spec"].(map[string]interface{})
}

func resource(u map[string]interface{}, i int) map[string]interface{} {
	return spec(u)["deviceResources"].([]interface{})[i].(map[string]interface{})["properties"].(map[string]interface{})
}

// Conditions are a map keyed by type: two writers applying their own
// condition with server-side apply both keep it, where an atomic list would
// let the second apply drop the first writer's entry.
func TestConditionsMergeUnderServerSideApply(t *testing.T) {
	ctx := context.Background()
	ns := kube.Namespace(t)
	for _, sample := range []string{"device-minimal.yaml", "deviceservice-full.yaml", "deviceprofile-full.yaml"} {
		t.Run(sample, func(t *testing.T) {
			u := readSample(t, filepath.Join("testdata/upstream", sample))
			u.SetNamespace(ns)
			if err := kube.Client.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
			apply := func(manager, conditionType string) {
				t.Helper()
				patch := &unstructured.Unstructured{Object: map[string]interface{}{
					"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(),
					"metadata": map[string]interface{}{"name": u.GetName(), "namespace": ns},
					"status": map[string]interface{}{"conditions": []interface{}{map[string]interface{}{
						"type": conditionType, "status": "True", "reason": "Applied", "lastTransitionTime": "2026-01-01T00:00:00Z",
					}}},
				}}
				if err := kube.Client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(patch), client.FieldOwner(manager), client.ForceOwnership); err != nil {
					t.Fatalf("apply %s's condition: %v", manager, err)
				}
			}
			apply("edgebridge", "Synced")
			apply("another-controller", "Reachable")

			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(u.GroupVersionKind())
			if err := kube.Client.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
				t.Fatal(err)
			}
			conditions, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			var types []string
			for _, c := range conditions {
				types = append(types, c.(map[string]interface{})["type"].(string))
			}
			if !reflect.DeepEqual(types, []string{"Synced", "Reachable"}) {
				t.Errorf("condition types after two appliers = %v, want [Synced Reachable]", types)
			}
		})
	}
}
