package devicecontroller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Objects that exist only at the edge (created by device services or the
// EdgeX UI) appear in the cluster as imported objects that mirror EdgeX.
func TestEdgeObjectsAreImported(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	for _, d := range simulator.DemoDevices() {
		name := convert.PreferredKubeName(p.name, d.Name)
		edge, _ := p.sim.Device(d.Name)
		waitFor(p, &v1alpha1.Device{}, name, func(dev *v1alpha1.Device) error {
			if err := synced(dev.Status.Synced, dev.Status.Conditions); err != nil {
				return err
			}
			switch {
			case dev.Spec.Managed:
				return fmt.Errorf("imported device is managed")
			case dev.Spec.NodePool != p.name:
				return fmt.Errorf("nodePool %q", dev.Spec.NodePool)
			case v1alpha1.EdgeXName(dev) != d.Name:
				return fmt.Errorf("EdgeX name %q, want %q", v1alpha1.EdgeXName(dev), d.Name)
			case dev.Annotations[v1alpha1.OriginAnnotation] != v1alpha1.OriginEdge:
				return fmt.Errorf("origin annotation %q", dev.Annotations[v1alpha1.OriginAnnotation])
			case dev.Status.EdgeId != edge.Id:
				return fmt.Errorf("edgeId %q, want %q", dev.Status.EdgeId, edge.Id)
			case dev.Spec.Profile != d.ProfileName || dev.Spec.Service != d.ServiceName:
				return fmt.Errorf("spec does not mirror EdgeX: %+v", dev.Spec)
			case dev.Status.AdminState != v1alpha1.UnLocked || dev.Status.OperatingState != v1alpha1.Up:
				return fmt.Errorf("states %s/%s", dev.Status.AdminState, dev.Status.OperatingState)
			}
			return nil
		})
	}
	for _, pr := range simulator.DemoProfiles() {
		waitFor(p, &v1alpha1.DeviceProfile{}, convert.PreferredKubeName(p.name, pr.Name), func(dp *v1alpha1.DeviceProfile) error {
			if dp.Spec.IsManaged() {
				return fmt.Errorf("imported profile is managed")
			}
			if len(dp.Spec.DeviceResources) != len(pr.DeviceResources) {
				return fmt.Errorf("%d resources, want %d", len(dp.Spec.DeviceResources), len(pr.DeviceResources))
			}
			return synced(dp.Status.Synced, dp.Status.Conditions)
		})
	}
	waitFor(p, &v1alpha1.DeviceService{}, convert.PreferredKubeName(p.name, simulator.DemoServiceName), func(s *v1alpha1.DeviceService) error {
		return synced(s.Status.Synced, s.Status.Conditions)
	})
}

// EdgeX allows names Kubernetes does not; imported objects get valid,
// stable, distinct names and keep the original.
func TestEdgeNamesKubernetesCannotHold(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	names := []string{"Cam_01", "cam-01", "CAM.01", "cam~01", "Kamera-Süd", fmt.Sprintf("long-%0300d", 7)}
	for _, n := range names {
		d := simulator.DemoDevices()[0]
		d.Name, d.Id = n, ""
		if _, err := p.sim.AddDevice(d); err != nil {
			t.Fatalf("add %q at the edge: %v", n, err)
		}
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		var list v1alpha1.DeviceList
		if err := p.c.List(ctx, &list, client.InNamespace(p.ns)); err != nil {
			return err
		}
		byEdgeX := map[string]string{}
		for _, d := range list.Items {
			byEdgeX[v1alpha1.EdgeXName(&d)] = d.Name
		}
		for _, n := range names {
			if _, ok := byEdgeX[n]; !ok {
				return fmt.Errorf("EdgeX device %q not imported (have %v)", n, byEdgeX)
			}
		}
		return nil
	})
}

