package devicecontroller_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// The package's API server is probed as the binary probes it: today's
// Kubernetes selects the kinds by spec.nodePool, the oldest supported one
// (make test-compat) cannot.
func TestPoolSelectionMatchesTheAPIServer(t *testing.T) {
	want := devicecontroller.SelectByField
	if minor := kube.ServerMinor(t); minor < 31 {
		want = devicecontroller.SelectByLabel
	}
	if poolSelection != want {
		t.Fatalf("probe chose %q on Kubernetes 1.%d, want %q", poolSelection, kube.ServerMinor(t), want)
	}
}

// Where the pool is selected by label, the label must never be what makes
// the bridge miss, lose or take an object: objects arrive without it, people
// remove or change it, and a wrong one must not pull another pool's object
// in. Run by label whatever the API server can do, since label selectors
// work everywhere.
func TestPoolLabelFollowsSpecNodePool(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.PoolSelection = devicecontroller.SelectByLabel
	}})

	// Imports carry the label from their creation.
	imported := convert.PreferredKubeName(p.name, simulator.DemoDevices()[0].Name)
	waitFor(p, &v1alpha1.Device{}, imported, func(d *v1alpha1.Device) error {
		return labelled(d, p.name)
	})

	// A person's manifest has no label; it is labelled, so the bridge sees
	// it and creates it in EdgeX.
	svc := managedService(p, "unlabelled")
	p.create(svc)
	waitFor(p, &v1alpha1.DeviceService{}, svc.Name, func(s *v1alpha1.DeviceService) error {
		if err := labelled(s, p.name); err != nil {
			return err
		}
		return synced(s.Status.Synced, s.Status.Conditions)
	})
	inEdgeX := func() {
		t.Helper()
		if _, ok := p.sim.Service(svc.Name); !ok {
			t.Fatalf("service %s not in EdgeX", svc.Name)
		}
	}
	inEdgeX()

	for _, tc := range []struct {
		name  string
		label func(map[string]string)
	}{
		{"removed", func(l map[string]string) { delete(l, v1alpha1.PoolLabel) }},
		{"changed to another pool", func(l map[string]string) { l[v1alpha1.PoolLabel] = "elsewhere" }},
		{"emptied", func(l map[string]string) { l[v1alpha1.PoolLabel] = "" }},
	} {
		t.Run("label "+tc.name, func(t *testing.T) {
			update(p, &v1alpha1.DeviceService{}, svc.Name, func(s *v1alpha1.DeviceService) {
				l := s.GetLabels()
				tc.label(l)
				s.SetLabels(l)
			})
			waitFor(p, &v1alpha1.DeviceService{}, svc.Name, func(s *v1alpha1.DeviceService) error {
				if !s.DeletionTimestamp.IsZero() {
					t.Fatal("the object is being deleted")
				}
				return labelled(s, p.name)
			})
			inEdgeX()
		})
	}

	// Another pool's object labelled as this pool's is not this bridge's:
	// it never reaches this pool's EdgeX, and gets its own pool's label.
	other := managedService(p, "other-pools")
	other.Spec.NodePool = p.name + "-other"
	other.Labels = map[string]string{v1alpha1.PoolLabel: p.name}
	p.create(other)
	waitFor(p, &v1alpha1.DeviceService{}, other.Name, func(s *v1alpha1.DeviceService) error {
		return labelled(s, other.Spec.NodePool)
	})
	// Another change of the pool's objects has been handled since the
	// foreign one arrived, so had the bridge taken it, it would have shown.
	update(p, &v1alpha1.DeviceService{}, svc.Name, func(s *v1alpha1.DeviceService) { s.Spec.Description = "after the foreign one" })
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if s, _ := p.sim.Service(svc.Name); s.Description != "after the foreign one" {
			return fmt.Errorf("EdgeX description %q", s.Description)
		}
		return nil
	})
	if _, ok := p.sim.Service(other.Name); ok {
		t.Fatal("another pool's service reached this pool's EdgeX")
	}
	s := &v1alpha1.DeviceService{}
	if err := p.get(s, other.Name); err != nil || len(s.Finalizers) != 0 || s.Status.EdgeId != "" {
		t.Fatalf("another pool's service was acted on: %v finalizers %v status %+v", err, s.Finalizers, s.Status)
	}
}

func labelled(obj client.Object, pool string) error {
	if got, ok := obj.GetLabels()[v1alpha1.PoolLabel]; !ok || got != pool {
		return fmt.Errorf("%s label is %q (set %v), want %q", v1alpha1.PoolLabel, got, ok, pool)
	}
	return nil
}

// A bridge starting in a namespace that other pools already fill must not
// pay for their objects: in bench row 9 (20 pools in one namespace, on a
// loaded machine) each probe list read the whole namespace from etcd, in
// pages that started at one object and doubled, took 15 to 20 s, and so
// timed out at every attempt, and the bridges never started. Counted by
// the API server's own apiserver_storage_list_fetched_objects_total, the
// objects it read from etcd to answer; the probe reads them from its watch
// cache instead.
func TestProbeReadsNoOtherPoolsObjectsFromEtcd(t *testing.T) {
	if kube.ServerMinor(t) < 31 {
		t.Skip("the API server counts objects read from etcd since 1.31")
	}
	ns := kube.Namespace(t)
	const crowd = 400
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := parallelCreate(ctx, crowd, func(ctx context.Context, i int) error {
		return kube.Client.Create(ctx, &v1alpha1.Device{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("crowd-%03d", i)},
			Spec: v1alpha1.DeviceSpec{NodePool: fmt.Sprintf("crowded-%d", i%20), Profile: "p", Service: "s",
				AdminState: v1alpha1.UnLocked, OperatingState: v1alpha1.Up},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	before := etcdFetchedDevices(ctx, t)
	sel, err := devicecontroller.DetectPoolSelection(ctx, kube.Client, "newcomer", ns, logr.Discard())
	if err != nil || sel != devicecontroller.SelectByField {
		t.Fatalf("probe: %q, %v", sel, err)
	}
	// Other tests' lists share the counter; theirs are of a few objects.
	if read := etcdFetchedDevices(ctx, t) - before; read >= crowd/2 {
		t.Errorf("the probe read %.0f Devices from etcd for a pool that has none, in a namespace of %d", read, crowd)
	}
}

// etcdFetchedDevices is how many Devices the API server has read from etcd
// to answer lists.
func etcdFetchedDevices(ctx context.Context, t *testing.T) float64 {
	t.Helper()
	cs, err := kubernetes.NewForConfig(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("API server metrics: %v", err)
	}
	var sum float64
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_storage_list_fetched_objects_total{") ||
			!strings.Contains(line, `resource="devices"`) || !strings.Contains(line, `storage="etcd"`) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func parallelCreate(ctx context.Context, n int, create func(context.Context, int) error) error {
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- create(ctx, i)
		}()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
