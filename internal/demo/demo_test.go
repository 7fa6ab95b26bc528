package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/responses"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// The processes the demo must start, by the names Linux gives them (at
// most 15 characters).
var wantChildren = []string{"etcd", "kube-apiserver", "mosquitto", "devicecontrolle", "device-admissio"}

// TestDemoRunsLikeMakeDemo runs the demo as `make demo` does, from built
// binaries, and uses it as the tour tells a user to: it edits a device
// through the API server with the written kubeconfig until the simulated
// device holds the value, sees a forbidden value refused, telemetry on the
// northbound topics and metrics served; then it presses Ctrl-C and checks
// that the demo exits cleanly and leaves no process behind.
func TestDemoRunsLikeMakeDemo(t *testing.T) {
	bin := buildBinaries(t)
	dir := t.TempDir()
	readyFile := filepath.Join(dir, "ready.json")
	d := startDemo(t, bin, "--dir", filepath.Join(dir, "demo"), "--ready-file", readyFile)
	info := d.waitReady(t, readyFile)
	t.Cleanup(func() { d.showLogsIfFailed(t, info) })

	started, err := descendants(d.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range wantChildren {
		if !hasProcess(started, name) {
			t.Errorf("the demo runs no %s; its processes: %v", name, started)
		}
	}
	c := clientFor(t, info.Kubeconfig)
	gpio, gpioEdgeX := info.Devices["gpio-board-01"], "gpio-board-01"
	if gpio == "" {
		t.Fatalf("the ready file names no GPIO board: %+v", info.Devices)
	}

	t.Run("kubectl edit reaches the device", func(t *testing.T) {
		setDesired(t, c, info.Namespace, gpio, "pin_17", "true")
		testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
			v, err := readFromEdgeX(ctx, info.CoreCommandURL, gpioEdgeX, "pin_17")
			if err != nil {
				return err
			}
			if !convert.EqualValues("Bool", "true", v) {
				return fmt.Errorf("core-command reads pin_17=%q", v)
			}
			return nil
		})
		testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
			dev := &v1alpha1.Device{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: info.Namespace, Name: gpio}, dev); err != nil {
				return err
			}
			if got := dev.Status.DeviceProperties["pin_17"].ActualValue; !convert.EqualValues("Bool", "true", got) {
				return fmt.Errorf("status says pin_17=%q", got)
			}
			return nil
		})
	})
	t.Run("the tour's camera PTZ command reaches the camera", func(t *testing.T) {
		camera := info.Devices["camera-01"]
		const ptz = `{"pan":10.5,"tilt":-5,"zoom":2}`
		if !strings.Contains(d.output(), `"desiredValue":"{\"pan\":10.5,\"tilt\":-5,\"zoom\":2}"`) {
			t.Errorf("the tour lacks the PTZ patch")
		}
		setDesired(t, c, info.Namespace, camera, "ptz", ptz)
		testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
			v, err := readObjectFromEdgeX(ctx, info.CoreCommandURL, "camera-01", "ptz")
			if err != nil {
				return err
			}
			if !convert.EqualValues("Object", ptz, v) {
				return fmt.Errorf("core-command reads ptz=%s", v)
			}
			return nil
		})
	})
	t.Run("a value the profile forbids is refused", func(t *testing.T) {
		// Dry runs, so that a webhook not yet consulted (failurePolicy
		// Ignore) cannot leave a bad value behind.
		testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
			err := c.Patch(ctx, &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: info.Namespace, Name: gpio}},
				desiredPatch("pin_27", "true"), client.DryRunAll)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "read-only") {
				return fmt.Errorf("setting read-only pin_27: %v, want refused as read-only", err)
			}
			return nil
		})
	})
	t.Run("telemetry reaches the tour's mosquitto_sub", func(t *testing.T) {
		topic := subscribeOnce(t, info.BrokerURL, "edgebridge/#")
		// edgebridge/<pool>/<namespace>/<device>/<source>
		parts := strings.Split(topic, "/")
		if len(parts) != 5 || parts[1] != info.Pool || parts[2] != info.Namespace || !slices.Contains(slices.Collect(maps.Values(info.Devices)), parts[3]) {
			t.Errorf("first northbound message on %q, want edgebridge/%s/%s/<one of %v>/<source>", topic, info.Pool, info.Namespace, info.Devices)
		}
	})
	t.Run("metrics carry readings", func(t *testing.T) {
		testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
			body, err := httpGet(ctx, info.MetricsURL)
			if err != nil {
				return err
			}
			if !strings.Contains(body, `edgebridge_reading_value{device="`+gpio+`"`) {
				return errors.New("no edgebridge_reading_value of the GPIO board yet")
			}
			return nil
		})
	})
	t.Run("the tour prints the exact commands", func(t *testing.T) {
		broker, err := url.Parse(info.BrokerURL)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"export KUBECONFIG=" + info.Kubeconfig,
			"get devices -n " + info.Namespace,
			"edit device " + gpio + " -n " + info.Namespace,
			"get device " + gpio + " -n " + info.Namespace + " -o jsonpath='{.status.deviceProperties.pin_17.actualValue}",
			"mosquitto_sub -h " + broker.Hostname() + " -p " + broker.Port() + " -t 'edgebridge/#' -v",
			"curl -s " + info.MetricsURL,
		} {
			if !strings.Contains(d.output(), want) {
				t.Errorf("the tour lacks %q", want)
			}
		}
	})

	d.interrupt(t)
	for _, p := range started {
		if p.running() {
			t.Errorf("%s still runs after the demo exited", p)
		}
	}
	if _, err := os.Stat(readyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file left behind: %v", err)
	}
}

