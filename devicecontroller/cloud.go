package devicecontroller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Cloud knows whether the API server (the cloud, from an edge pool's point
// of view) answers the bridge. Every request the bridge makes to it passes
// through Config's transport, which learns from the answers: a request
// with no answer (refused, reset, timed out) or an answer from a proxy that
// could not reach it (502, 503, 504) says unreachable; an answered write
// says reachable. Reads do not count as proof, because behind YurtHub they
// are answered from the node's cache while the cloud is away.
//
// Behind YurtHub, writes are answered from the node too once YurtHub has
// found the cloud unhealthy: a create gets 201 with the request's own body,
// an update or patch 200 with the cached object, a delete 403, a request it
// cannot serve 400. None of that reached the API server. Every
// kube-apiserver sets an Audit-Id header on every response (its
// audit-init filter runs whether or not auditing is on), and proxies pass
// it on; so a write answered without one, or an error answered without
// one, is read as no answer: the cloud is unreachable, and the caller gets
// an error instead of a success that did not happen.
//
// While the cloud is unreachable the bridge keeps working from its caches,
// holds status writes (they coalesce in memory and land on recovery), and
// /readyz and edgebridge_cloud_reachable say so. It never stops a process.
type Cloud struct {
	pool string
	// requestTimeout bounds every request but watches, so that a link that
	// drops packets without refusing them cannot hold a worker for the
	// kernel's TCP timeouts.
	requestTimeout time.Duration
	reachableGauge prometheus.Gauge
	outages        prometheus.Counter
	log            logr.Logger

	mu   sync.Mutex
	down bool
	// back is closed when the cloud answers again; it exists while down.
	back      chan struct{}
	since     time.Time
	lastErr   error
	onRecover []func()
	// probe, when set, is an answered-only-by-the-cloud write made while
	// the cloud is away, so that recovery is noticed even when the bridge
	// has nothing to write.
	probe func(context.Context) error
	wake  chan struct{}
	// proxied is set once a proxy in front of the API server has answered
	// a request itself: reads may then be answered from its cache.
	proxied bool
	// probing is set once Start runs: only then can a held read be let go
	// by a probe that finds the cloud back.
	probing bool
}

var (
	cloudMetricsOnce sync.Once
	cloudReachable   *prometheus.GaugeVec
	cloudOutages     *prometheus.CounterVec
)

// DefaultKubeRequestTimeout is the default of --kube-api-timeout.
const DefaultKubeRequestTimeout = 30 * time.Second

// NewCloud returns the reachability of one pool's API server, reachable
// until a request proves otherwise. requestTimeout bounds each request but
// watches; zero means DefaultKubeRequestTimeout.
func NewCloud(pool string, requestTimeout time.Duration) *Cloud {
	cloudMetricsOnce.Do(func() {
		cloudReachable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edgebridge_cloud_reachable",
			Help: "1 while the API server answers the bridge, 0 while the cloud is unreachable (the bridge works on from its caches).",
		}, []string{"pool"})
		cloudOutages = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgebridge_cloud_outages_total", Help: "Times the API server became unreachable.",
		}, []string{"pool"})
		ctrlmetrics.Registry.MustRegister(cloudReachable, cloudOutages)
	})
	if requestTimeout == 0 {
		requestTimeout = DefaultKubeRequestTimeout
	}
	c := &Cloud{pool: pool, requestTimeout: requestTimeout, wake: make(chan struct{}, 1),
		reachableGauge: cloudReachable.WithLabelValues(pool), outages: cloudOutages.WithLabelValues(pool),
		log: ctrllog.Log.WithName("edgebridge").WithName("cloud").WithValues("pool", pool)}
	c.reachableGauge.Set(1)
	c.outages.Add(0)
	return c
}

// Config returns a copy of cfg whose requests report to c and, but for
// watches, end after the request timeout.
func (c *Cloud) Config(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	wrap := out.WrapTransport
	out.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if wrap != nil {
			rt = wrap(rt)
		}
		return &cloudTransport{next: rt, cloud: c}
	}
	return out
}

// Down reports whether the cloud is known unreachable, since when, and why.
func (c *Cloud) Down() (bool, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down, c.since, c.lastErr
}

