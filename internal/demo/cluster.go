package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// startControlPlane starts etcd and kube-apiserver with the CRDs, and with the
// device webhook's configuration pointed at a local port when the demo
// runs the webhook.
func startControlPlane(withAdmission bool) (*testenv.Kube, error) {
	var opts testenv.KubeOptions
	if withAdmission {
		opts.WebhookManifests = []string{filepath.Join(testenv.RepoRoot(), "deploy", "admission", "webhook.yaml")}
	}
	return testenv.StartKube(opts)
}

// writeKubeconfig provisions an administrator and writes a kubeconfig the
// user's kubectl (and the demo's children) can use.
func writeKubeconfig(kube *testenv.Kube, path string) error {
	user, err := kube.Env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("provision the demo's administrator: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

func createNamespace(ctx context.Context, c client.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// adoptDemoDevices waits until the bridge has imported the simulator's
// demo devices, then makes each managed, so that the cluster is their truth
// and `kubectl edit` sends commands at once. It returns the devices'
// Kubernetes names by EdgeX name.
func adoptDemoDevices(ctx context.Context, c client.Client, namespace string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	names, err := waitForImports(ctx, c, namespace)
	if err != nil {
		return nil, err
	}
	for edgexName, name := range names {
		dev := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
		patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"managed":true}}`))
		if err := c.Patch(ctx, dev, patch); err != nil {
			return nil, fmt.Errorf("make device %s (%s in EdgeX) managed: %w", name, edgexName, err)
		}
	}
	return names, nil
}

func waitForImports(ctx context.Context, c client.Client, namespace string) (map[string]string, error) {
	for {
		names, err := importedDemoDevices(ctx, c, namespace)
		if err == nil {
			return names, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the bridge did not import the demo devices: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func importedDemoDevices(ctx context.Context, c client.Client, namespace string) (map[string]string, error) {
	devices := &v1alpha1.DeviceList{}
	if err := c.List(ctx, devices, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	byEdgeXName := map[string]string{}
	for i := range devices.Items {
		byEdgeXName[v1alpha1.EdgeXName(&devices.Items[i])] = devices.Items[i].Name
	}
	names := map[string]string{}
	for _, d := range simulator.DemoDevices() {
		name, ok := byEdgeXName[d.Name]
		if !ok {
			return nil, fmt.Errorf("%s not imported yet", d.Name)
		}
		names[d.Name] = name
	}
	return names, nil
}
