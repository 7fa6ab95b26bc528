package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/edgebridge/edgebridge/hack/testenv"
)

// chartValues are values given to the chart, as a values file holds them.
type chartValues map[string]any

// serviceMonitorAPI is what the chart asks the cluster for before it
// renders a ServiceMonitor.
const serviceMonitorAPI = "monitoring.coreos.com/v1/ServiceMonitor"

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helmBinary builds the Helm pinned in hack/tools/helm once per test run,
// as `make lint` runs it (go run of the same module).
func helmBinary(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		helmPath = filepath.Join(workDir, "helm")
		cmd := exec.CommandContext(ctx, "go", "build", "-modfile="+filepath.Join(testenv.RepoRoot(), "hack", "tools", "helm", "go.mod"),
			"-o", helmPath, "helm.sh/helm/v4/cmd/helm")
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			helmErr = fmt.Errorf("build the pinned helm: %w\n%s", err, out)
		}
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	return helmPath
}

// helmTemplate runs `helm template edgebridge deploy/helm/edgebridge -n
// edgebridge --include-crds` with the values and extra arguments given,
// returning what it prints or its error output.
func helmTemplate(t *testing.T, values chartValues, args ...string) ([]byte, error) {
	t.Helper()
	data, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	valuesFile := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(valuesFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	helm := helmBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all := append([]string{"template", "edgebridge", filepath.Join(testenv.RepoRoot(), "deploy", "helm", "edgebridge"),
		"--namespace", namespace, "--include-crds", "--values", valuesFile}, args...)
	cmd := exec.CommandContext(ctx, helm, all...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template: %w: %s", err, stderr.String())
	}
	return out, nil
}

// renderChart renders the chart and returns its objects, as `helm install`
// would send them.
func renderChart(t *testing.T, values chartValues, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helmTemplate(t, values, args...)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("helm template printed what is not YAML: %v", err)
		}
		// Through JSON, as kustomize's objects are, so that numbers are
		// what the API machinery expects.
		data, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("helm template printed what is not YAML: %v\n%s", err, doc)
		}
		if string(bytes.TrimSpace(data)) == "null" {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			t.Fatalf("helm template printed what is not an object: %v\n%s", err, doc)
		}
		objs = append(objs, obj)
	}
}

// chartVariant is one way to install the chart.
type chartVariant struct {
	name   string
	values chartValues
	args   []string
}

var deploymentValues = chartValues{"workload": map[string]any{"kind": "Deployment", "nodePool": "pool-a"}}

// chartVariants are the installations the chart's values offer.
var chartVariants = []chartVariant{
	{name: "defaults (YurtAppSet)"},
	{name: "Deployment", values: deploymentValues},
	{name: "YurtAppSet+admission", values: chartValues{"admission": map[string]any{"enabled": true}}},
	{name: "Deployment+admission", values: chartValues{
		"workload":  deploymentValues["workload"],
		"admission": map[string]any{"enabled": true},
	}},
	{name: "with the Prometheus Operator", args: []string{"--api-versions", serviceMonitorAPI}},
	{name: "EdgeX addresses and credentials from Secrets", values: chartValues{"edgex": map[string]any{
		"addressesSecret":       "edgex-addresses",
		"tokenSecret":           "edgex-token",
		"mqttCredentialsSecret": "edgex-mqtt",
	}}},
}