// Readyz fails while the cloud is unreachable; it is one of /readyz's
// checks. /healthz never looks at it: a bridge cut off from the cloud is
// alive and working, and must not be restarted for it.
func (c *Cloud) Readyz(*http.Request) error {
	if down, since, err := c.Down(); down {
		return fmt.Errorf("cloud unreachable since %s (working from cache): %w", since.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// OnRecover registers f to run (without blocking) when the cloud answers
// again.
func (c *Cloud) OnRecover(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onRecover = append(c.onRecover, f)
}

// failed records a request that got no answer from the API server.
func (c *Cloud) failed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
	if c.down {
		return
	}
	c.down, c.since, c.back = true, time.Now(), make(chan struct{})
	c.reachableGauge.Set(0)
	c.outages.Inc()
	c.log.Info("cloud unreachable; working from cache, holding status writes", "cause", err.Error())
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// answered records a write the API server answered.
func (c *Cloud) answered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.down {
		return
	}
	c.down, c.lastErr = false, nil
	close(c.back)
	c.reachableGauge.Set(1)
	c.log.Info("cloud answers again; writing what was held", "after", time.Since(c.since).Round(time.Second).String())
	for _, f := range c.onRecover {
		f()
	}
}

// NeedLeaderElection is false: a standby must know about the cloud too.
func (c *Cloud) NeedLeaderElection() bool { return false }

// Start probes while the cloud is away, every two to fifteen seconds, until
// ctx ends. It is a manager runnable.
func (c *Cloud) Start(ctx context.Context) error {
	c.mu.Lock()
	c.probing = true
	c.mu.Unlock()
	down := func() bool { d, _, _ := c.Down(); return d && c.probe != nil }
	// The transport records each probe's outcome.
	probeWhileDown(ctx, c.wake, down, 2*time.Second, 15*time.Second, 10*time.Second, func(ctx context.Context) {
		_ = c.probe(ctx)
	})
	return nil
}

// noAnswer reports whether err means the API server did not answer: no
// HTTP response at all (refused, reset, timed out), as opposed to an answer
// that refuses (conflict, forbidden, not found).
func noAnswer(err error) bool {
	if err == nil {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return unavailableStatus(int(status.Status().Code))
	}
	return true
}

func unavailableStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// auditIDHeader is set by every kube-apiserver on every response.
const auditIDHeader = "Audit-Id"

// errNotFromCloud is what a caller gets for a write (or an error) that a
// proxy answered in the API server's place.
var errNotFromCloud = errors.New("answered by a proxy in front of the API server (YurtHub's local cache?), not by the API server")

// answeredLocally reports whether a proxy, not the API server, answered:
// a write, or an error, without the API server's Audit-Id. A read the
// proxy serves from its cache is an answer the bridge wants, and passes.
func answeredLocally(req *http.Request, resp *http.Response) bool {
	if resp.Header.Get(auditIDHeader) != "" {
		return false
	}
	write := req.Method != http.MethodGet && req.Method != http.MethodHead
	// 429 asks the client to come again (YurtHub refuses a watch that
	// streams the initial list so, and the informer lists instead); it
	// says nothing of the cloud.
	return write || (resp.StatusCode >= http.StatusBadRequest && resp.StatusCode != http.StatusTooManyRequests)
}

// cloudTransport observes every request to the API server.
type cloudTransport struct {
	next  http.RoundTripper
	cloud *Cloud
}

func (t *cloudTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	callerCtx := req.Context()
	if err := t.cloud.holdRead(req); err != nil {
		return nil, err
	}
	cancel := func() {}
	if !isWatch(req) {
		if _, bounded := callerCtx.Deadline(); !bounded {
			var ctx context.Context
			ctx, cancel = context.WithTimeout(callerCtx, t.cloud.requestTimeout)
			req = req.WithContext(ctx)
		}
	}
	resp, err := t.next.RoundTrip(req)
	switch {
	case err != nil:
		cancel()
		if !errors.Is(callerCtx.Err(), context.Canceled) {
			t.cloud.failed(fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err))
		}
		return nil, err
	case unavailableStatus(resp.StatusCode):
		t.cloud.failed(fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status))
	case answeredLocally(req, resp):
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		cancel()
		err := fmt.Errorf("%s %s: %s: %w", req.Method, req.URL.Path, resp.Status, errNotFromCloud)
		t.cloud.mu.Lock()
		t.cloud.proxied = true
		t.cloud.mu.Unlock()
		t.cloud.failed(err)
		return nil, err
	case req.Method != http.MethodGet && req.Method != http.MethodHead:
		t.cloud.answered()
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// holdRead keeps a read that no deadline bounds (an informer's list or
// watch) waiting while the cloud is away, and lets it go the moment the
// cloud answers. Failing it instead would only grow the informer's backoff
// (up to a minute) and leave the cache, and so every object's next
// reconcile, that much behind after the outage. Writes, and reads with a
// deadline (the lease), go out and say whether the cloud is back. Behind a
// proxy that answers for the cloud (YurtHub), nothing waits: its cache
// answers lists at once, which is how a bridge restarted during an outage
// fills its caches, and holds watches open until the cloud returns. Nor
// does anything wait before the probe runs: the manager starts it only once
// the caches have synced, so a read held before would never be let go.
func (c *Cloud) holdRead(req *http.Request) error {
	if req.Method != http.MethodGet {
		return nil
	}
	if _, bounded := req.Context().Deadline(); bounded {
		return nil
	}
	c.mu.Lock()
	back := c.back
	down := c.down
	proxied, probing := c.proxied, c.probe != nil && c.probing
	c.mu.Unlock()
	if !down || proxied || !probing {
		return nil
	}
	select {
	case <-back:
		return nil
	case <-req.Context().Done():
		return req.Context().Err()
	}
}

func isWatch(req *http.Request) bool {
	w := req.URL.Query().Get("watch")
	return w == "true" || w == "1"
}

// cancelOnClose ends a request's own deadline once its body is read.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
