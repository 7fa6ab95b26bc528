package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/edgebridge/edgebridge/hack/testenv"
)

// yurtAppSet is what these tests read of a YurtAppSet. It validates
// nothing: the API server does, against OpenYurt's own CRD (see
// TestYurtAppSetsFitOpenYurtsSchema).
type yurtAppSet struct {
	Spec struct {
		NodePoolSelector *metav1.LabelSelector `json:"nodepoolSelector,omitempty"`
		Pools            []string              `json:"pools,omitempty"`
		Workload         struct {
			WorkloadTemplate struct {
				StatefulSetTemplate json.RawMessage     `json:"statefulSetTemplate,omitempty"`
				DeploymentTemplate  *deploymentTemplate `json:"deploymentTemplate,omitempty"`
			} `json:"workloadTemplate"`
			WorkloadTweaks []workloadTweak `json:"workloadTweaks,omitempty"`
		} `json:"workload"`
	} `json:"spec"`
}

type deploymentTemplate struct {
	Metadata metav1.ObjectMeta     `json:"metadata,omitempty"`
	Spec     appsv1.DeploymentSpec `json:"spec"`
}

type workloadTweak struct {
	NodePoolSelector *metav1.LabelSelector `json:"nodepoolSelector,omitempty"`
	Pools            []string              `json:"pools,omitempty"`
	Tweaks           struct {
		Patches []struct {
			Path      string          `json:"path"`
			Operation string          `json:"operation"`
			Value     json.RawMessage `json:"value,omitempty"`
		} `json:"patches,omitempty"`
	} `json:"tweaks"`
}

func decodeYurtAppSet(t *testing.T, u *unstructured.Unstructured) *yurtAppSet {
	t.Helper()
	if u.GetAPIVersion() != "apps.openyurt.io/v1beta1" {
		t.Fatalf("YurtAppSet is %s; OpenYurt stores and these tests read v1beta1", u.GetAPIVersion())
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	yas := &yurtAppSet{}
	if err := json.Unmarshal(data, yas); err != nil {
		t.Fatalf("YurtAppSet %s: %v", u.GetName(), err)
	}
	return yas
}

// everyYurtAppSet is each YurtAppSet deploy/ installs: the kustomize
// overlay's and the chart's (with a tweak, so that one is checked too).
func everyYurtAppSet(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	return map[string]*unstructured.Unstructured{
		"kustomize overlays/yurtappset": find(t, build(t, variant{dir: "overlays/yurtappset"}), "YurtAppSet", "edgebridge"),
		"helm chart": find(t, renderChart(t, chartValues{
			"workload": map[string]any{"tweaks": []any{map[string]any{
				"pools":  []any{"beijing"},
				"tweaks": map[string]any{"replicas": int64(2)},
			}}},
		}), "YurtAppSet", "edgebridge"),
	}
}

// TestYurtAppSetsFitOpenYurtsSchema applies every YurtAppSet deploy/
// installs, kustomize's and the chart's, to an API server that serves
// OpenYurt's own YurtAppSet and NodePool CRDs, with server-side apply and
// strict field validation, and shows that a misspelled field is refused
// there: the check can fail.
func TestYurtAppSetsFitOpenYurtsSchema(t *testing.T) {
	needNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
	defer cancel()
	for name, yas := range everyYurtAppSet(t) {
		t.Run(name, func(t *testing.T) {
			if err := dryRunApply(ctx, yas); err != nil {
				t.Fatalf("OpenYurt's schema refuses it: %v", err)
			}
		})
	}

	misspelled := []struct {
		name string
		edit func(spec map[string]any)
	}{
		{"nodePoolSelector for nodepoolSelector", func(spec map[string]any) {
			spec["nodePoolSelector"] = spec["nodepoolSelector"]
			delete(spec, "nodepoolSelector")
		}},
		{"workloadTweak for workloadTweaks", func(spec map[string]any) {
			w := spec["workload"].(map[string]any)
			w["workloadTweak"] = []any{map[string]any{"pools": []any{"beijing"}, "tweaks": map[string]any{}}}
		}},
		{"a patch operation OpenYurt does not know", func(spec map[string]any) {
			w := spec["workload"].(map[string]any)
			w["workloadTweaks"] = []any{map[string]any{"pools": []any{"beijing"}, "tweaks": map[string]any{
				"patches": []any{map[string]any{"path": "/spec/replicas", "operation": "set", "value": int64(2)}},
			}}}
		}},
	}
	base := find(t, build(t, variant{dir: "overlays/yurtappset"}), "YurtAppSet", "edgebridge")
	for _, m := range misspelled {
		t.Run("refuses "+m.name, func(t *testing.T) {
			yas := base.DeepCopy()
			spec, _, _ := unstructured.NestedMap(yas.Object, "spec")
			m.edit(spec)
			if err := unstructured.SetNestedMap(yas.Object, spec, "spec"); err != nil {
				t.Fatal(err)
			}
			if err := dryRunApply(ctx, yas); err == nil {
				t.Error("the API server accepted it")
			} else {
				t.Logf("refused as it should be: %v", err)
			}
		})
	}

	t.Run("selects a NodePool labelled as the README says", func(t *testing.T) {
		pool := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps.openyurt.io/v1beta1", "kind": "NodePool",
			"metadata": map[string]any{"name": poolName, "labels": map[string]any{"edgebridge.io/edgex": "true"}},
			"spec":     map[string]any{"type": "Edge"},
		}}
		if err := dryRunApply(ctx, pool); err != nil {
			t.Fatalf("OpenYurt's NodePool schema refuses the pool: %v", err)
		}
		for name, u := range everyYurtAppSet(t) {
			sel, err := metav1.LabelSelectorAsSelector(decodeYurtAppSet(t, u).Spec.NodePoolSelector)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !sel.Matches(labels.Set(pool.GetLabels())) {
				t.Errorf("%s: nodepoolSelector %s does not select NodePool %s labelled %v", name, sel, poolName, pool.GetLabels())
			}
		}
	})
}

