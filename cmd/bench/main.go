// Command bench measures the bridge: how fast it imports, how quickly
// changes cross in each direction, how fast commands reach devices, what a
// pool at rest costs, how much telemetry it ingests, and how the costs grow
// with the pool; each figure beside the physical limit of the machine it
// ran on. It is not a test: nothing fails on a figure. It prints a table and
// writes it, the raw figures (JSON) and a latency chart (SVG) into -out.
//
// It runs the real parts the tests use (kube-apiserver and etcd through
// envtest, mosquitto, the EdgeX simulator in this process) and the bridge
// as a separate process (bin/devicecontroller), all on loopback. It knows
// the bridge only through its flags, its metrics endpoint and the objects
// it writes. The measurements live in internal/bench; this command parses
// its flags and runs them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/edgebridge/edgebridge/internal/bench"
)

func main() {
	cfg, err := bench.ParseConfig(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// The benchmark's own controller-runtime parts (its watch) have nothing
	// to say that the progress lines do not.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout())
	defer cancel()
	if err := bench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
