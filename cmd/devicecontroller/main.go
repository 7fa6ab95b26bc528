// Command devicecontroller runs one node pool's edgebridge: it keeps the
// pool's Device, DeviceService and DeviceProfile objects and the pool's
// EdgeX in agreement. This file only reads flags and wires parts together.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/cmd/internal/cmdline"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// userAgent is how the bridge introduces itself to the API server; add it
// to YurtHub's cache agents so that it keeps working from the edge cache
// while the cloud link is down.
const userAgent = "edgebridge"

// version is the release this binary was built as; `make image` sets it
// with -ldflags "-X main.version=...". The module's build info cannot say:
// a binary built inside the repository is always "(devel)".
var version = "dev"

type flags struct {
	nodePool, nodeName, namespaces string
	poolSelection                  string
	kubeQPS                        float64
	kubeBurst                      int
	kubeTimeout                    time.Duration

	metadataURL, commandURL, tokenFile, caFile, certFile, keyFile string
	edgexTimeout                                                  time.Duration
	pageSize                                                      int

	broker, topicPrefix, mqttClientID, mqttUserFile, mqttPasswordFile string
	mqttCAFile, mqttCertFile, mqttKeyFile                             string

	northboundBroker, northboundPrefix, northboundUserFile, northboundPasswordFile string

	transport                             string
	commandTimeout                        time.Duration
	commandRate                           float64
	commandBurst, commandsInFlight        int
	resyncPeriod, statusInterval          time.Duration
	connectedRefresh                      time.Duration
	guardFraction                         float64
	guardMinimum, workers, maxSeries      int
	statusWriters                         int
	statusWriteRate                       float64
	pruneManagedFields                    bool
	metricsAddr, probeAddr, pprofAddr     string
	leaderElect                           bool
	leaderElectionNamespace               string
	leaseDuration, renewDeadline, retryPd time.Duration
	leaderSeat                            string
}