// TestYurtAppSetRunsTheBridgeOfTheDeploymentInEveryPool checks what the
// bridge relies on in the YurtAppSet, which OpenYurt's schema leaves open
// (its deploymentTemplate is free-form): its Deployment is dry-run as a plain Deployment, each pool
// tweak is applied and dry-run too, and its pod template equals the plain
// Deployment overlay's except for --nodepool, so the two cannot drift apart.
func TestYurtAppSetRunsTheBridgeOfTheDeploymentInEveryPool(t *testing.T) {
	needNamespace(t)
	yasObj := find(t, build(t, variant{dir: "overlays/yurtappset"}), "YurtAppSet", "edgebridge")
	yas := decodeYurtAppSet(t, yasObj)
	tmpl := yas.Spec.Workload.WorkloadTemplate.DeploymentTemplate
	if tmpl == nil || yas.Spec.Workload.WorkloadTemplate.StatefulSetTemplate != nil {
		t.Fatal("the workload template must be a deploymentTemplate, and only that")
	}
	plain := decode[appsv1.Deployment](t, find(t, build(t, variant{dir: "overlays/deployment"}), "Deployment", "edgebridge"))
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
	defer cancel()

	t.Run("selects node pools", func(t *testing.T) {
		sel := yas.Spec.NodePoolSelector
		if len(yas.Spec.Pools) == 0 && (sel == nil || len(sel.MatchLabels)+len(sel.MatchExpressions) == 0) {
			t.Error("neither nodepoolSelector nor pools: the YurtAppSet would run in no pool (or, with an empty selector, in every pool)")
		}
	})
	t.Run("finds its pool from its node, with no --nodepool", func(t *testing.T) {
		if arg, ok := flagArg(tmpl.Spec.Template, "nodepool"); ok {
			t.Errorf("template passes %s: every pool's copy would serve that one pool", arg)
		}
	})
	t.Run("pod template equals the Deployment overlay's but for --nodepool", func(t *testing.T) {
		want := plain.Spec.Template.DeepCopy()
		bridgeContainer(t, want).Args = slices.DeleteFunc(bridgeContainer(t, want).Args, isFlag("nodepool"))
		if !equality.Semantic.DeepEqual(*want, tmpl.Spec.Template) {
			t.Errorf("the pod templates drifted apart; first difference (Deployment overlay without --nodepool, then YurtAppSet):\n%s",
				firstDifference(asJSON(want), asJSON(tmpl.Spec.Template)))
		}
		if !equality.Semantic.DeepEqual(plain.Spec.Selector, tmpl.Spec.Selector) {
			t.Errorf("selector %s, Deployment overlay's %s", asJSON(tmpl.Spec.Selector), asJSON(plain.Spec.Selector))
		}
	})
	t.Run("the API server accepts its Deployment", func(t *testing.T) {
		if err := dryRunApply(ctx, poolDeployment(t, yasObj, nil)); err != nil {
			t.Error(err)
		}
	})
	for i, tw := range yas.Spec.Workload.WorkloadTweaks {
		t.Run(fmt.Sprintf("tweak %d for %v", i, tw.Pools), func(t *testing.T) {
			if len(tw.Pools) == 0 && tw.NodePoolSelector == nil {
				t.Error("a tweak that names no pool applies to none")
			}
			dep := poolDeployment(t, yasObj, &tw)
			if err := dryRunApply(ctx, dep); err != nil {
				t.Errorf("the API server refuses the tweaked Deployment: %v", err)
			}
			tweaked := decode[appsv1.Deployment](t, dep)
			if arg, ok := flagArg(tweaked.Spec.Template, "nodepool"); ok {
				t.Errorf("tweaked template passes %s", arg)
			}
			for _, c := range bridgePodChecks {
				if err := c.check(tweaked.Spec.Template); err != nil {
					t.Errorf("after the tweak, %s: %v", c.name, err)
				}
			}
		})
	}
}

