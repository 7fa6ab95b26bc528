package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
	"github.com/edgebridge/edgebridge/hack/testenv/broker"
)

// stopGrace is how long a child may take to stop before it is killed.
const stopGrace = 20 * time.Second

// session is one run of the demo: what it started, how to stop it, and
// what the tour tells the user.
type session struct {
	o        options
	p        *progress
	undo     cleanups
	info     readyInfo
	kube     *testenv.Kube
	children []*child
}

func newSession(o options, p *progress) *session {
	s := &session{o: o, p: p}
	s.info = readyInfo{
		Kubeconfig: filepath.Join(o.dir, "kubeconfig"), Namespace: o.namespace, Pool: o.pool, Admission: o.admission,
		Logs: map[string]string{
			"bridge":        filepath.Join(o.dir, "devicecontroller.log"),
			"simulator":     filepath.Join(o.dir, "simulator.log"),
			"mosquitto":     filepath.Join(o.dir, "mosquitto", "mosquitto.log"),
			"control plane": filepath.Join(o.dir, "controlplane.log"),
		},
	}
	if o.admission {
		s.info.Logs["admission webhook"] = filepath.Join(o.dir, "device-admission.log")
	}
	return s
}

// start brings every part up in order, registering how to stop each one.
// Ctrl-C during a step stops the demo once that step returns.
func (s *session) start(ctx context.Context) error {
	steps := []struct {
		what string
		fn   func(context.Context) error
	}{
		{"starting etcd and kube-apiserver, installing the CRDs", s.startKube},
		{"writing an administrator's kubeconfig to " + s.info.Kubeconfig + ", creating namespace " + s.o.namespace, s.prepareCluster},
		{"starting mosquitto", s.startBroker},
		{"starting the EdgeX simulator with a GPIO board, a sensor and a camera", s.startSimulator},
		{"starting the bridge (" + filepath.Join(s.o.binDir, "devicecontroller") + ") for pool " + s.o.pool, s.startBridge},
		{"starting the device admission webhook (" + filepath.Join(s.o.binDir, "device-admission") + ")", s.startAdmission},
		{"waiting for the bridge to import the devices, and making them managed", s.adoptDevices},
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted while starting: %w", err)
		}
		if err := s.p.step(step.what, func() error { return step.fn(ctx) }); err != nil {
			return err
		}
	}
	return nil
}