// An import costs the API server what the objects need and nothing more:
// one create and one status write each, as a client that only copies
// EdgeX into the cluster would make. An Event per imported object once
// made a third write for every device, and so a 10,000-device import paid
// for 10,000 Events that said no more than the objects themselves.
func TestImportCostsOneCreateAndOneStatusWritePerObject(t *testing.T) {
	api := &apiRequests{}
	p := startPool(t, poolConfig{seedDemo: true, noBridge: true, wire: api.wire})
	const added = 20
	for i := range added {
		d := simulator.DemoDevices()[i%len(simulator.DemoDevices())]
		d.Name, d.Id, d.AutoEvents = fmt.Sprintf("meter-%02d", i), "", nil
		if _, err := p.sim.AddDevice(d); err != nil {
			t.Fatalf("add %s at the edge: %v", d.Name, err)
		}
	}
	devices := len(simulator.DemoDevices()) + added
	profiles := len(simulator.DemoProfiles())
	p.startBridge()
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		return errors.Join(
			allSynced(ctx, p, &v1alpha1.DeviceList{}, devices),
			allSynced(ctx, p, &v1alpha1.DeviceProfileList{}, profiles),
			allSynced(ctx, p, &v1alpha1.DeviceServiceList{}, 1))
	})
	// Once the bridge has stopped, nothing it started is still on its way.
	p.stop()
	checkImportWrites(t, api, devices, profiles)
}

// checkImportWrites checks that importing the objects cost a create and a
// status write each, and no other write.
func checkImportWrites(t *testing.T, api *apiRequests, devices, profiles int) {
	t.Helper()
	want := map[string]int{
		"POST devices": devices, "PATCH devices/status": devices,
		"POST deviceprofiles": profiles, "PATCH deviceprofiles/status": profiles,
		"POST deviceservices": 1, "PATCH deviceservices/status": 1,
	}
	if got := api.writes(); !maps.Equal(got, want) {
		t.Errorf("importing %d devices, %d profiles and a service made these API writes:\n%v\nwant a create and a status write each:\n%v",
			devices, profiles, got, want)
	}
}

// An EdgeX name that comes back before the cache shows its import (a
// resync, a second system event) is not imported again: the bridge asks
// the API server whether its import exists rather than creating it a
// second time, which the API server refuses as a duplicate, and which the
// bridge repeated up to five times per turn while its cache lagged.
func TestImportIsNotRepeatedWhileTheCacheLags(t *testing.T) {
	api := &apiRequests{held: "devices"}
	p := startPool(t, poolConfig{seedDemo: true, wire: api.wire})
	demo, profiles := len(simulator.DemoDevices()), len(simulator.DemoProfiles())
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		return allSynced(ctx, p, &v1alpha1.DeviceList{}, demo)
	})

	api.holdWatches()
	const added = 5
	var names []string
	for i := range added {
		d := simulator.DemoDevices()[i%demo]
		d.Name, d.Id, d.AutoEvents = fmt.Sprintf("meter-%02d", i), "", nil
		if _, err := p.sim.AddDevice(d); err != nil {
			t.Fatalf("add %s at the edge: %v", d.Name, err)
		}
		names = append(names, convert.PreferredKubeName(p.name, d.Name))
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if n := api.writes()["POST devices"]; n < demo+added {
			return fmt.Errorf("%d devices created, want %d", n, demo+added)
		}
		return nil
	})
	// The resync finds the new names unclaimed in the cache, which has
	// not seen the imports.
	p.bridge.ResyncNow()
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if n := api.writes()["POST devices"]; n > demo+added {
			return nil // created again: the check below says so
		}
		for _, name := range names {
			if api.reads("devices", name) == 0 {
				return fmt.Errorf("the resync has not looked at %s again", name)
			}
		}
		return nil
	})
	api.releaseWatches()
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		return allSynced(ctx, p, &v1alpha1.DeviceList{}, demo+added)
	})
	p.stop()
	checkImportWrites(t, api, demo+added, profiles)
}

