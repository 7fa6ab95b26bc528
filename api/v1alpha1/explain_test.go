package v1alpha1_test

import (
	"context"
	"encoding/json"
	"testing"

	"k8s.io/client-go/discovery"
)

// `kubectl explain device.spec` reads the OpenAPI the apiserver publishes
// from the CRD, whose descriptions come from the Go comments. Every spec
// field a user edits must have one.
func TestKubectlExplainIsDocumented(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := dc.RESTClient().Get().AbsPath("/openapi/v3/apis/iot.openyurt.io/v1alpha1").Do(context.Background()).Raw()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Device", "DeviceService", "DeviceProfile"} {
		s, ok := doc.Components.Schemas["io.openyurt.iot.v1alpha1."+kind]
		if !ok {
			t.Fatalf("no OpenAPI schema for %s", kind)
		}
		if s.Description == "" {
			t.Errorf("%s has no description", kind)
		}
		spec := s.Properties["spec"]
		if len(spec.Properties) == 0 {
			t.Fatalf("%s.spec has no properties", kind)
		}
		for name, field := range spec.Properties {
			if field.Description == "" {
				t.Errorf("kubectl explain %s.spec.%s would show no description", kind, name)
			}
		}
	}
}

type schema struct {
	Description string            `json:"description"`
	Properties  map[string]schema `json:"properties"`
}
