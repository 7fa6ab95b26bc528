// Package deploy holds only tests: they prove that every manifest in
// deploy/, kustomize's and the Helm chart's, is accepted by a real API
// server that also serves OpenYurt's own YurtAppSet and NodePool CRDs (or,
// for kinds it does not serve, fits what the bridge relies on), that the
// two installations hold the same objects, that the image `make image`
// builds runs what they name, and that the bridge works under exactly the
// RBAC shipped here.
package deploy

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/edgebridge/edgebridge/hack/testenv"
	"github.com/edgebridge/edgebridge/hack/testenv/broker"
)

// namespace is where deploy/base installs the bridge.
const namespace = "edgebridge"

var (
	kube *testenv.Kube
	mqtt *broker.Broker
	// workDir is a directory for the package's tests, removed after them.
	workDir string
)

func TestMain(m *testing.M) {
	if os.Getenv("EDGEBRIDGE_TEST_LOGS") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	os.Exit(runWithRig(m))
}

// runWithRig starts the API server, with OpenYurt's own YurtAppSet and
// NodePool CRDs beside the bridge's, and mosquitto around the package's
// tests.
func runWithRig(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "edgebridge-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	workDir = tmp
	openYurt, err := openYurtCRDs(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "OpenYurt's CRDs:", err)
		return 1
	}
	if kube, err = testenv.StartKube(testenv.KubeOptions{ExtraCRDDirs: []string{openYurt}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := kube.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop control plane:", err)
		}
	}()
	dir, err := os.MkdirTemp("", "edgebridge-deploy-mqtt-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if mqtt, err = broker.StartIn(dir, broker.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer mqtt.Stop()
	return m.Run()
}

var (
	namespaceOnce sync.Once
	namespaceErr  error
)

// needNamespace creates the bridge's namespace for real: a dry-run of the
// Namespace object creates nothing, and the namespaced objects' dry-runs
// need it to exist.
func needNamespace(t *testing.T) {
	t.Helper()
	namespaceOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
		defer cancel()
		err := kube.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})
		if !apierrors.IsAlreadyExists(err) {
			namespaceErr = err
		}
	})
	if namespaceErr != nil {
		t.Fatalf("create namespace %s: %v", namespace, namespaceErr)
	}
}