// TestChartIsAcceptedByTheAPIServer renders every variant of the chart with
// the pinned Helm and sends each object to the API server (strict
// server-side apply, dry run), OpenYurt's YurtAppSet included.
func TestChartIsAcceptedByTheAPIServer(t *testing.T) {
	needNamespace(t)
	for _, v := range chartVariants {
		t.Run(v.name, func(t *testing.T) {
			objs := renderChart(t, v.values, v.args...)
			ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
			defer cancel()
			// CRDs first, as Helm installs them.
			slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
				return boolToInt(b.GetKind() == "CustomResourceDefinition") - boolToInt(a.GetKind() == "CustomResourceDefinition")
			})
			for _, obj := range objs {
				if err := checkAgainstAPIServer(ctx, obj); err != nil {
					t.Errorf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
		})
	}
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestChartAndKustomizeInstallTheSameObjects keeps the two installations
// from drifting apart: the chart, with the values that mean what a
// kustomize overlay means, renders the overlay's objects field for field,
// less only the labels Helm adds (release, chart, version) and the
// Namespace, which Helm's --create-namespace makes. The CRDs are one
// generated set (`make generate` writes both copies, `make lint` checks).
func TestChartAndKustomizeInstallTheSameObjects(t *testing.T) {
	yasTweaks := func(t *testing.T) []any {
		yas := find(t, build(t, variant{dir: "overlays/yurtappset"}), "YurtAppSet", "edgebridge")
		tweaks, _, err := unstructured.NestedSlice(yas.Object, "spec", "workload", "workloadTweaks")
		if err != nil || len(tweaks) == 0 {
			t.Fatalf("the overlay's YurtAppSet has no workloadTweaks to compare (%v)", err)
		}
		return tweaks
	}
	cases := []struct {
		kustomize variant
		values    func(t *testing.T) chartValues
	}{
		{variant{dir: "overlays/deployment"}, func(*testing.T) chartValues { return deploymentValues }},
		{variant{dir: "overlays/deployment", admission: true}, func(*testing.T) chartValues {
			return chartValues{"workload": deploymentValues["workload"], "admission": map[string]any{"enabled": true}}
		}},
		{variant{dir: "overlays/yurtappset"}, func(t *testing.T) chartValues {
			return chartValues{"workload": map[string]any{"tweaks": yasTweaks(t)}}
		}},
		{variant{dir: "overlays/yurtappset", admission: true}, func(t *testing.T) chartValues {
			return chartValues{"workload": map[string]any{"tweaks": yasTweaks(t)}, "admission": map[string]any{"enabled": true}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.kustomize.String(), func(t *testing.T) {
			want := map[string]*unstructured.Unstructured{}
			for _, o := range build(t, tc.kustomize) {
				if o.GetKind() != "Namespace" {
					want[objectKey(o)] = withoutHelmLabels(o)
				}
			}
			got := map[string]*unstructured.Unstructured{}
			for _, o := range renderChart(t, tc.values(t)) {
				got[objectKey(o)] = withoutHelmLabels(o)
			}
			for key, w := range want {
				g, ok := got[key]
				if !ok {
					t.Errorf("the chart does not install %s", key)
					continue
				}
				if !equality.Semantic.DeepEqual(w.Object, g.Object) {
					t.Errorf("%s differs; first difference (kustomize, then chart):\n%s", key, firstDifference(asJSON(w.Object), asJSON(g.Object)))
				}
			}
			for key := range got {
				if _, ok := want[key]; !ok {
					t.Errorf("the chart installs %s, which kustomize does not", key)
				}
			}
		})
	}
}

func objectKey(o *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
}

// helmLabels are the labels the chart adds to kustomize's, wherever labels
// are: on objects, pod templates and in selectors.
var helmLabels = []string{"app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"}

func withoutHelmLabels(o *unstructured.Unstructured) *unstructured.Unstructured {
	o = o.DeepCopy()
	var strip func(v any)
	strip = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, l := range helmLabels {
				delete(v, l)
			}
			for _, e := range v {
				strip(e)
			}
		case []any:
			for _, e := range v {
				strip(e)
			}
		}
	}
	strip(o.Object)
	if len(o.GetLabels()) == 0 {
		unstructured.RemoveNestedField(o.Object, "metadata", "labels")
	}
	return o
}

// TestChartRendersServiceMonitorOnlyWithThePrometheusOperator checks that
// the ServiceMonitor appears exactly where the cluster serves its API, and
// that it reaches the bridges' metrics port through its Service.
func TestChartRendersServiceMonitorOnlyWithThePrometheusOperator(t *testing.T) {
	kinds := func(objs []*unstructured.Unstructured) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.GetKind()+"/"+o.GetName())
		}
		return out
	}
	if without := kinds(renderChart(t, nil)); slices.Contains(without, "ServiceMonitor/edgebridge") || slices.Contains(without, "Service/edgebridge-metrics") {
		t.Errorf("without %s the chart renders %v", serviceMonitorAPI, without)
	}
	if off := kinds(renderChart(t, chartValues{"serviceMonitor": map[string]any{"enabled": false}}, "--api-versions", serviceMonitorAPI)); slices.Contains(off, "ServiceMonitor/edgebridge") {
		t.Errorf("serviceMonitor.enabled=false, yet the chart renders %v", off)
	}
	for _, kind := range []string{"Deployment", "YurtAppSet"} {
		t.Run(kind, func(t *testing.T) {
			values := chartValues{"workload": map[string]any{"kind": kind, "nodePool": "pool-a"}}
			objs := renderChart(t, values, "--api-versions", serviceMonitorAPI)
			sm := find(t, objs, "ServiceMonitor", "edgebridge")
			svc := decode[corev1.Service](t, find(t, objs, "Service", "edgebridge-metrics"))
			var pod corev1.PodTemplateSpec
			if kind == "Deployment" {
				pod = decode[appsv1.Deployment](t, find(t, objs, "Deployment", "edgebridge")).Spec.Template
			} else {
				pod = decodeYurtAppSet(t, find(t, objs, "YurtAppSet", "edgebridge")).Spec.Workload.WorkloadTemplate.DeploymentTemplate.Spec.Template
			}
			if err := serviceMonitorReachesMetrics(sm, svc, pod); err != nil {
				t.Error(err)
			}
		})
	}
}

// serviceMonitor is what the chart uses of the Prometheus Operator's
// monitoring.coreos.com/v1 ServiceMonitor.
type serviceMonitor struct {
	Spec struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port string `json:"port"`
			Path string `json:"path"`
		} `json:"endpoints"`
	} `json:"spec"`
}

