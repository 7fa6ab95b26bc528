// Command demo runs edgebridge end to end on one machine, for `make demo`:
// the same real etcd and kube-apiserver the tests use (CRDs installed),
// mosquitto, the EdgeX simulator with a GPIO board, a sensor and a camera,
// the real bridge binary for one node pool and the device admission
// webhook. It prints a guided tour and runs until Ctrl-C, SIGTERM or a
// closed terminal, then stops every process it started. This package only
// wires those parts together; the parts live in hack/testenv, edgex and
// cmd/devicecontroller.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/edgebridge/edgebridge/hack/testenv"
)

type options struct {
	dir, readyFile, binDir string
	pool, namespace        string
	admission              bool
	// startTimeout bounds how long one child may take to become ready.
	startTimeout time.Duration
}

func parseFlags() options {
	o := options{}
	binDir := "."
	if exe, err := os.Executable(); err == nil {
		binDir = filepath.Dir(exe)
	}
	// A flag set of its own: envtest's imports register --kubeconfig on the
	// global one, which the demo has no use for.
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	fs.StringVar(&o.dir, "dir", filepath.Join(testenv.RepoRoot(), ".demo"), "directory for the kubeconfig and the logs")
	fs.StringVar(&o.readyFile, "ready-file", "", "when set, write the demo's kubeconfig path and URLs here (JSON) once it is ready")
	fs.StringVar(&o.binDir, "bin", binDir, "directory holding devicecontroller and device-admission")
	fs.StringVar(&o.pool, "pool", "hangzhou", "node pool the bridge serves")
	fs.StringVar(&o.namespace, "namespace", "demo", "namespace of the demo's devices")
	fs.BoolVar(&o.admission, "admission", true, "also run the device admission webhook")
	fs.DurationVar(&o.startTimeout, "start-timeout", 2*time.Minute, "how long the bridge and the webhook may take to become ready")
	_ = fs.Parse(os.Args[1:]) // ExitOnError: Parse exits on a bad flag
	return o
}

func main() {
	o := parseFlags()
	// SIGHUP too: a closed terminal must not leave the children running.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// Under `make demo | tee demo.log`, Ctrl-C ends tee too, and Go kills a
	// program that writes to a closed standard output with SIGPIPE: the
	// demo would die in the middle of stopping its children and leave them
	// running. Ignored, a closed output only fails the writes, which the
	// progress lines never depend on.
	signal.Ignore(syscall.SIGPIPE)
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
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
