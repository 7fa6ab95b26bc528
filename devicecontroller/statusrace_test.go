package devicecontroller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// racingClient is the bridge's client with a hook around status patches,
// to make another writer's status write land exactly before a reconcile's.
type racingClient struct {
	client.Client
	mu      sync.Mutex
	aroundF func(obj client.Object, patch []byte, write func() error) error
}

func (c *racingClient) around(f func(obj client.Object, patch []byte, write func() error) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aroundF = f
}

func (c *racingClient) Status() client.SubResourceWriter {
	return racingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type racingStatus struct {
	client.SubResourceWriter
	c *racingClient
}

func (s racingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.c.mu.Lock()
	f := s.c.aroundF
	s.c.mu.Unlock()
	write := func() error { return s.SubResourceWriter.Patch(ctx, obj, patch, opts...) }
	if f == nil {
		return write()
	}
	data, err := patch.Data(obj)
	if err != nil {
		return err
	}
	return f(obj, data, write)
}

// The device accepts a command, then reports another value before the
// reconcile that saw the command succeed writes its status. That status
// write, computed from a copy older than the report, must not put the
// commanded value over the reported one.
func TestReconcileStatusWriteKeepsNewerTelemetry(t *testing.T) {
	racing := &racingClient{}
	p := startPool(t, poolConfig{seedDemo: true, managerOptions: func(o *ctrl.Options) {
		o.NewClient = func(cfg *rest.Config, opts client.Options) (client.Client, error) {
			c, err := client.New(cfg, opts)
			racing.Client = c
			return racing, err
		}
	}})
	const name = "raced"
	commandDevice(p, name, simulator.ProfileGPIO)
	// No event follows the write: only the fake telemetry below reports.
	p.sim.Faults().DropBus()

	reported := func() error {
		ms := time.Now().UnixMilli()
		body, err := json.Marshal(map[string]any{"status": map[string]any{
			"deviceProperties": map[string]any{"pin_17": map[string]any{"name": "pin_17", "actualValue": "false", "valueType": "Bool", "lastReported": ms}},
			"lastReported":     ms,
		}})
		if err != nil {
			return err
		}
		d := &v1alpha1.Device{}
		d.Namespace, d.Name = p.ns, name
		return p.c.Status().Patch(context.Background(), d, client.RawPatch(types.MergePatchType, body))
	}
	after := make(chan string, 1)
	racing.around(func(obj client.Object, patch []byte, write func() error) error {
		if obj.GetName() != name || !strings.Contains(string(patch), `"result":"Succeeded"`) {
			return write()
		}
		racing.around(nil)
		if err := reported(); err != nil {
			return err
		}
		err := write()
		d := &v1alpha1.Device{}
		if gerr := p.get(d, name); gerr != nil {
			after <- gerr.Error()
		} else {
			after <- d.Status.DeviceProperties["pin_17"].ActualValue
		}
		return err
	})

	controller := "device-" + p.name
	errorsBefore := metricWhere(t, "controller_runtime_reconcile_errors_total", map[string]string{"controller": controller})
	setDesired(p, name, "pin_17", "true")
	select {
	case got := <-after:
		if got != "false" {
			t.Errorf("actualValue %q right after the reconcile's status write; the device's newer report said false", got)
		}
	case <-time.After(testenv.DefaultTimeout):
		t.Fatal("no status write recorded the command's success")
	}
	// The refused write is retried from the newer copy, quietly: losing
	// a race to another writer is how optimistic concurrency works, not a
	// reconcile error (which would log, and back the device off).
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
		if e := d.Status.DeviceProperties["pin_17"]; e.ActualValue != "false" || e.LastCommand == nil || e.LastCommand.Result != v1alpha1.CommandSucceeded {
			return fmt.Errorf("pin_17 is %+v; want the reported false and the command's success", e)
		}
		return nil
	})
	if got := metricWhere(t, "controller_runtime_reconcile_errors_total", map[string]string{"controller": controller}) - errorsBefore; got != 0 {
		t.Errorf("%v reconcile errors counted for %s; a lost status race is retried without one", got, controller)
	}
}