func parseFlags() (*flags, *zap.Options) {
	f := &flags{}
	fs := flag.CommandLine
	fs.StringVar(&f.nodePool, "nodepool", "", "node pool this bridge serves; empty means the "+v1alpha1.NodePoolLabel+" label of --node-name")
	fs.StringVar(&f.nodeName, "node-name", os.Getenv("NODE_NAME"), "node the bridge runs on, to discover its pool; defaults to $NODE_NAME")
	fs.StringVar(&f.namespaces, "namespaces", cmdline.EnvOr("POD_NAMESPACE", "default"), "comma-separated namespaces to watch; imported objects go to the first; defaults to $POD_NAMESPACE when set")
	fs.StringVar(&f.poolSelection, "pool-selection", "auto", "how the API server is asked for the pool's objects: field (spec.nodePool, Kubernetes 1.31+), label ("+v1alpha1.PoolLabel+", which the bridge keeps equal to spec.nodePool), or auto (probe the API server at start-up)")
	fs.Float64Var(&f.kubeQPS, "kube-api-qps", 1000, "client-side limit on API server requests per second, of each kind; a guard against a runaway loop, above what an import needs")
	fs.IntVar(&f.kubeBurst, "kube-api-burst", 2000, "client-side burst of API server requests")
	fs.DurationVar(&f.kubeTimeout, "kube-api-timeout", devicecontroller.DefaultKubeRequestTimeout, "timeout of one API server request (watches excepted), so that a cloud link that drops packets is noticed")

	fs.StringVar(&f.metadataURL, "core-metadata-url", "http://edgex-core-metadata:59881", "EdgeX core-metadata base URL")
	fs.StringVar(&f.commandURL, "core-command-url", "http://edgex-core-command:59882", "EdgeX core-command base URL")
	fs.StringVar(&f.tokenFile, "edgex-token-file", "", "EdgeX secure mode: file holding the bearer JWT, re-read when it changes")
	fs.StringVar(&f.caFile, "edgex-ca-file", "", "CA bundle to verify EdgeX's TLS certificates")
	fs.StringVar(&f.certFile, "edgex-cert-file", "", "client certificate for EdgeX REST")
	fs.StringVar(&f.keyFile, "edgex-key-file", "", "client key for EdgeX REST")
	fs.DurationVar(&f.edgexTimeout, "edgex-timeout", 10*time.Second, "timeout of one EdgeX REST call")
	fs.IntVar(&f.pageSize, "edgex-page-size", 500, "objects per page when listing EdgeX")

	fs.StringVar(&f.broker, "mqtt-broker", "tcp://edgex-mqtt-broker:1883", "EdgeX message bus (MQTT) URL; tcp:// or ssl://")
	fs.StringVar(&f.topicPrefix, "mqtt-topic-prefix", messagebus.DefaultTopicPrefix, "EdgeX message bus base topic")
	fs.StringVar(&f.mqttClientID, "mqtt-client-id", "", "MQTT client id (default edgebridge-<pool>)")
	fs.StringVar(&f.mqttUserFile, "mqtt-username-file", "", "file holding the MQTT username (mount it from a Secret)")
	fs.StringVar(&f.mqttPasswordFile, "mqtt-password-file", "", "file holding the MQTT password (mount it from a Secret)")
	fs.StringVar(&f.mqttCAFile, "mqtt-ca-file", "", "CA bundle to verify the broker's TLS certificate")
	fs.StringVar(&f.mqttCertFile, "mqtt-cert-file", "", "MQTT client certificate")
	fs.StringVar(&f.mqttKeyFile, "mqtt-key-file", "", "MQTT client key")

	fs.StringVar(&f.northboundBroker, "northbound-broker", "", "when set, re-publish normalised readings to this MQTT broker")
	fs.StringVar(&f.northboundPrefix, "northbound-topic-prefix", "edgebridge", "base topic of northbound readings")
	fs.StringVar(&f.northboundUserFile, "northbound-username-file", "", "file holding the northbound broker username")
	fs.StringVar(&f.northboundPasswordFile, "northbound-password-file", "", "file holding the northbound broker password")

	fs.StringVar(&f.transport, "command-transport", "rest", "how commands reach core-command: rest or mqtt")
	fs.DurationVar(&f.commandTimeout, "command-timeout", 10*time.Second, "timeout of one device command")
	fs.Float64Var(&f.commandRate, "command-rate", 5, "commands per second one device may receive")
	fs.IntVar(&f.commandBurst, "command-burst", 10, "command burst one device may receive")
	fs.IntVar(&f.commandsInFlight, "max-commands-in-flight", 64, "commands in flight at once across all devices")
	fs.DurationVar(&f.resyncPeriod, "resync-period", 10*time.Minute, "how often all of EdgeX is listed to repair missed events")
	fs.Float64Var(&f.guardFraction, "deletion-guard-fraction", 0.3, "share of a kind's imported objects one resync may delete before it holds deletions for confirmation")
	fs.IntVar(&f.guardMinimum, "deletion-guard-minimum", 5, "how many of a kind's imported objects vanishing from one resync's list hold their deletions, at least (more than half of them always do)")
	fs.IntVar(&f.workers, "workers", 16, "objects of each kind reconciled at once")
	fs.DurationVar(&f.statusInterval, "status-interval", 5*time.Second, "least time between two telemetry status writes of one device")
	fs.Float64Var(&f.statusWriteRate, "status-write-rate", 0, "the pool's budget of telemetry status writes a second, averaged over 75 s, beyond each property's first value: its share of an API server that many pools share (0: no budget, paced only by how fast the API server answers)")
	fs.IntVar(&f.statusWriters, "status-writers", 4, "telemetry status writes in flight at once (they coalesce, so few keep status fresh without crowding the API server)")
	fs.DurationVar(&f.connectedRefresh, "connected-refresh", 10*time.Minute, "how stale status.lastConnected may grow while a device keeps reporting unchanged values (negative: never refreshed)")
	fs.BoolVar(&f.pruneManagedFields, "prune-managed-fields", true, "empty the API server's record of field owners (metadata.managedFields) on objects nobody applies server-side, once each, when the bridge is quiet: it is half of what the API server holds per Device")
	fs.IntVar(&f.maxSeries, "max-reading-series", 10000, "cap on per-reading Prometheus gauges")

	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint; 0 disables it")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "", "address of Go's /debug/pprof endpoints, for profiling; empty or 0 disables them")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "elect one active replica per pool (lease edgebridge-<pool>, renewed through the pool's message bus while the cloud is unreachable)")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the lease (default: the first watched namespace)")
	fs.DurationVar(&f.leaseDuration, "leader-lease-duration", 15*time.Second, "how long a standby waits before taking over")
	fs.DurationVar(&f.renewDeadline, "leader-renew-deadline", 10*time.Second, "how long the leader tries to renew before giving up")
	fs.DurationVar(&f.retryPd, "leader-retry-period", 2*time.Second, "how often leader election is retried")
	fs.StringVar(&f.leaderSeat, "leader-seat", os.Getenv("POD_NAME"), "the pod this replica runs in, named in its leader beacon: a replica restarted in the same pod during a cloud outage may take the lead its predecessor had; defaults to $POD_NAME, else the hostname")

	version := fs.Bool("version", false, "print the version and exit")
	zapOpts := &zap.Options{}
	zapOpts.BindFlags(fs)
	flag.Parse()
	if *version {
		fmt.Println(versionString())
		os.Exit(0)
	}
	return f, zapOpts
}

