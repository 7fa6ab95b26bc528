package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/discovery"
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

	// certDir holds the API server's certificates and flags across a
	// restart (see StopAPIServer); removed by Stop.
	certDir string
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
	// EtcdDataDir, when set, is where etcd keeps its data instead of a
	// fresh directory under $TMPDIR; the caller owns and removes it.
	EtcdDataDir string
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
	// A certificate directory of our own survives StopAPIServer (envtest
	// removes the one it makes itself), so that a restarted API server
	// keeps its serving certificate and the clients stay valid.
	certDir, err := os.MkdirTemp("", "edgebridge-apiserver-")
	if err != nil {
		return nil, fmt.Errorf("make the API server's certificate directory: %w", err)
	}
	scheme := Scheme()
	env := &envtest.Environment{
		Scheme:                scheme,
		CRDDirectoryPaths:     append([]string{filepath.Join(RepoRoot(), "deploy", "crds")}, opts.ExtraCRDDirs...),
		ErrorIfCRDPathMissing: true,
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{Path: apiserver, CertDir: certDir},
			Etcd:      &envtest.Etcd{Path: etcd, DataDir: opts.EtcdDataDir},
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
		_ = os.RemoveAll(certDir)
		return nil, fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	// Tests create objects in bursts; the default client-side limit of a
	// few requests a second would make them measure the limiter.
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		_ = os.RemoveAll(certDir)
		return nil, fmt.Errorf("client for envtest: %w", err)
	}
	return &Kube{Env: env, Config: cfg, Scheme: scheme, Client: c, certDir: certDir}, nil
}

// WebhookServerOptions are where the installed WebhookManifests send
// requests: serve a webhook server with them (webhook.NewServer) and the
// API server reaches it, trusting envtest's generated certificate.
func (k *Kube) WebhookServerOptions() webhook.Options {
	o := k.Env.WebhookInstallOptions
	return webhook.Options{Host: o.LocalServingHost, Port: o.LocalServingPort, CertDir: o.LocalServingCertDir}
}

// MoveWebhookServer points the installed webhooks at port instead, for a
// webhook server that could not have the port it was given: the API
// server was told it at start, and another process may take it before the
// server binds it.
func (k *Kube) MoveWebhookServer(ctx context.Context, port int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	o := &k.Env.WebhookInstallOptions
	from := net.JoinHostPort(o.LocalServingHost, strconv.Itoa(o.LocalServingPort))
	to := net.JoinHostPort(o.LocalServingHost, strconv.Itoa(port))
	repoint := func(cc *admissionregistrationv1.WebhookClientConfig) {
		if cc.URL != nil {
			moved := strings.Replace(*cc.URL, "//"+from+"/", "//"+to+"/", 1)
			cc.URL = &moved
		}
	}
	var validating admissionregistrationv1.ValidatingWebhookConfigurationList
	var mutating admissionregistrationv1.MutatingWebhookConfigurationList
	for _, list := range []client.ObjectList{&validating, &mutating} {
		if err := k.Client.List(ctx, list); err != nil {
			return fmt.Errorf("list %T: %w", list, err)
		}
	}
	var moved []client.Object
	for i := range validating.Items {
		cfg := &validating.Items[i]
		for j := range cfg.Webhooks {
			repoint(&cfg.Webhooks[j].ClientConfig)
		}
		moved = append(moved, cfg)
	}
	for i := range mutating.Items {
		cfg := &mutating.Items[i]
		for j := range cfg.Webhooks {
			repoint(&cfg.Webhooks[j].ClientConfig)
		}
		moved = append(moved, cfg)
	}
	for _, cfg := range moved {
		if err := k.Client.Update(ctx, cfg); err != nil {
			return fmt.Errorf("move webhook configuration %s to %s: %w", cfg.GetName(), to, err)
		}
	}
	o.LocalServingPort = port
	return nil
}

// Stop stops the control plane.
func (k *Kube) Stop() error {
	err := k.Env.Stop()
	_ = os.RemoveAll(k.certDir)
	return err
}

// StopAPIServer stops kube-apiserver and leaves etcd running; clients see
// connection errors until StartAPIServer. It sends SIGTERM, as a rolling
// restart of a control plane does, and SIGKILL after a grace period:
// kube-apiserver's graceful shutdown waits up to its request timeout (a
// minute) for open watches to end, which tests should not wait for.
func (k *Kube) StopAPIServer(grace time.Duration) error {
	pid, err := k.apiServerPID()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop kube-apiserver: %w", err)
	}
	if waitForExit(pid, grace) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill kube-apiserver: %w", err)
	}
	if !waitForExit(pid, 10*time.Second) {
		return fmt.Errorf("kube-apiserver (pid %d) outlived SIGKILL", pid)
	}
	return nil
}

// apiServerPID finds this Kube's kube-apiserver by its certificate
// directory, which is its own; envtest does not expose the process.
func (k *Kube) apiServerPID() (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("find kube-apiserver: %w", err)
	}
	flag := "--cert-dir=" + k.certDir + "\x00"
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), flag) && strings.Contains(string(cmdline), "kube-apiserver") {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no kube-apiserver running with %s", strings.TrimSuffix(flag, "\x00"))
}

// waitForExit reports whether the process ended (and was reaped by
// envtest, whose child it is) within d.
func waitForExit(pid int, d time.Duration) bool {
	return Wait(d, func(context.Context) error {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			return fmt.Errorf("kube-apiserver (pid %d) still running", pid)
		}
		return nil
	}) == nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, against
// the same etcd, on the same port, with the same serving certificate and
// client CA, so that every rest.Config made before still works. It returns
// once the API server is healthy and serves the bridge's kinds again (the
// CRDs are read back from etcd after the health check passes).
func (k *Kube) StartAPIServer() error {
	if err := k.Env.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("start kube-apiserver again: %w", err)
	}
	return Wait(DefaultTimeout, func(ctx context.Context) error {
		for _, list := range []client.ObjectList{&v1alpha1.DeviceList{}, &v1alpha1.DeviceServiceList{}, &v1alpha1.DeviceProfileList{}} {
			if err := k.Client.List(ctx, list, client.Limit(1)); err != nil {
				return fmt.Errorf("the restarted API server does not serve %T yet: %w", list, err)
			}
		}
		return nil
	})
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

// DeviceEditor returns a client acting as user, who may read and write
// Devices in namespace ns and nothing else: a person another team's RBAC
// keeps out of every other namespace.
func (k *Kube) DeviceEditor(t testing.TB, user, ns string) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "device-editor", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"devices"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"},
		}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "device-editor-" + user, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := k.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
	}
	cfg := rest.CopyConfig(k.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: k.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// The API server's authorizer learns of the binding through a watch.
	Eventually(t, DefaultTimeout, func(ctx context.Context) error {
		return c.List(ctx, &v1alpha1.DeviceList{}, client.InNamespace(ns))
	})
	return c
}

// ServerMinor is the running API server's Kubernetes minor version, for
// tests whose expectations differ between the versions the project
// supports (see `make test-compat`).
func (k *Kube) ServerMinor(t testing.TB) int {
	t.Helper()
	cfg := rest.CopyConfig(k.Config)
	cfg.Timeout = 30 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		t.Fatalf("read the API server's version: %v", err)
	}
	minor, err := strconv.Atoi(strings.TrimRight(v.Minor, "+"))
	if err != nil {
		t.Fatalf("API server minor version %q: %v", v.Minor, err)
	}
	return minor
}