// allSynced checks that the namespace holds want objects of the list's
// kind, every one synced.
func allSynced(ctx context.Context, p *pool, list client.ObjectList, want int) error {
	if err := p.c.List(ctx, list, client.InNamespace(p.ns)); err != nil {
		return err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	done := 0
	for _, item := range items {
		if c := v1alpha1.FindCondition(conditionsOf(item), v1alpha1.ConditionSynced); c != nil && c.Status == "True" {
			done++
		}
	}
	if len(items) != want || done != want {
		return fmt.Errorf("%T: %d objects, %d synced, want %d synced", list, len(items), done, want)
	}
	return nil
}

func conditionsOf(obj runtime.Object) []v1alpha1.Condition {
	switch o := obj.(type) {
	case *v1alpha1.Device:
		return o.Status.Conditions
	case *v1alpha1.DeviceProfile:
		return o.Status.Conditions
	case *v1alpha1.DeviceService:
		return o.Status.Conditions
	}
	return nil
}

// apiRequests counts a bridge's requests to the API server, at the
// client: what the API server was asked to do, whatever it answered. With
// held set, it can hold back what the watches of that resource deliver,
// as a cache that lags far behind would see it.
type apiRequests struct {
	held string

	mu       sync.Mutex
	byVerb   map[string]int
	named    map[string]int
	holding  bool
	released chan struct{}
}

// wire makes the bridge's API server client go through the counter.
func (a *apiRequests) wire(w *wiring) {
	cfg := rest.CopyConfig(w.kubeConfig)
	cfg.Wrap(a.wrap)
	w.kubeConfig = cfg
}

func (a *apiRequests) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resource, name := resourceOf(req.URL.Path)
		watch := req.URL.Query().Get("watch") == "true"
		if !watch {
			a.mu.Lock()
			if a.byVerb == nil {
				a.byVerb, a.named = map[string]int{}, map[string]int{}
			}
			a.byVerb[req.Method+" "+resource]++
			if name != "" {
				a.named[req.Method+" "+resource+" "+name]++
			}
			a.mu.Unlock()
		}
		resp, err := next.RoundTrip(req)
		if err == nil && watch && a.held != "" && resource == a.held {
			resp.Body = &heldBody{ReadCloser: resp.Body, a: a, closed: make(chan struct{})}
		}
		return resp, err
	})
}

// writes are the write requests made so far, by verb and resource
// ("PATCH devices/status").
func (a *apiRequests) writes() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for k, n := range a.byVerb {
		if !strings.HasPrefix(k, http.MethodGet+" ") {
			out[k] = n
		}
	}
	return out
}

// reads is how many times the named object was read.
func (a *apiRequests) reads(resource, name string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.named[http.MethodGet+" "+resource+" "+name]
}

// holdWatches holds back whatever the watches of the held resource deliver
// from now on, until releaseWatches.
func (a *apiRequests) holdWatches() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.holding, a.released = true, make(chan struct{})
}

func (a *apiRequests) releaseWatches() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.holding {
		a.holding = false
		close(a.released)
	}
}

// gate returns the channel to wait on, or nil when nothing is held.
func (a *apiRequests) gate() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.holding {
		return nil
	}
	return a.released
}

// heldBody passes a watch's stream on once the gate lets it.
type heldBody struct {
	io.ReadCloser
	a      *apiRequests
	closed chan struct{}
	once   sync.Once
}

func (b *heldBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if gate := b.a.gate(); gate != nil && n > 0 {
		select {
		case <-gate:
		case <-b.closed:
			return 0, io.ErrClosedPipe
		}
	}
	return n, err
}

func (b *heldBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return b.ReadCloser.Close()
}

// resourceOf names the resource of a namespaced API path
// (/apis/GROUP/VERSION/namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]]), with
// its subresource, and the object's name; other paths are named whole.
func resourceOf(path string) (resource, name string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	i := slices.Index(parts, "namespaces")
	if i < 0 || len(parts) < i+3 {
		return path, ""
	}
	resource = parts[i+2]
	if len(parts) > i+3 {
		name = parts[i+3]
	}
	if len(parts) > i+4 {
		resource += "/" + parts[i+4]
	}
	return resource, name
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
