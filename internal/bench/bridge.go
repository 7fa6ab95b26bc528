package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// bridgeProc is bin/devicecontroller running as a process of its own, so
// that its CPU and memory are its own and it talks to the API server, EdgeX
// and the broker over real sockets, as in production.
type bridgeProc struct {
	cmd     *exec.Cmd
	args    []string
	started time.Time
	exited  chan struct{}
	exitErr error
	logFile *os.File

	metricsURL, readyURL, pprofURL string
	http                           *http.Client
}

// bridgeSettings are the flags a pool's bridge is started with.
type bridgeSettings struct {
	pool, namespace, prefix      string
	metadataURL, commandURL      string
	transport                    string
	logName                      string
	statusInterval, resyncPeriod time.Duration
	// statusWriteRate is --status-write-rate, left at the bridge's default
	// when 0.
	statusWriteRate float64
}

func startBridge(r *rig, s bridgeSettings) (*bridgeProc, error) {
	metricsAddr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	probeAddr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	args := []string{
		"--kubeconfig=" + r.kubeconfig,
		"--nodepool=" + s.pool,
		"--namespaces=" + s.namespace,
		"--core-metadata-url=" + s.metadataURL,
		"--core-command-url=" + s.commandURL,
		"--mqtt-broker=" + r.broker.URL(),
		"--mqtt-topic-prefix=" + s.prefix,
		"--command-transport=" + s.transport,
		"--leader-elect=false",
		"--metrics-bind-address=" + metricsAddr,
		"--health-probe-bind-address=" + probeAddr,
		"--resync-period=" + s.resyncPeriod.String(),
		"--status-interval=" + s.statusInterval.String(),
		"--kube-api-qps=" + strconv.FormatFloat(r.cfg.kubeQPS, 'f', -1, 64),
		"--kube-api-burst=" + strconv.Itoa(r.cfg.kubeBurst),
	}
	if s.statusWriteRate > 0 {
		args = append(args, "--status-write-rate="+strconv.FormatFloat(s.statusWriteRate, 'f', -1, 64))
	}
	args = append(args, r.cfg.bridgeArgs...)
	b := &bridgeProc{
		metricsURL: "http://" + metricsAddr + "/metrics",
		readyURL:   "http://" + probeAddr + "/readyz",
		exited:     make(chan struct{}),
		http:       &http.Client{Timeout: 30 * time.Second},
	}
	if r.cfg.pprof {
		pprofAddr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		args = append(args, "--pprof-bind-address="+pprofAddr)
		b.pprofURL = "http://" + pprofAddr + "/debug/pprof"
	}
	b.args = args
	if b.logFile, err = os.Create(filepath.Join(r.cfg.logDir(), s.logName+".log")); err != nil {
		return nil, fmt.Errorf("bridge log: %w", err)
	}
	b.cmd = exec.Command(r.cfg.bridgeBin, args...)
	b.cmd.Stdout, b.cmd.Stderr = b.logFile, b.logFile
	b.cmd.Env = append(os.Environ(), "KUBECONFIG="+r.kubeconfig)
	b.started = time.Now()
	if err := b.cmd.Start(); err != nil {
		b.logFile.Close()
		return nil, fmt.Errorf("start %s: %w", r.cfg.bridgeBin, err)
	}
	go func() {
		b.exitErr = b.cmd.Wait()
		close(b.exited)
	}()
	return b, nil
}

func (b *bridgeProc) pid() int { return b.cmd.Process.Pid }

// alive reports an error once the process has exited.
func (b *bridgeProc) alive() error {
	select {
	case <-b.exited:
		return fmt.Errorf("the bridge exited: %v (see %s)", b.exitErr, b.logFile.Name())
	default:
		return nil
	}
}

// stop asks the bridge to shut down and kills it if it does not within
// timeout.
func (b *bridgeProc) stop(timeout time.Duration) {
	if b.alive() == nil {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(timeout)
		select {
		case <-b.exited:
		case <-t.C:
			_ = b.cmd.Process.Kill()
			<-b.exited
		}
		t.Stop()
	}
	b.logFile.Close()
}

