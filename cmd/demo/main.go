// Command demo runs edgebridge end to end on one machine, for `make demo`:
// the same real etcd and kube-apiserver the tests use (CRDs installed),
// mosquitto, the EdgeX simulator with a GPIO board, a sensor and a camera,
// the real bridge binary for one node pool and the device admission
// webhook. It prints a guided tour and runs until Ctrl-C, SIGTERM or a
// closed terminal, then stops every process it started. This package only
// parses its flags; internal/demo wires the parts together, which live in
// hack/testenv, edgex and cmd/devicecontroller.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/edgebridge/edgebridge/hack/testenv"
	"github.com/edgebridge/edgebridge/internal/demo"
)

func parseFlags() demo.Options {
	o := demo.Options{}
	binDir := "."
	if exe, err := os.Executable(); err == nil {
		binDir = filepath.Dir(exe)
	}
	// A flag set of its own: envtest's imports register --kubeconfig on the
	// global one, which the demo has no use for.
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	fs.StringVar(&o.Dir, "dir", filepath.Join(testenv.RepoRoot(), ".demo"), "directory for the kubeconfig and the logs")
	fs.StringVar(&o.ReadyFile, "ready-file", "", "when set, write the demo's kubeconfig path and URLs here (JSON) once it is ready")
	fs.StringVar(&o.BinDir, "bin", binDir, "directory holding devicecontroller and device-admission")
	fs.StringVar(&o.Pool, "pool", "hangzhou", "node pool the bridge serves")
	fs.StringVar(&o.Namespace, "namespace", "demo", "namespace of the demo's devices")
	fs.BoolVar(&o.Admission, "admission", true, "also run the device admission webhook")
	fs.DurationVar(&o.StartTimeout, "start-timeout", 2*time.Minute, "how long the bridge and the webhook may take to become ready")
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
	if err := demo.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
