package testenv

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// The webhook port envtest hands out can be taken by another process
// before the webhook server binds it (make test's parallel packages open
// many connections, each on an ephemeral port). The webhook then serves on
// another port, and the API server must call it there.
func TestWebhookServerMovesOffATakenPort(t *testing.T) {
	manifest := filepath.Join(RepoRoot(), "deploy", "admission", "webhook.yaml")
	kube, err := StartKube(KubeOptions{WebhookManifests: []string{manifest}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := kube.Stop(); err != nil {
			t.Error(err)
		}
	})
	// Another process holds the port the API server was told.
	given := kube.WebhookServerOptions()
	taken, err := net.Listen("tcp", net.JoinHostPort(given.Host, strconv.Itoa(given.Port)))
	if err != nil {
		t.Fatalf("take the webhook's port: %v", err)
	}
	defer taken.Close()

	free, err := net.Listen("tcp", net.JoinHostPort(given.Host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := kube.MoveWebhookServer(ctx, port); err != nil {
		t.Fatal(err)
	}
	if got := kube.WebhookServerOptions().Port; got != port {
		t.Fatalf("WebhookServerOptions().Port = %d after the move, want %d", got, port)
	}

	// A webhook that refuses everything, on the new port: the manifest's
	// failurePolicy is Ignore, so only a webhook the API server reaches
	// can refuse.
	const refusal = "the moved webhook answered"
	srv := webhook.NewServer(kube.WebhookServerOptions())
	srv.Register("/validate-iot-openyurt-io-v1alpha1-device", &webhook.Admission{
		Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
			return admission.Denied(refusal)
		}),
	})
	served := make(chan error, 1)
	go func() { served <- srv.Start(ctx) }()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "moved-webhook"}}
	if err := kube.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	dev := &v1alpha1.Device{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "probe"},
		Spec:       v1alpha1.DeviceSpec{NodePool: "pool-a", Profile: "any", Service: "any"},
	}
	err = Wait(DefaultTimeout, func(ctx context.Context) error {
		err := kube.Client.Create(ctx, dev.DeepCopy(), client.DryRunAll)
		switch {
		case err == nil:
			return errors.New("a Device was admitted: the API server did not reach the moved webhook")
		case strings.Contains(err.Error(), refusal):
			return nil
		default:
			return err
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("webhook server: %v", err)
	}
}