// TestDemoStopsEverythingWhenItsOutputIsClosed is `make demo 2>&1 | tee
// demo.log` followed by Ctrl-C: the terminal's interrupt ends tee with the
// demo, so every line the demo prints while it stops goes to a closed pipe.
// The demo must still stop every process it started.
func TestDemoStopsEverythingWhenItsOutputIsClosed(t *testing.T) {
	bin := buildBinaries(t)
	dir := t.TempDir()
	readyFile := filepath.Join(dir, "ready.json")
	tee, demoOut, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &demo{out: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(filepath.Join(bin, "demo"), "--dir", filepath.Join(dir, "demo"), "--ready-file", readyFile, "--admission=false")
	d.cmd.Stdout, d.cmd.Stderr = demoOut, demoOut
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	demoOut.Close() // the demo holds the only write end, as under a pipe
	teeDone := make(chan struct{})
	go func() {
		defer close(teeDone)
		_, _ = io.Copy(d.out, tee)
	}()
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(d.stopAfterFailure)
	info := d.waitReady(t, readyFile)
	t.Cleanup(func() { d.showLogsIfFailed(t, info) })
	started, err := descendants(d.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(started) == 0 {
		t.Fatal("the demo started no processes")
	}

	tee.Close() // tee ends first, on the same Ctrl-C
	<-teeDone
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the demo did not exit within 2 minutes of Ctrl-C with its output closed")
	}
	if ws, ok := d.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Errorf("the demo was killed by %v while it stopped, instead of finishing its clean-up", ws.Signal())
	}
	for _, p := range started {
		if p.running() {
			t.Errorf("%s still runs after the demo exited with its output closed", p)
			_ = syscall.Kill(p.pid, syscall.SIGKILL) // leave nothing behind for the next test
		}
	}
}