func serviceMonitorReachesMetrics(smObj *unstructured.Unstructured, svc *corev1.Service, pod corev1.PodTemplateSpec) error {
	var sm serviceMonitor
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(smObj.Object, &sm); err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		return err
	}
	if !sel.Matches(labels.Set(svc.Labels)) || !slices.Contains(sm.Spec.NamespaceSelector.MatchNames, svc.Namespace) {
		return fmt.Errorf("ServiceMonitor selects %s in %v; the Service is labelled %v in %s", sel, sm.Spec.NamespaceSelector.MatchNames, svc.Labels, svc.Namespace)
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
		return fmt.Errorf("Service selector %v does not select the bridge's pods %v", svc.Spec.Selector, pod.Labels)
	}
	metricsPort, err := listenPort(pod, "metrics-bind-address", "8080")
	if err != nil {
		return err
	}
	for _, ep := range sm.Spec.Endpoints {
		i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port })
		if i < 0 {
			return fmt.Errorf("endpoint port %q is not a port of the Service", ep.Port)
		}
		if got := containerPort(&pod.Spec.Containers[0], svc.Spec.Ports[i].TargetPort); got != metricsPort {
			return fmt.Errorf("endpoint reaches container port %d; the bridge serves metrics on %d", got, metricsPort)
		}
		if ep.Path != "/metrics" {
			return fmt.Errorf("endpoint path %q, the bridge serves /metrics", ep.Path)
		}
	}
	if len(sm.Spec.Endpoints) == 0 {
		return fmt.Errorf("no endpoints")
	}
	return nil
}

// TestChartTakesEdgeXFromSecrets checks that addresses and credentials put
// in Secrets reach the bridge: addresses through the environment (which
// the kubelet expands in the arguments), credentials as mounted files the
// bridge's flags name.
func TestChartTakesEdgeXFromSecrets(t *testing.T) {
	objs := renderChart(t, chartVariants[5].values)
	pod := decodeYurtAppSet(t, find(t, objs, "YurtAppSet", "edgebridge")).Spec.Workload.WorkloadTemplate.DeploymentTemplate.Spec.Template
	c := pod.Spec.Containers[0]
	for flagName, env := range map[string]string{
		"core-metadata-url": "EDGEX_CORE_METADATA_URL", "core-command-url": "EDGEX_CORE_COMMAND_URL", "mqtt-broker": "EDGEX_MQTT_BROKER",
	} {
		if arg, _ := flagArg(pod, flagName); arg != "--"+flagName+"=$("+env+")" {
			t.Errorf("%s, want --%s=$(%s)", arg, flagName, env)
		}
		i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == env })
		if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.SecretKeyRef == nil || c.Env[i].ValueFrom.SecretKeyRef.Name != "edgex-addresses" {
			t.Errorf("%s is not taken from Secret edgex-addresses", env)
		}
	}
	for flagName, secret := range map[string]string{
		"edgex-token-file": "edgex-token", "mqtt-username-file": "edgex-mqtt", "mqtt-password-file": "edgex-mqtt",
	} {
		arg, ok := flagArg(pod, flagName)
		if !ok {
			t.Errorf("no --%s", flagName)
			continue
		}
		file := strings.TrimPrefix(arg, "--"+flagName+"=")
		if !fileFromSecret(pod, file, secret) {
			t.Errorf("--%s names %s, which is not mounted from Secret %s", flagName, file, secret)
		}
	}
	for _, check := range bridgePodChecks {
		if err := check.check(pod); err != nil {
			t.Errorf("%s: %v", check.name, err)
		}
	}
}

// fileFromSecret tells whether file lies in a directory mounted from secret.
func fileFromSecret(pod corev1.PodTemplateSpec, file, secret string) bool {
	for _, m := range pod.Spec.Containers[0].VolumeMounts {
		if filepath.Dir(file) != m.MountPath {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == secret {
				return true
			}
		}
	}
	return false
}

// TestChartRefusesValuesItCannotInstall: bad values fail at render time
// with a message naming the value, never as a half-working installation.
func TestChartRefusesValuesItCannotInstall(t *testing.T) {
	cases := []struct {
		name   string
		values chartValues
		want   string
	}{
		{"a Deployment without its pool", chartValues{"workload": map[string]any{"kind": "Deployment"}}, "workload.nodePool"},
		{"an unknown workload kind", chartValues{"workload": map[string]any{"kind": "DaemonSet"}}, "workload.kind"},
		{"a YurtAppSet that selects no pool", chartValues{"workload": map[string]any{"nodepoolSelector": nil}}, "workload.nodepoolSelector"},
		{"no EdgeX address", chartValues{"edgex": map[string]any{"coreMetadataURL": ""}}, "edgex.coreMetadataURL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helmTemplate(t, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
