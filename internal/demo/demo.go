package demo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

type options struct {
	dir, readyFile, binDir string
	pool, namespace        string
	admission              bool
	// startTimeout bounds how long one child may take to become ready.
	startTimeout time.Duration
}

// Options are the demo's settings, from cmd/demo's flags.
type Options struct {
	// Dir holds the kubeconfig and the logs.
	Dir string
	// ReadyFile, when set, receives the kubeconfig path and URLs (JSON)
	// once the demo is ready.
	ReadyFile string
	// BinDir holds devicecontroller and device-admission.
	BinDir string
	// Pool is the node pool the bridge serves, Namespace that of the
	// demo's devices.
	Pool, Namespace string
	// Admission also runs the device admission webhook.
	Admission bool
	// StartTimeout bounds how long one child may take to become ready.
	StartTimeout time.Duration
}

// Run starts everything, prints the tour and runs until ctx ends, then
// stops every process it started.
func Run(ctx context.Context, o Options) error {
	return run(ctx, options{dir: o.Dir, readyFile: o.ReadyFile, binDir: o.BinDir, pool: o.Pool, namespace: o.Namespace,
		admission: o.Admission, startTimeout: o.StartTimeout})
}

func run(ctx context.Context, o options) (err error) {
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if err := logControllerRuntimeTo(filepath.Join(o.dir, "controlplane.log")); err != nil {
		return err
	}
	s := newSession(o, newProgress(os.Stdout))
	defer func() {
		s.p.printf("==> stopping everything the demo started\n")
		err = errors.Join(err, s.undo.run(s.p))
		if err == nil {
			s.p.printf("    all stopped\n")
		}
	}()
	if err := s.start(ctx); err != nil {
		return err
	}
	if o.readyFile != "" {
		if err := writeReadyFile(o.readyFile, s.info); err != nil {
			return err
		}
		s.undo.add("ready file", func() error { return os.Remove(o.readyFile) })
	}
	if err := printTour(os.Stdout, s.info, o.binDir); err != nil {
		return err
	}
	return s.wait(ctx)
}

// logControllerRuntimeTo keeps envtest's own logging out of the tour.
func logControllerRuntimeTo(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(f)))
	return nil
}