// buildBinaries builds the demo and the binaries it runs into a temporary
// bin/, as `make build` does (with the race detector when the test has it,
// which reuses what `go test -race` compiled).
func buildBinaries(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	if raceBuild {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/demo", "./cmd/devicecontroller", "./cmd/device-admission")
	cmd := exec.Command("go", args...)
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// demo is the running demo process.
type demo struct {
	cmd    *exec.Cmd
	out    *testenv.SyncBuffer
	exited chan struct{}
	err    error
}

func startDemo(t *testing.T, bin string, args ...string) *demo {
	t.Helper()
	d := &demo{out: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(filepath.Join(bin, "demo"), args...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(d.stopAfterFailure)
	return d
}

func (d *demo) output() string { return d.out.String() }

// waitReady waits for the ready file, and fails if the demo exits first.
func (d *demo) waitReady(t *testing.T, path string) readyInfo {
	t.Helper()
	deadline := time.After(5 * time.Minute)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			var info readyInfo
			if err := json.Unmarshal(data, &info); err != nil {
				t.Fatalf("ready file: %v\n%s", err, data)
			}
			return info
		}
		select {
		case <-d.exited:
			t.Fatalf("the demo exited (%v) before it was ready:\n%s", d.err, d.output())
		case <-deadline:
			t.Fatalf("the demo was not ready within 5 minutes:\n%s", d.output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// interrupt is Ctrl-C: the demo must stop everything and exit with 0.
func (d *demo) interrupt(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the demo did not exit within 2 minutes of Ctrl-C:\n%s", d.output())
	}
	if d.err != nil {
		t.Errorf("the demo exited with %v:\n%s", d.err, d.output())
	}
	if !strings.Contains(d.output(), "all stopped") {
		t.Errorf("the demo did not report stopping everything:\n%s", d.output())
	}
}

// stopAfterFailure stops a demo a failed test left running, as Ctrl-C
// would, and kills it if it does not stop.
func (d *demo) stopAfterFailure() {
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.exited:
	case <-time.After(2 * time.Minute):
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.exited
	}
}

// showLogsIfFailed prints the end of each part's log when the test failed.
func (d *demo) showLogsIfFailed(t *testing.T, info readyInfo) {
	if !t.Failed() {
		return
	}
	t.Logf("demo output:\n%s", d.output())
	for part, path := range info.Logs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		t.Logf("end of the %s log (%s):\n%s", part, path, data)
	}
}

func hasProcess(ps []proc, name string) bool {
	for _, p := range ps {
		if p.comm == name {
			return true
		}
	}
	return false
}

// clientFor is a client as the user's kubectl would be, from the demo's
// kubeconfig.
func clientFor(t *testing.T, kubeconfig string) client.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("the demo's kubeconfig: %v", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: devicecontroller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func desiredPatch(resource, value string) client.Patch {
	return client.RawPatch("application/merge-patch+json",
		fmt.Appendf(nil, `{"spec":{"deviceProperties":{%q:{"name":%q,"desiredValue":%q}}}}`, resource, resource, value))
}

// setDesired is the tour's `kubectl patch` (what `kubectl edit` sends).
func setDesired(t *testing.T, c client.Client, namespace, device, resource, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dev := &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: device}}
	if err := c.Patch(ctx, dev, desiredPatch(resource, value)); err != nil {
		t.Fatalf("set %s of %s: %v", resource, device, err)
	}
}

// readFromEdgeX is the tour's curl to core-command: the device's value as
// EdgeX reads it.
func readFromEdgeX(ctx context.Context, commandURL, device, resource string) (string, error) {
	reading, err := readingFromEdgeX(ctx, commandURL, device, resource)
	return reading.Value, err
}

// readObjectFromEdgeX is the same curl for an Object resource: the
// reading's objectValue as JSON text.
func readObjectFromEdgeX(ctx context.Context, commandURL, device, resource string) (string, error) {
	reading, err := readingFromEdgeX(ctx, commandURL, device, resource)
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(reading.ObjectValue)
	return string(raw), err
}

// readingFromEdgeX is core-command's reading of one resource.
func readingFromEdgeX(ctx context.Context, commandURL, device, resource string) (dtos.BaseReading, error) {
	body, err := httpGet(ctx, commandURL+"/api/v3/device/name/"+url.PathEscape(device)+"/"+url.PathEscape(resource))
	if err != nil {
		return dtos.BaseReading{}, err
	}
	var r responses.EventResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return dtos.BaseReading{}, fmt.Errorf("core-command answer %q: %w", body, err)
	}
	for _, reading := range r.Event.Readings {
		if reading.ResourceName == resource {
			return reading, nil
		}
	}
	return dtos.BaseReading{}, fmt.Errorf("core-command answer holds no %s: %s", resource, body)
}

func httpGet(ctx context.Context, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return string(body), nil
}

// subscribeOnce runs the tour's mosquitto_sub until one message arrives,
// and returns its topic.
func subscribeOnce(t *testing.T, brokerURL, topic string) string {
	t.Helper()
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	// The slowest demo device reports every 30 s; -W bounds the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mosquitto_sub", "-h", u.Hostname(), "-p", u.Port(), "-t", topic, "-v", "-C", "1", "-W", "45")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mosquitto_sub: %v (%s)", err, out)
	}
	got, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	return got
}
