package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// Kube is a running kube-apiserver and etcd with the bridge's CRDs.
type Kube struct {
	Env    *envtest.Environment
	Config *rest.Config
	Scheme *runtime.Scheme
	Client client.Client
}

// Scheme holds the built-in kinds and the bridge's three kinds.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// KubeOptions tune the control plane; the zero value is what most tests want.
type KubeOptions struct {
	// ExtraCRDDirs are installed besides deploy/crds.
	ExtraCRDDirs []string
	// WebhookManifests, when set, are installed with envtest's local
	// webhook serving (see envtest.WebhookInstallOptions).
	WebhookManifests []string
}

// StartKube starts etcd and kube-apiserver and installs the CRDs. Call it
// from TestMain and Stop it when the package's tests are done.
func StartKube(opts KubeOptions) (*Kube, error) {
	apiserver, err := KubeAPIServerPath()
	if err != nil {
		return nil, err
	}
	etcd, err := EtcdPath()
	if err != nil {
		return nil, err
	}
	scheme := Scheme()
	env := &envtest.Environment{
		Scheme:                scheme,
		CRDDirectoryPaths:     append([]string{filepath.Join(RepoRoot(), "deploy", "crds")}, opts.ExtraCRDDirs...),
		ErrorIfCRDPathMissing: true,
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{Path: apiserver},
			Etcd:      &envtest.Etcd{Path: etcd},
		},
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	if len(opts.WebhookManifests) > 0 {
		env.WebhookInstallOptions.Paths = opts.WebhookManifests
	}
	cfg, err := env.Start()
	if err != nil {
		// Start fails after launching the processes when, say, a CRD is
		// refused; stop them rather than leave them running.
		_ = env.Stop()
		return nil, fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	// Tests create objects in bursts; the default client-side limit of a
	// few requests a second would make them measure the limiter.
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("client for envtest: %w", err)
	}
	return &Kube{Env: env, Config: cfg, Scheme: scheme, Client: c}, nil
}

// WebhookServerOptions are where the installed WebhookManifests send
// requests: serve a webhook server with them (webhook.NewServer) and the
// API server reaches it, trusting envtest's generated certificate.
func (k *Kube) WebhookServerOptions() webhook.Options {
	o := k.Env.WebhookInstallOptions
	return webhook.Options{Host: o.LocalServingHost, Port: o.LocalServingPort, CertDir: o.LocalServingCertDir}
}

// Stop stops the control plane.
func (k *Kube) Stop() error {
	return k.Env.Stop()
}

var namespaceSeq atomic.Int64

// Namespace creates a namespace of the test's own, so that tests sharing
// one API server never see each other's objects.
func (k *Kube) Namespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", sanitize(t.Name()), namespaceSeq.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.Client.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

func sanitize(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 40 {
		out = strings.Trim(out[len(out)-40:], "-")
	}
	if out == "" {
		out = "test"
	}
	return out
}
