package admission_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/requests"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller/admission"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/hack/testenv"
	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// The profile a real EdgeX 3.1 stack was given (profile-add.json) and the
// pools the tests use.
const (
	profileName = "Test-GPIO-Sensor-Camera"
	poolA       = "pool-a"
	poolB       = "pool-b"
)

var (
	kube *testenv.Kube
	// cli records the API server's warnings per request (see withWarnings).
	cli client.Client
	// profileCache is the webhook's own cache, with admission.ProfileIndex.
	profileCache cache.Cache
)

func TestMain(m *testing.M) {
	if os.Getenv("EDGEBRIDGE_TEST_LOGS") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	code := m.Run()
	if stopEnv != nil {
		stopEnv()
	}
	os.Exit(code)
}

var (
	envOnce sync.Once
	envErr  error
	stopEnv func()
)

// needKube starts, on first use, one API server with
// deploy/admission/webhook.yaml installed (envtest points it at a local
// port with generated certificates) and the webhook serving there, wired
// as cmd/device-admission wires it. Starting on first use keeps fuzz
// workers, which run TestMain too, from starting control planes.
func needKube(t testing.TB) {
	t.Helper()
	envOnce.Do(func() { stopEnv, envErr = startEnv() })
	if envErr != nil {
		t.Fatal(envErr)
	}
}