// defaultGCPercent replaces Go's GOGC=100 unless GOGC is set. make bench
// at 10,000 devices found a live heap of 88 MB in an RSS of 239 MB: the
// rest was the collector's headroom. Half the headroom costs a few
// hundredths of a core, and edge nodes are shorter of memory than of CPU.
const defaultGCPercent = 50

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	f, zapOpts := parseFlags()
	// How long requests wait for --kube-api-qps, on the metrics endpoint:
	// client-go logs only waits over a second, so a limit that slows an
	// import down wait by wait would otherwise go unseen.
	crmetrics.RegisterRESTClientMetrics(crmetrics.MetricRateLimiterLatency)
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zapOpts)))
	log := ctrl.Log.WithName("setup")
	if err := run(ctrl.SetupSignalHandler(), f); err != nil {
		log.Error(err, "edgebridge stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, f *flags) error {
	if f.statusWriteRate < 0 {
		return fmt.Errorf("--status-write-rate must be 0 (no budget) or more, not %g", f.statusWriteRate)
	}
	// controller-runtime's own --kubeconfig flag (or $KUBECONFIG, or the
	// in-cluster configuration) says where the API server is.
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("load Kubernetes client configuration: %w", err)
	}
	cfg.UserAgent, cfg.QPS, cfg.Burst = userAgent, float32(f.kubeQPS), f.kubeBurst

	namespaces := cmdline.SplitList(f.namespaces)
	pool, err := resolveNodePool(ctx, cfg, f.nodePool, f.nodeName)
	if err != nil {
		return err
	}
	scheme := devicecontroller.Scheme()
	selection, err := poolSelection(ctx, cfg, f.poolSelection, pool, namespaces)
	if err != nil {
		return err
	}
	leNamespace := f.leaderElectionNamespace
	if leNamespace == "" && len(namespaces) > 0 {
		leNamespace = namespaces[0]
	}
	// Every request to the API server tells whether the cloud answers.
	cloud := devicecontroller.NewCloud(pool, f.kubeTimeout)
	cfg = cloud.Config(cfg)
	// What the cache keeps outside its Devices, and where the bridge reads
	// it (see devicecontroller.DeviceFields).
	fields := devicecontroller.NewDeviceFields()

	edge, bus, err := connectEdgeX(ctx, f, pool)
	if err != nil {
		return err
	}
	defer bus.Close()
	mgrOpts := ctrl.Options{
		Scheme:                 scheme,
		Cache:                  devicecontroller.PoolCacheOptions(pool, namespaces, selection, fields),
		MapperProvider:         devicecontroller.RESTMapper,
		Metrics:                metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress: f.probeAddr,
		LeaderElection:         f.leaderElect,
		LeaseDuration:          &f.leaseDuration,
		RenewDeadline:          &f.renewDeadline,
		RetryPeriod:            &f.retryPd,
		// A replica that stops leading exits promptly, so that the new
		// leader never overlaps with it.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptr.To(devicecontroller.ShutdownGrace),
	}
	var lock *devicecontroller.LeaderLock
	if f.leaderElect {
		// The pool's lease, renewed through the pool's message bus while
		// the cloud is unreachable (see devicecontroller/leader.go).
		lock, err = devicecontroller.NewLeaderLock(cfg, cloud, devicecontroller.LeaderElection{
			Namespace: leNamespace, Name: devicecontroller.LeaseName(pool),
			Seat:          f.leaderSeat,
			LeaseDuration: f.leaseDuration, RenewDeadline: f.renewDeadline, RetryPeriod: f.retryPd,
			Beacon: bus, Topic: devicecontroller.BeaconTopic(f.topicPrefix, pool),
		})
		if err != nil {
			return err
		}
		mgrOpts.LeaderElectionResourceLockInterface = lock
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if lock != nil {
		if err := mgr.Add(lock); err != nil {
			return fmt.Errorf("add leader beacon: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := servePprof(ctx, f.pprofAddr); err != nil {
		return err
	}

	opts := devicecontroller.Options{
		Cloud: cloud, PoolSelection: selection, DeviceFields: fields,
		NodePool: pool, Namespaces: namespaces, ResyncPeriod: f.resyncPeriod,
		DeletionGuardFraction: f.guardFraction, DeletionGuardMinimum: f.guardMinimum, Workers: f.workers,
		StatusInterval: f.statusInterval, StatusWriters: f.statusWriters, StatusWriteRate: f.statusWriteRate, ConnectedRefresh: f.connectedRefresh, KeepManagedFields: !f.pruneManagedFields, MaxReadingSeries: f.maxSeries, NorthboundPrefix: f.northboundPrefix,
		CommandTransport: f.transport, CommandTimeout: f.commandTimeout, CommandRate: f.commandRate,
		CommandBurst: f.commandBurst, MaxCommandsInFlight: f.commandsInFlight,
	}
	if f.northboundBroker != "" {
		nb, err := dialBus(ctx, f.northboundBroker, "", "edgebridge-northbound-"+pool, f.northboundUserFile, f.northboundPasswordFile, nil)
		if err != nil {
			return fmt.Errorf("northbound broker: %w", err)
		}
		defer nb.Close()
		opts.Northbound = nb
	}
	if _, err := devicecontroller.New(mgr, edge, opts); err != nil {
		return err
	}
	ctrl.Log.Info("starting", "pool", pool, "namespaces", namespaces, "coreMetadata", f.metadataURL,
		"coreCommand", f.commandURL, "broker", f.broker, "commandTransport", f.transport)
	return devicecontroller.RunManager(ctx, mgr)
}

// poolSelection is the --pool-selection flag's choice, or what the API
// server can do when it says auto.
func poolSelection(ctx context.Context, cfg *rest.Config, flag, pool string, namespaces []string) (devicecontroller.PoolSelection, error) {
	log := ctrl.Log.WithName("setup")
	sel, err := devicecontroller.ParsePoolSelection(flag)
	if err != nil {
		return "", fmt.Errorf("--pool-selection: %w", err)
	}
	if sel != "" {
		log.Info("pool selection set by flag", "poolSelection", sel)
		return sel, nil
	}
	if len(namespaces) == 0 {
		return "", errors.New("--namespaces names no namespace")
	}
	c, err := client.New(cfg, client.Options{Scheme: devicecontroller.Scheme()})
	if err != nil {
		return "", fmt.Errorf("client to probe the API server: %w", err)
	}
	if sel, err = devicecontroller.DetectPoolSelection(ctx, c, pool, namespaces[0], log); err != nil {
		return "", err
	}
	why := "the API server selects these kinds by spec.nodePool"
	if sel == devicecontroller.SelectByLabel {
		why = "the API server cannot select these kinds by spec.nodePool (Kubernetes before 1.31, or CRDs without selectableFields); the bridge keeps the " + v1alpha1.PoolLabel + " label equal to spec.nodePool and selects by it"
	}
	log.Info("pool selection probed", "poolSelection", sel, "why", why)
	return sel, nil
}

// servePprof serves Go's profiler on a listener of its own, apart from the
// metrics endpoint, so that it can stay closed in production and be opened
// on loopback only where someone profiles the bridge (make bench).
func servePprof(ctx context.Context, addr string) error {
	if addr == "" || addr == "0" {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for pprof on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	ctrl.Log.WithName("setup").Info("serving pprof", "address", l.Addr().String())
	return nil
}

// connectEdgeX builds the EdgeX clients. The message bus connects in the
// background: the bridge starts even while the broker is down. The caller
// closes the bus.
func connectEdgeX(ctx context.Context, f *flags, pool string) (devicecontroller.EdgeX, *messagebus.Client, error) {
	restOpts := edgex.Options{
		MetadataURL: f.metadataURL, CommandURL: f.commandURL, Timeout: f.edgexTimeout, PageSize: f.pageSize,
		TokenFile: f.tokenFile, CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile, UserAgent: userAgent,
		Observer: devicecontroller.ObserveEdgeXRequest(pool),
	}
	meta, err := edgex.NewMetadata(restOpts)
	if err != nil {
		return devicecontroller.EdgeX{}, nil, fmt.Errorf("core-metadata client: %w", err)
	}
	cmd, err := edgex.NewCommand(restOpts)
	if err != nil {
		return devicecontroller.EdgeX{}, nil, fmt.Errorf("core-command client: %w", err)
	}
	tlsConfig, err := edgex.TLSConfig(f.mqttCAFile, f.mqttCertFile, f.mqttKeyFile)
	if err != nil {
		return devicecontroller.EdgeX{}, nil, fmt.Errorf("message bus TLS: %w", err)
	}
	clientID := f.mqttClientID
	if clientID == "" {
		clientID = "edgebridge-" + pool
	}
	bus, err := dialBus(ctx, f.broker, f.topicPrefix, clientID, f.mqttUserFile, f.mqttPasswordFile, tlsConfig)
	if err != nil {
		return devicecontroller.EdgeX{}, nil, err
	}
	edge := devicecontroller.EdgeX{
		Devices: meta.Devices, Services: meta.Services, Profiles: profileStore{meta.Profiles, meta},
		Commands: cmd, Bus: bus, Ping: meta.Ping,
	}
	switch f.transport {
	case "rest":
	case "mqtt":
		edge.Commands = messagebus.CommandClient{Client: bus, RESTURL: cmd.URL}
	default:
		bus.Close()
		return devicecontroller.EdgeX{}, nil, fmt.Errorf("--command-transport must be rest or mqtt, not %q", f.transport)
	}
	return edge, bus, nil
}

// profileStore joins the profile kind and the full replacement EdgeX offers
// only for profiles.
type profileStore struct {
	*edgex.Kind[dtos.DeviceProfile, dtos.UpdateDeviceProfileBasicInfo]
	meta *edgex.Metadata
}

func (p profileStore) ReplaceProfiles(ctx context.Context, profiles ...dtos.DeviceProfile) ([]edgex.Result, error) {
	return p.meta.ReplaceProfiles(ctx, profiles...)
}

func dialBus(ctx context.Context, url, prefix, clientID, userFile, passwordFile string, tlsConfig *tls.Config) (*messagebus.Client, error) {
	user, err := readSecretFile(userFile)
	if err != nil {
		return nil, err
	}
	password, err := readSecretFile(passwordFile)
	if err != nil {
		return nil, err
	}
	bus, err := messagebus.New(messagebus.Options{
		BrokerURL: url, ClientID: clientID, Username: user, Password: password, TLS: tlsConfig,
		TopicPrefix: prefix, Logger: ctrl.Log.WithName("mqtt"),
	})
	if err != nil {
		return nil, fmt.Errorf("message bus client for %s: %w", url, err)
	}
	if err := bus.Start(ctx); err != nil {
		return nil, fmt.Errorf("start message bus client for %s: %w", url, err)
	}
	return bus, nil
}

// readSecretFile reads a credential mounted from a Secret. Credentials are
// never taken from flags' values or objects, and never logged.
func readSecretFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read credential file: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// resolveNodePool returns the pool from the flag, or from the pool label
// of the node the bridge runs on.
func resolveNodePool(ctx context.Context, cfg *rest.Config, pool, node string) (string, error) {
	if pool != "" {
		return pool, nil
	}
	if node == "" {
		return "", errors.New("set --nodepool, or --node-name (NODE_NAME) so that the pool can be read from the node's " + v1alpha1.NodePoolLabel + " label")
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: node}, n); err != nil {
		return "", fmt.Errorf("read node %s to find its pool: %w", node, err)
	}
	if p := n.Labels[v1alpha1.NodePoolLabel]; p != "" {
		return p, nil
	}
	return "", fmt.Errorf("node %s has no %s label; set --nodepool", node, v1alpha1.NodePoolLabel)
}

func versionString() string {
	return fmt.Sprintf("edgebridge %s (%s)", version, runtime.Version())
}