// TestBridgeWorkloadsGiveTheBridgeWhatItNeeds checks both workloads that run
// the bridge against what it relies on at run time.
func TestBridgeWorkloadsGiveTheBridgeWhatItNeeds(t *testing.T) {
	yas := decodeYurtAppSet(t, find(t, build(t, variant{dir: "overlays/yurtappset"}), "YurtAppSet", "edgebridge"))
	plain := decode[appsv1.Deployment](t, find(t, build(t, variant{dir: "overlays/deployment"}), "Deployment", "edgebridge"))
	workloads := []struct {
		name string
		pod  corev1.PodTemplateSpec
	}{
		{"YurtAppSet", yas.Spec.Workload.WorkloadTemplate.DeploymentTemplate.Spec.Template},
		{"Deployment", plain.Spec.Template},
	}
	for _, w := range workloads {
		for _, c := range bridgePodChecks {
			t.Run(w.name+"/"+c.name, func(t *testing.T) {
				if err := c.check(w.pod); err != nil {
					t.Error(err)
				}
			})
		}
	}
	t.Run("Deployment/serves the pool set by --nodepool", func(t *testing.T) {
		if arg, ok := flagArg(plain.Spec.Template, "nodepool"); !ok || arg == "--nodepool=" {
			t.Error("the plain Deployment has no node pool to discover from: it needs --nodepool=<pool>")
		}
	})
}

// bridgePodChecks are what the bridge needs of the pod it runs in.
var bridgePodChecks = []struct {
	name  string
	check func(corev1.PodTemplateSpec) error
}{
	{"runs the bridge as its first container, which tweaks patch", func(p corev1.PodTemplateSpec) error {
		if len(p.Spec.Containers) == 0 || p.Spec.Containers[0].Name != "devicecontroller" {
			return fmt.Errorf("the first container is not devicecontroller")
		}
		return nil
	}},
	{"runs as ServiceAccount edgebridge", func(p corev1.PodTemplateSpec) error {
		if p.Spec.ServiceAccountName != "edgebridge" {
			return fmt.Errorf("serviceAccountName %q: the RBAC in deploy/base is bound to edgebridge", p.Spec.ServiceAccountName)
		}
		return nil
	}},
	{"learns its node from spec.nodeName", func(p corev1.PodTemplateSpec) error {
		return envFromField(p, "NODE_NAME", "spec.nodeName")
	}},
	{"watches its own namespace", func(p corev1.PodTemplateSpec) error {
		return envFromField(p, "POD_NAMESPACE", "metadata.namespace")
	}},
	{"names its pod in its leader beacon, so that a restart in place may lead during a cloud outage", func(p corev1.PodTemplateSpec) error {
		return envFromField(p, "POD_NAME", "metadata.name")
	}},
	{"is told where EdgeX is", func(p corev1.PodTemplateSpec) error {
		for _, f := range []string{"core-metadata-url", "core-command-url", "mqtt-broker"} {
			if arg, ok := flagArg(p, f); !ok || arg == "--"+f+"=" {
				return fmt.Errorf("no --%s", f)
			}
		}
		return nil
	}},
	{"is probed on /healthz and /readyz where it serves them", checkProbes},
	{"is scraped where it serves metrics", checkScrape},
	{"runs as non-root with a read-only root filesystem", checkHardening},
}

func checkProbes(p corev1.PodTemplateSpec) error {
	if len(p.Spec.Containers) == 0 {
		return fmt.Errorf("no container")
	}
	c := &p.Spec.Containers[0]
	port, err := listenPort(p, "health-probe-bind-address", "8081")
	if err != nil {
		return err
	}
	probes := []struct {
		kind, path string
		probe      *corev1.Probe
	}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}}
	for _, pr := range probes {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			return fmt.Errorf("no HTTP %s probe", pr.kind)
		}
		if pr.probe.HTTPGet.Path != pr.path {
			return fmt.Errorf("%s probe on %s, want %s", pr.kind, pr.probe.HTTPGet.Path, pr.path)
		}
		if got := containerPort(c, pr.probe.HTTPGet.Port); got != port {
			return fmt.Errorf("%s probe on port %d, the bridge serves probes on %d", pr.kind, got, port)
		}
	}
	return nil
}

func checkScrape(p corev1.PodTemplateSpec) error {
	port, err := listenPort(p, "metrics-bind-address", "8080")
	if err != nil {
		return err
	}
	if got := p.Annotations["prometheus.io/port"]; got != fmt.Sprint(port) {
		return fmt.Errorf("prometheus.io/port %q, the bridge serves metrics on %d", got, port)
	}
	return nil
}

