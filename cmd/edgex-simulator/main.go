// Command edgex-simulator runs the in-process EdgeX 3.1 simulator on its own,
// for the demo and for trying the bridge by hand: core-metadata and
// core-command over REST, and (with -broker) the MQTT message bus.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/edgebridge/edgebridge/edgex/simulator"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "edgex-simulator:", err)
		os.Exit(1)
	}
}

func run() error {
	var opts simulator.Options
	var seedDemo, verbose bool
	flag.StringVar(&opts.MetadataAddr, "metadata-addr", "127.0.0.1:59881", "core-metadata listen address")
	flag.StringVar(&opts.CommandAddr, "command-addr", "127.0.0.1:59882", "core-command listen address")
	flag.StringVar(&opts.BrokerURL, "broker", "", "MQTT broker URL, such as tcp://127.0.0.1:1883 (empty: no message bus)")
	flag.StringVar(&opts.BrokerUsername, "broker-username", "", "MQTT username")
	flag.StringVar(&opts.BrokerPassword, "broker-password", "", "MQTT password")
	flag.StringVar(&opts.TopicPrefix, "topic-prefix", "edgex", "message bus base topic")
	flag.StringVar(&opts.Token, "token", "", "bearer token every REST call must carry (empty: none)")
	flag.StringVar(&opts.TLSCertFile, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	flag.StringVar(&opts.TLSKeyFile, "tls-key", "", "key of -tls-cert (PEM)")
	flag.IntVar(&opts.MaxResultCount, "max-result-count", 1024, "largest list page core-metadata serves")
	flag.BoolVar(&opts.AutoEvents, "auto-events", true, "run the devices' autoEvents")
	flag.BoolVar(&seedDemo, "seed-demo", false, "register the demo service, profiles and devices")
	flag.BoolVar(&verbose, "v", false, "log every request the services handle")
	flag.Parse()

	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	sim := simulator.New(opts)
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sim.Start(startCtx); err != nil {
		return err
	}
	defer sim.Close()
	if seedDemo {
		if err := sim.SeedDemo(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("core-metadata %s\ncore-command  %s\n", sim.MetadataURL(), sim.CommandURL())
	<-ctx.Done()
	return nil
}