func (b *bridgeProc) sample() procSample {
	s, _ := sampleProc(b.pid())
	return s
}

func (b *bridgeProc) metrics(ctx context.Context) (scrape, error) {
	if err := b.alive(); err != nil {
		return nil, err
	}
	return scrapeURL(ctx, b.http, b.metricsURL)
}

// waitReady waits until the bridge has listed all three kinds in EdgeX
// (its resync counter says so) and /readyz answers 200. /readyz alone is
// not enough: before the manager starts the bridge's runnables it reports
// ready as a standby replica would, even with leader election off.
func (b *bridgeProc) waitReady(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, 20*time.Millisecond, func(ctx context.Context) (bool, error) {
		if err := b.alive(); err != nil {
			return false, err
		}
		m, err := scrapeURL(ctx, b.http, b.metricsURL)
		if err != nil {
			return false, nil // not listening yet
		}
		listed := m.by("edgebridge_resyncs_total", "kind", map[string]string{"result": "ok"})
		if len(listed) < 3 {
			return false, nil
		}
		for _, n := range listed {
			if n < 1 {
				return false, nil
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.readyURL, nil)
		if err != nil {
			return false, err
		}
		resp, err := b.http.Do(req)
		if err != nil {
			return false, nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// waitIdle waits until every work queue of the bridge is empty and nothing
// is being processed, on three scrapes in a row: the bridge has finished
// what the last phase gave it to do.
func (b *bridgeProc) waitIdle(ctx context.Context, timeout time.Duration) error {
	quiet := 0
	return poll(ctx, timeout, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		m, err := b.metrics(ctx)
		if err != nil {
			return false, err
		}
		busy := m.sum("workqueue_depth", nil) + m.sum("workqueue_unfinished_work_seconds", nil) +
			m.sum("controller_runtime_active_workers", nil)
		if busy > 0 {
			quiet = 0
			return false, nil
		}
		quiet++
		return quiet >= 3, nil
	})
}

// awaitEmptied waits until the bridge has no object's managedFields left
// to empty.
func (b *bridgeProc) awaitEmptied(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, time.Second, func(ctx context.Context) (bool, error) {
		if err := b.alive(); err != nil {
			return false, err
		}
		m, err := b.metrics(ctx)
		if err != nil {
			return false, nil // a busy machine answers late; ask again
		}
		return m.sum("edgebridge_managed_fields_left", nil) == 0, nil
	})
}

// cpuProfile records a CPU profile of the bridge for d into path, in the
// background; wait for the returned channel before reading the file.
func (b *bridgeProc) cpuProfile(ctx context.Context, d time.Duration, path string) <-chan error {
	done := make(chan error, 1)
	if b.pprofURL == "" {
		done <- nil
		return done
	}
	go func() {
		// The endpoint opens a moment after the process starts.
		err := poll(ctx, 30*time.Second, 20*time.Millisecond, func(ctx context.Context) (bool, error) {
			return fetchToFile(ctx, b.pprofURL+"/", os.DevNull, 5*time.Second) == nil, b.alive()
		})
		if err != nil {
			done <- err
			return
		}
		url := fmt.Sprintf("%s/profile?seconds=%d", b.pprofURL, int(d.Seconds()))
		done <- fetchToFile(ctx, url, path, d+30*time.Second)
	}()
	return done
}

// heapProfile saves the bridge's heap profile into path.
func (b *bridgeProc) heapProfile(ctx context.Context, path string) error {
	if b.pprofURL == "" {
		return nil
	}
	return fetchToFile(ctx, b.pprofURL+"/heap", path, 30*time.Second)
}

func fetchToFile(ctx context.Context, url, path string, timeout time.Duration) error {
	return fetchToFileWith(ctx, http.DefaultClient, url, path, timeout)
}

// fetchToFileWith is fetchToFile through a given client (the API server's
// needs its credentials).
func fetchToFileWith(ctx context.Context, c *http.Client, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	return f.Close()
}

// poll calls check every interval until it reports done or fails, or
// timeout passes.
func poll(ctx context.Context, timeout, interval time.Duration, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		done, err := check(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, errTimeout)
		case <-tick.C:
		}
	}
}
