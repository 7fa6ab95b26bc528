// Command device-admission serves the validating webhook that refuses Device
// desired values their profile forbids (see devicecontroller/admission). It
// runs centrally beside the API server, not in the node pools. This file
// only reads flags and wires parts together.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/cmd/internal/cmdline"
	"github.com/edgebridge/edgebridge/devicecontroller/admission"
)

type flags struct {
	namespaces             string
	certDir, host          string
	port                   int
	metricsAddr, probeAddr string
	enableHTTP2            bool
}

func parseFlags() (*flags, *zap.Options) {
	f := &flags{}
	fs := flag.CommandLine
	// --kubeconfig is controller-runtime's own flag (ctrl.GetConfig); it
	// registers it on the command line when its package loads.
	fs.StringVar(&f.namespaces, "namespaces", cmdline.EnvOr("POD_NAMESPACE", "default"),
		"comma-separated namespaces whose devices are checked; empty means all; $POD_NAMESPACE when set")
	fs.StringVar(&f.certDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding tls.crt and tls.key; reloaded when they change")
	fs.StringVar(&f.host, "host", "", "address the webhook listens on; empty means all")
	fs.IntVar(&f.port, "port", 9443, "port the webhook listens on")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint; 0 disables it")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&f.enableHTTP2, "enable-http2", false, "serve the webhook over HTTP/2 too (off: HTTP/2 rapid-reset attacks)")
	zapOpts := &zap.Options{}
	zapOpts.BindFlags(fs)
	flag.Parse()
	return f, zapOpts
}

func main() {
	f, zapOpts := parseFlags()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zapOpts)))
	if err := run(ctrl.SetupSignalHandler(), f); err != nil {
		ctrl.Log.WithName("setup").Error(err, "device-admission stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, f *flags) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("load Kubernetes client configuration: %w", err)
	}
	cfg.UserAgent = "edgebridge-device-admission"
	namespaces := cmdline.SplitList(f.namespaces)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme(),
		Cache:                  admission.CacheOptions(namespaces),
		Metrics:                metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress: f.probeAddr,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: f.host, Port: f.port, CertDir: f.certDir, TLSOpts: tlsOptions(f.enableHTTP2),
		}),
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := admission.Setup(ctx, mgr, namespaces); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("profiles", cacheSynced(mgr.GetCache())); err != nil {
		return err
	}
	ctrl.Log.Info("starting", "namespaces", namespaces, "port", f.port, "path", admission.Path)
	return mgr.Start(ctx)
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

func tlsOptions(http2 bool) []func(*tls.Config) {
	if http2 {
		return nil
	}
	return []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
}

// cacheSynced keeps a replica out of the Service until it holds the
// profiles: before that it could only let every value through unchecked.
func cacheSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("device profile cache not synced yet")
		}
		return nil
	}
}
