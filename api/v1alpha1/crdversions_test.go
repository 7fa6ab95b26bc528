package v1alpha1_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The CRDs apply on every supported Kubernetes version, and what an older
// API server drops from them is only what the bridge does without:
// selectableFields (Kubernetes 1.31; the bridge then selects by label).
// Every CEL rule, which guards spec.nodePool's immutability among others,
// is kept (CEL is on by default since 1.25), and so is every schema.
func TestCRDsKeepWhatTheBridgeNeedsOnThisAPIServer(t *testing.T) {
	minor := kube.ServerMinor(t)
	files, err := filepath.Glob("../../deploy/crds/iot.openyurt.io_*.yaml")
	if err != nil || len(files) != 3 {
		t.Fatalf("want the three CRDs: %v %v", files, err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			sent := readSample(t, path)
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(sent.GroupVersionKind())
			ctx := context.Background()
			if err := kube.Client.Get(ctx, client.ObjectKeyFromObject(sent), got); err != nil {
				t.Fatal(err)
			}
			sentVersion := onlyVersion(t, sent)
			gotVersion := onlyVersion(t, got)
			_, selectable := gotVersion["selectableFields"]
			if want := minor >= 31; selectable != want {
				t.Errorf("selectableFields kept: %v, want %v on Kubernetes 1.%d", selectable, want, minor)
			}
			for _, field := range []string{"schema", "subresources", "additionalPrinterColumns"} {
				if a, b := asJSON(t, sentVersion[field]), asJSON(t, gotVersion[field]); a != b {
					t.Errorf("the API server changed %s:\nsent %s\ngot  %s", field, a, b)
				}
			}
		})
	}
}

func onlyVersion(t *testing.T, crd *unstructured.Unstructured) map[string]interface{} {
	t.Helper()
	versions, _, err := unstructured.NestedSlice(crd.Object, "spec", "versions")
	if err != nil || len(versions) != 1 {
		t.Fatalf("want one version: %v %v", versions, err)
	}
	return versions[0].(map[string]interface{})
}

// asJSON compares what YAML and the API server decode differently (numbers).
func asJSON(t *testing.T, v interface{}) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