func checkHardening(p corev1.PodTemplateSpec) error {
	sc := p.Spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		return fmt.Errorf("pod securityContext.runAsNonRoot is not true")
	}
	for _, c := range p.Spec.Containers {
		csc := c.SecurityContext
		if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			return fmt.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
		}
		if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			return fmt.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
		}
	}
	return nil
}

// poolDeployment is the Deployment the YurtAppSet controller would stamp
// out for a pool: the template, with a tweak's patches applied (nil for
// none). A patch whose path the template lacks fails the test.
func poolDeployment(t *testing.T, yas *unstructured.Unstructured, tw *workloadTweak) *unstructured.Unstructured {
	t.Helper()
	tmpl, _, err := unstructured.NestedMap(yas.Object, "spec", "workload", "workloadTemplate", "deploymentTemplate")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if tw != nil {
		for _, p := range tw.Tweaks.Patches {
			op := map[string]any{"op": p.Operation, "path": p.Path}
			if p.Operation != "remove" {
				op["value"] = p.Value
			}
			patch, err := json.Marshal([]any{op})
			if err != nil {
				t.Fatal(err)
			}
			decoded, err := jsonpatch.DecodePatch(patch)
			if err != nil {
				t.Fatalf("patch %s %s: %v", p.Operation, p.Path, err)
			}
			if doc, err = decoded.Apply(doc); err != nil {
				t.Fatalf("patch %s %s does not apply to the template: %v", p.Operation, p.Path, err)
			}
		}
	}
	dep := &unstructured.Unstructured{}
	if err := dep.UnmarshalJSON(asDeployment(t, doc)); err != nil {
		t.Fatal(err)
	}
	dep.SetName(yas.GetName() + "-pool")
	dep.SetNamespace(yas.GetNamespace())
	return dep
}

// asDeployment makes a Deployment document of a deploymentTemplate.
func asDeployment(t *testing.T, doc []byte) []byte {
	t.Helper()
	m := map[string]any{}
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	m["apiVersion"], m["kind"] = "apps/v1", "Deployment"
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bridgeContainer is the devicecontroller container of a pod template.
func bridgeContainer(t *testing.T, p *corev1.PodTemplateSpec) *corev1.Container {
	t.Helper()
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == "devicecontroller" {
			return &p.Spec.Containers[i]
		}
	}
	t.Fatal("no devicecontroller container")
	return nil
}

func isFlag(name string) func(string) bool {
	return func(arg string) bool {
		return arg == "--"+name || strings.HasPrefix(arg, "--"+name+"=")
	}
}

// flagArg returns the first container's argument setting flag name.
func flagArg(p corev1.PodTemplateSpec, name string) (string, bool) {
	if len(p.Spec.Containers) == 0 {
		return "", false
	}
	i := slices.IndexFunc(p.Spec.Containers[0].Args, isFlag(name))
	if i < 0 {
		return "", false
	}
	return p.Spec.Containers[0].Args[i], true
}

// listenPort is the port the bridge listens on for a bind-address flag.
func listenPort(p corev1.PodTemplateSpec, flagName, defaultPort string) (int32, error) {
	addr := ":" + defaultPort
	if arg, ok := flagArg(p, flagName); ok {
		addr = strings.TrimPrefix(arg, "--"+flagName+"=")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("--%s=%s: %w", flagName, addr, err)
	}
	var n int32
	_, err = fmt.Sscan(port, &n)
	return n, err
}

// containerPort resolves a probe's port, by number or by name.
func containerPort(c *corev1.Container, port intstr.IntOrString) int32 {
	if port.Type == intstr.Int {
		return port.IntVal
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort
		}
	}
	return 0
}

func envFromField(p corev1.PodTemplateSpec, name, fieldPath string) error {
	if len(p.Spec.Containers) == 0 {
		return fmt.Errorf("no container")
	}
	for _, e := range p.Spec.Containers[0].Env {
		if e.Name != name {
			continue
		}
		if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != fieldPath {
			return fmt.Errorf("%s is not taken from %s", name, fieldPath)
		}
		return nil
	}
	return fmt.Errorf("no %s in the environment", name)
}

func asJSON(v any) string {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// firstDifference shows where two renderings first differ, with the lines
// before it for context.
func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		if i < len(al) && i < len(bl) && al[i] == bl[i] {
			continue
		}
		line := func(ls []string) string {
			if i < len(ls) {
				return ls[i]
			}
			return "(end)"
		}
		context := strings.Join(al[max(0, i-3):i], "\n")
		return fmt.Sprintf("%s\n- %s\n+ %s", context, line(al), line(bl))
	}
	return "(none)"
}