// wait runs until the user stops the demo, or until a child dies, which
// would leave the tour's commands failing for no visible reason.
func (s *session) wait(ctx context.Context) error {
	died := make(chan *child, len(s.children))
	for _, c := range s.children {
		go func() {
			select {
			case <-c.exited:
				died <- c
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case c := <-died:
		return fmt.Errorf("%s exited unexpectedly (%v):\n%s", c.name, c.waitErr, c.logTail())
	}
}

func (s *session) startKube(context.Context) error {
	kube, err := startControlPlane(s.o.admission)
	if err != nil {
		return err
	}
	s.kube = kube
	s.undo.add("kube-apiserver and etcd", kube.Stop)
	return nil
}

func (s *session) prepareCluster(ctx context.Context) error {
	if err := writeKubeconfig(s.kube, s.info.Kubeconfig); err != nil {
		return err
	}
	return createNamespace(ctx, s.kube.Client, s.o.namespace)
}

func (s *session) startBroker(context.Context) error {
	dir := filepath.Join(s.o.dir, "mosquitto")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := broker.StartIn(dir, broker.Options{})
	if err != nil {
		return err
	}
	s.undo.add("mosquitto", func() error { b.Stop(); return nil })
	s.info.BrokerURL = b.URL()
	return nil
}

// startSimulator runs the simulator with its devices' autoEvents on, so
// that telemetry flows from the start.
func (s *session) startSimulator(ctx context.Context) error {
	logFile, err := os.Create(s.info.Logs["simulator"])
	if err != nil {
		return err
	}
	sim := simulator.New(simulator.Options{
		BrokerURL: s.info.BrokerURL, AutoEvents: true,
		Logger: slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sim.Start(ctx); err != nil {
		logFile.Close()
		return err
	}
	s.undo.add("EdgeX simulator", func() error { return errors.Join(sim.Close(), logFile.Close()) })
	s.info.CoreMetadataURL, s.info.CoreCommandURL = sim.MetadataURL(), sim.CommandURL()
	return sim.SeedDemo(ctx)
}

// startBridge runs bin/devicecontroller as a user would run it against
// this EdgeX, with northbound telemetry on the same broker.
func (s *session) startBridge(ctx context.Context) error {
	return s.onFreePorts(nil, func() error { return s.runBridge(ctx) })
}

func (s *session) runBridge(ctx context.Context) error {
	addrs, err := freeAddrs(2)
	if err != nil {
		return err
	}
	metrics, health := addrs[0], addrs[1]
	s.info.MetricsURL = "http://" + metrics + "/metrics"
	return s.runChild(ctx, "bridge", "devicecontroller", "http://"+health+"/readyz",
		"--kubeconfig="+s.info.Kubeconfig,
		"--nodepool="+s.o.pool,
		"--namespaces="+s.o.namespace,
		"--core-metadata-url="+s.info.CoreMetadataURL,
		"--core-command-url="+s.info.CoreCommandURL,
		"--mqtt-broker="+s.info.BrokerURL,
		"--northbound-broker="+s.info.BrokerURL,
		"--leader-elect=false",
		"--metrics-bind-address="+metrics,
		"--health-probe-bind-address="+health,
		// Status follows telemetry within a second, for people watching.
		"--status-interval=1s",
	)
}

// startAdmission runs bin/device-admission where envtest told the API
// server to send the device webhook's requests, with envtest's
// certificate.
func (s *session) startAdmission(ctx context.Context) error {
	if !s.o.admission {
		s.p.printf("    skipped (--admission=false)\n")
		return nil
	}
	// The API server was told the webhook's port when it started, seconds
	// ago; should that port be taken meanwhile, the webhook moves.
	move := func() error {
		addrs, err := freeAddrs(1)
		if err != nil {
			return err
		}
		_, port, _ := net.SplitHostPort(addrs[0])
		n, _ := strconv.Atoi(port)
		return s.kube.MoveWebhookServer(ctx, n)
	}
	return s.onFreePorts(move, func() error { return s.runAdmission(ctx) })
}

func (s *session) runAdmission(ctx context.Context) error {
	addrs, err := freeAddrs(2)
	if err != nil {
		return err
	}
	metrics, health := addrs[0], addrs[1]
	w := s.kube.WebhookServerOptions()
	return s.runChild(ctx, "admission webhook", "device-admission", "http://"+health+"/readyz",
		"--kubeconfig="+s.info.Kubeconfig,
		"--namespaces="+s.o.namespace,
		"--cert-dir="+w.CertDir,
		"--host="+w.Host,
		fmt.Sprintf("--port=%d", w.Port),
		"--metrics-bind-address="+metrics,
		"--health-probe-bind-address="+health,
	)
}

// runChild starts one of bin/'s programs and waits until readyURL answers.
// A child that exits before it is ready is not kept (there is nothing to
// stop); one that exits because a port it was given is taken is reported
// as errPortTaken.
func (s *session) runChild(ctx context.Context, part, binary, readyURL string, args ...string) error {
	c, err := startChild(part, filepath.Join(s.o.binDir, binary), s.info.Logs[part], args...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.startTimeout)
	defer cancel()
	err = c.waitReady(ctx, readyURL)
	if err != nil && c.hasExited() {
		c.log.Close()
		if c.lostAPort() {
			return fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return err
	}
	s.undo.add("the "+part, func() error { return c.stop(stopGrace) })
	s.children = append(s.children, c)
	return err
}

// errPortTaken is a child that could not bind a port found free a moment
// before: another process (an outgoing connection's ephemeral port, say,
// under a parallel make test) took it meanwhile.
var errPortTaken = errors.New("a port it was given was taken before it bound it")

// portAttempts is how many times a child is started on fresh ports.
const portAttempts = 3

// onFreePorts runs start, which picks its ports afresh, until its child
// binds them; before each retry, move (when given) moves what start does
// not pick itself.
func (s *session) onFreePorts(move func() error, start func() error) error {
	for attempt := 1; ; attempt++ {
		err := start()
		if attempt == portAttempts || !errors.Is(err, errPortTaken) {
			return err
		}
		s.p.printf("    %v; starting it again on other ports\n", errPortTaken)
		if move != nil {
			if err := move(); err != nil {
				return err
			}
		}
	}
}

func (s *session) adoptDevices(ctx context.Context) (err error) {
	s.info.Devices, err = adoptDemoDevices(ctx, s.kube.Client, s.o.namespace)
	return err
}