func startEnv() (stop func(), err error) {
	manifest := filepath.Join(testenv.RepoRoot(), "deploy", "admission", "webhook.yaml")
	if kube, err = testenv.StartKube(testenv.KubeOptions{WebhookManifests: []string{manifest}}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped, err := startWebhookOnAFreePort(ctx)
	stop = func() {
		cancel()
		if stopped != nil {
			if err := <-stopped; err != nil {
				fmt.Fprintln(os.Stderr, "webhook manager:", err)
			}
		}
		if err := kube.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop control plane:", err)
		}
	}
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// startWebhookOnAFreePort starts the webhook, moving it to another port
// when the one envtest found free was taken before the webhook bound it
// (an outgoing connection's ephemeral port, under a parallel make test).
func startWebhookOnAFreePort(ctx context.Context) (<-chan error, error) {
	const attempts = 3
	for attempt := 1; ; attempt++ {
		stopped, err := startWebhook(ctx)
		if attempt == attempts || !errors.Is(err, errWebhookPortTaken) {
			return stopped, err
		}
		ports, err := testenv.FreePorts(1)
		if err != nil {
			return nil, err
		}
		if err := kube.MoveWebhookServer(ctx, ports[0]); err != nil {
			return nil, err
		}
	}
}

var errWebhookPortTaken = errors.New("the webhook's port was taken before it bound it")

func startWebhook(ctx context.Context) (<-chan error, error) {
	mgr, err := ctrl.NewManager(kube.Config, ctrl.Options{
		Scheme:                 kube.Scheme,
		Cache:                  admission.CacheOptions(nil),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          webhook.NewServer(kube.WebhookServerOptions()),
	})
	if err != nil {
		return nil, fmt.Errorf("webhook manager: %w", err)
	}
	if err := admission.Setup(ctx, mgr, nil); err != nil {
		return nil, err
	}
	profileCache = mgr.GetCache()
	cfg := rest.CopyConfig(kube.Config)
	cfg.WarningHandlerWithContext = warningsByContext{}
	if cli, err = client.New(cfg, client.Options{Scheme: kube.Scheme}); err != nil {
		return nil, err
	}
	stopped := make(chan error, 1)
	exited := make(chan struct{})
	var startErr error
	go func() {
		startErr = mgr.Start(ctx)
		close(exited)
		stopped <- startErr
	}()
	if err := waitUntilWebhookAnswers(exited); err != nil {
		select {
		case <-exited:
			if errors.Is(startErr, syscall.EADDRINUSE) || strings.Contains(fmt.Sprint(startErr), "address already in use") {
				return nil, fmt.Errorf("%w: %w", errWebhookPortTaken, startErr)
			}
			err = fmt.Errorf("%w (webhook manager: %w)", err, startErr)
		default:
		}
		return stopped, fmt.Errorf("webhook never answered the API server: %w", err)
	}
	return stopped, nil
}

// waitUntilWebhookAnswers waits for proof that the API server calls the
// webhook. Until then failurePolicy Ignore lets every device through
// unchecked, and the tests would prove nothing. A webhook manager that has
// exited (exited is closed) never will.
func waitUntilWebhookAnswers(exited <-chan struct{}) error {
	const ns = "webhook-ready"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cli.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	probe := device(ns, "probe", poolA, "No-Such-Profile", map[string]string{"counter": "1"})
	err := testenv.Wait(testenv.DefaultTimeout, func(ctx context.Context) error {
		select {
		case <-exited:
			return nil // no use asking again; reported below
		default:
		}
		ctx, got := withWarnings(ctx)
		if err := cli.Create(ctx, probe.DeepCopy(), client.DryRunAll); err != nil {
			return err
		}
		if !got.contain("desired values not checked") {
			return errors.New("no warning from the webhook yet")
		}
		return nil
	})
	select {
	case <-exited:
		return errors.New("the webhook manager exited")
	default:
		return err
	}
}

// warningsByContext hands each warning the API server sends to the
// recorder in the request's context, so parallel requests never mix.
type warningsByContext struct{}

type warningsKey struct{}

func (warningsByContext) HandleWarningHeaderWithContext(ctx context.Context, _ int, _, text string) {
	if w, ok := ctx.Value(warningsKey{}).(*warnings); ok {
		w.add(text)
	}
}

type warnings struct {
	mu   sync.Mutex
	list []string
}

func withWarnings(ctx context.Context) (context.Context, *warnings) {
	w := &warnings{}
	return context.WithValue(ctx, warningsKey{}, w), w
}

func (w *warnings) add(text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

func (w *warnings) contain(s string) bool {
	for _, text := range w.all() {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// capturedProfile is the profile of profile-add.json (gpio_out_1 Bool RW,
// counter Int32 RW 0..1000, temperature Float32 R, snapshot Binary R) as a
// DeviceProfile of pool, named in EdgeX as in the capture, plus two
// writable resources the capture lacks: level (Int8) and setpoint
// (Float32).
func capturedProfile(t testing.TB, ns, pool, edgexName string) *v1alpha1.DeviceProfile {
	t.Helper()
	data, err := captures.File("exchanges/profile-add.json")
	if err != nil {
		t.Fatal(err)
	}
	var reqs []requests.DeviceProfileRequest
	if err := json.Unmarshal(data, &reqs); err != nil || len(reqs) != 1 {
		t.Fatalf("profile-add.json: %d requests, %v", len(reqs), err)
	}
	spec := convert.ProfileFromEdgeX(reqs[0].Profile)
	spec.NodePool = pool
	spec.DeviceResources = append(spec.DeviceResources,
		v1alpha1.DeviceResource{Name: "level", Properties: v1alpha1.ResourceProperties{ValueType: "Int8", ReadWrite: "RW"}},
		v1alpha1.DeviceResource{Name: "setpoint", Properties: v1alpha1.ResourceProperties{ValueType: "Float32", ReadWrite: "RW"}},
	)
	return &v1alpha1.DeviceProfile{
		ObjectMeta: metav1.ObjectMeta{
			Name: convert.PreferredKubeName(pool, edgexName), Namespace: ns,
			Annotations: map[string]string{v1alpha1.EdgeXNameAnnotation: edgexName},
		},
		Spec: spec,
	}
}

// readOnly makes every resource of p read-only: a device checked against
// it by mistake would have every value refused.
func readOnly(p *v1alpha1.DeviceProfile) *v1alpha1.DeviceProfile {
	for i := range p.Spec.DeviceResources {
		p.Spec.DeviceResources[i].Properties.ReadWrite = "R"
	}
	return p
}

func device(ns, name, pool, profile string, values map[string]string) *v1alpha1.Device {
	props := map[string]v1alpha1.DesiredPropertyState{}
	for res, value := range values {
		props[res] = v1alpha1.DesiredPropertyState{Name: res, DesiredValue: value}
	}
	return &v1alpha1.Device{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.DeviceSpec{
			Service: "device-virtual", Profile: profile, NodePool: pool, Managed: true,
			DeviceProperties: props,
		},
	}
}

func mustCreate(t testing.TB, obj client.Object) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cli.Create(ctx, obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// write creates or updates obj and returns the API server's warnings.
func write(t testing.TB, obj client.Object, update bool, opts ...client.CreateOption) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx, got := withWarnings(ctx)
	var err error
	if update {
		err = cli.Update(ctx, obj)
	} else {
		err = cli.Create(ctx, obj, opts...)
	}
	return got.all(), err
}

// updateDevice applies edit to the stored device and updates it.
func updateDevice(t testing.TB, key client.ObjectKey, edit func(*v1alpha1.Device)) ([]string, error) {
	t.Helper()
	dev := getDevice(t, key)
	edit(dev)
	return write(t, dev, true)
}

func getDevice(t testing.TB, key client.ObjectKey) *v1alpha1.Device {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dev := &v1alpha1.Device{}
	if err := cli.Get(ctx, key, dev); err != nil {
		t.Fatalf("get device %s: %v", key, err)
	}
	return dev
}

// expectAccepted fails unless the write went through with exactly the
// warning asked for ("" means none).
func expectAccepted(t testing.TB, warnings []string, err error, warning string) {
	t.Helper()
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	switch {
	case warning == "" && len(warnings) > 0:
		t.Errorf("unexpected warnings: %q", warnings)
	case warning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], warning)):
		t.Errorf("warnings %q, want one containing %q", warnings, warning)
	}
}

// expectRefused fails unless err is the webhook's Invalid answer naming
// exactly these fields and containing each of details.
func expectRefused(t testing.TB, err error, fields []string, details ...string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("got %v, want the webhook to refuse as Invalid", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `admission webhook "device-values.edgebridge.io" denied the request`) {
		t.Errorf("not refused by the webhook: %s", msg)
	}
	var named []string
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Details != nil {
		for _, c := range status.Status().Details.Causes {
			named = append(named, c.Field)
		}
	}
	if strings.Join(named, " ") != strings.Join(fields, " ") {
		t.Errorf("fields named %q, want %q (message %s)", named, fields, msg)
	}
	for _, d := range details {
		if !strings.Contains(msg, d) {
			t.Errorf("message lacks %q: %s", d, msg)
		}
	}
}
