package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/edgebridge/edgebridge/hack/testenv"
	"github.com/edgebridge/edgebridge/hack/testenv/broker"
)

// rig is the machinery every phase shares: the real kube-apiserver and etcd
// the tests use, one mosquitto, and the kubeconfig the bridge processes
// are given. Everything listens on loopback.
type rig struct {
	cfg  *config
	load *loadMonitor
	dir  string
	kube *testenv.Kube
	// restConfig has no client-side rate limit: the benchmark's own
	// requests must never be what limits a figure.
	restConfig *rest.Config
	client     client.Client
	broker     *broker.Broker
	kubeconfig string
	apiserver  *http.Client
	// pids of the control plane and the broker, for CPU figures.
	apiserverPID, etcdPID, brokerPID int
	// etcdDir holds etcd's data when it is on tmpfs (see etcdDataDir).
	etcdDir string
}

func startRig(ctx context.Context, cfg *config, load *loadMonitor) (*rig, error) {
	dir, err := os.MkdirTemp("", "edgebridge-bench-")
	if err != nil {
		return nil, err
	}
	r := &rig{cfg: cfg, load: load, dir: dir}
	if err := r.start(ctx); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

func (r *rig) start(ctx context.Context) error {
	var err error
	r.etcdDir = etcdDataDir()
	if r.kube, err = testenv.StartKube(testenv.KubeOptions{EtcdDataDir: r.etcdDir}); err != nil {
		return err
	}
	r.restConfig = rest.CopyConfig(r.kube.Config)
	r.restConfig.QPS, r.restConfig.Burst = -1, 0
	if r.client, err = client.New(r.restConfig, client.Options{Scheme: r.kube.Scheme}); err != nil {
		return fmt.Errorf("client for the API server: %w", err)
	}
	if r.apiserver, err = rest.HTTPClientFor(r.kube.Config); err != nil {
		return fmt.Errorf("HTTP client for the API server's metrics: %w", err)
	}
	if err := r.writeKubeconfig(); err != nil {
		return err
	}
	brokerDir := filepath.Join(r.dir, "mosquitto")
	if err := os.MkdirAll(brokerDir, 0o700); err != nil {
		return err
	}
	if r.broker, err = broker.StartIn(brokerDir, broker.Options{}); err != nil {
		return err
	}
	children := childProcesses(os.Getpid())
	r.apiserverPID, r.etcdPID, r.brokerPID = children["kube-apiserver"], children["etcd"], children["mosquitto"]
	if r.apiserverPID == 0 || r.etcdPID == 0 || r.brokerPID == 0 {
		return fmt.Errorf("cannot find the control plane's processes among this process's children: %v", children)
	}
	return ctx.Err()
}

// writeKubeconfig gives the bridge processes an admin user of their own on
// the envtest API server.
func (r *rig) writeKubeconfig() error {
	user, err := r.kube.Env.AddUser(envtest.User{Name: "edgebridge-bench", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add the bridge's user to the API server: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig for the bridge: %w", err)
	}
	r.kubeconfig = filepath.Join(r.dir, "kubeconfig")
	return os.WriteFile(r.kubeconfig, data, 0o600)
}

func (r *rig) stop() {
	if r.broker != nil {
		r.broker.Stop()
	}
	if r.kube != nil {
		if err := r.kube.Stop(); err != nil {
			logf("stop control plane: %v", err)
		}
	}
	_ = os.RemoveAll(r.dir)
	if r.etcdDir != "" {
		_ = os.RemoveAll(r.etcdDir)
	}
}

// etcdDataDir is a new directory under /dev/shm where the machine has
// one, else "" (envtest's own under $TMPDIR). envtest's etcd already skips
// fsync, but with its data on disk the kernel's writeback of etcd's
// preallocated WAL files took over a core of a 2-core machine in full runs
// (kworker ext4-rsv-conversion and writeback), time taken from the
// processes being measured. Memory holds the data of a benchmark run (a
// few hundred MB at 10,000 devices) easily.
func etcdDataDir() string {
	dir, err := os.MkdirTemp("/dev/shm", "edgebridge-bench-etcd-")
	if err != nil {
		return ""
	}
	return dir
}

// etcdDataPlace says where etcd keeps its data, for the report.
func (r *rig) etcdDataPlace() string {
	if r.etcdDir != "" {
		return "/dev/shm (tmpfs)"
	}
	return "$TMPDIR"
}

func (r *rig) createNamespace(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := r.client.Create(ctx, ns); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// ensureNamespace creates the namespace unless it exists.
func (r *rig) ensureNamespace(ctx context.Context, name string) error {
	if err := r.createNamespace(ctx, name); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// apiserverMetrics reads the kube-apiserver's own /metrics.
func (r *rig) apiserverMetrics(ctx context.Context) (scrape, error) {
	return scrapeURL(ctx, r.apiserver, strings.TrimSuffix(r.kube.Config.Host, "/")+"/metrics")
}

// apiserverCPUProfile records a CPU profile of the kube-apiserver for d
// into path, in the background, when the benchmark profiles; wait for the
// returned channel before reading the file.
func (r *rig) apiserverCPUProfile(ctx context.Context, d time.Duration, path string) <-chan error {
	return r.apiserverTimedProfile(ctx, "profile", d, path)
}

// apiserverAllocProfile records what the kube-apiserver allocated over d
// (a delta of its allocs profile) into path, like apiserverCPUProfile:
// how often it collects, and so how often its requests are made to help
// mark its heap, follows what it allocates.
func (r *rig) apiserverAllocProfile(ctx context.Context, d time.Duration, path string) <-chan error {
	return r.apiserverTimedProfile(ctx, "allocs", d, path)
}

func (r *rig) apiserverTimedProfile(ctx context.Context, profile string, d time.Duration, path string) <-chan error {
	done := make(chan error, 1)
	if !r.cfg.pprof {
		done <- nil
		return done
	}
	go func() {
		url := fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", strings.TrimSuffix(r.kube.Config.Host, "/"), profile, max(1, int(d.Seconds())))
		done <- fetchToFileWith(ctx, r.apiserver, url, path, d+30*time.Second)
	}()
	return done
}

// apiserverHeapProfile saves the kube-apiserver's heap profile into path
// when the benchmark profiles: what its live heap, and so the length of
// each of its collections, is made of.
func (r *rig) apiserverHeapProfile(ctx context.Context, path string) error {
	if !r.cfg.pprof {
		return nil
	}
	return fetchToFileWith(ctx, r.apiserver, strings.TrimSuffix(r.kube.Config.Host, "/")+"/debug/pprof/heap", path, 30*time.Second)
}

// controlPlane samples the API server's and etcd's CPU and memory.
func (r *rig) controlPlane() (apiserver, etcd procSample) {
	apiserver, _ = sampleProc(r.apiserverPID)
	etcd, _ = sampleProc(r.etcdPID)
	return apiserver, etcd
}

func scrapeURL(ctx context.Context, c *http.Client, url string) (scrape, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return parseScrape(resp.Body)
}

// apiWrites counts the API server's completed write requests by resource
// (with "/subresource"), from apiserver_request_total. envtest runs no
// controllers, so outside the benchmark's own requests every write counted
// comes from a bridge; leases are left out, being the API server's own
// heartbeat.
func apiWrites(s scrape) map[string]float64 {
	return apiRequests(s, func(verb string) bool {
		switch verb {
		case "POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION":
			return true
		}
		return false
	})
}

// apiReads is apiWrites for reads: GET and LIST by resource, watches
// left out (they are counted when they start, not by what they carry).
func apiReads(s scrape) map[string]float64 {
	return apiRequests(s, func(verb string) bool { return verb == "GET" || verb == "LIST" })
}

func apiRequests(s scrape, verbs func(string) bool) map[string]float64 {
	out := map[string]float64{}
	for _, smp := range s {
		if smp.name != "apiserver_request_total" || !verbs(smp.labels["verb"]) {
			continue
		}
		res := smp.labels["resource"]
		if res == "leases" {
			continue
		}
		if sub := smp.labels["subresource"]; sub != "" {
			res += "/" + sub
		}
		out[res] += smp.value
	}
	return out
}

// diffCounts subtracts counter maps (after - before), dropping zeros.
func diffCounts[K comparable, V int64 | float64](before, after map[K]V) map[K]V {
	out := map[K]V{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func total[K comparable, V int64 | float64](m map[K]V) V {
	var t V
	for _, v := range m {
		t += v
	}
	return t
}

// handedOut are the addresses freeLoopbackAddr gave out: the kernel may
// offer a port again as soon as it is closed, and bridges started side by
// side would then race to bind the same one.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// freeLoopbackAddr is a loopback address with a port nothing listens on
// right now and that no earlier call returned, for a child process to bind.
func freeLoopbackAddr() (string, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("find a free port: %w", err)
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil {
			return "", err
		}
		if !handedOut.addrs[addr] {
			handedOut.addrs[addr] = true
			return addr, nil
		}
	}
	return "", errors.New("find a free port: the kernel offered only ports already given out")
}

var errTimeout = errors.New("timed out")
