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

	setDesired(p, name, "pin_17", "true")
	select {
	case got := <-after:
		if got != "false" {
			t.Errorf("actualValue %q right after the reconcile's status write; the device's newer report said false", got)
		}
	case <-time.After(testenv.DefaultTimeout):
		t.Fatal("no status write recorded the command's success")
	}
}

// actualValue is what the device reported, never what the bridge asked
// for: a command that succeeds while no event reports the written value
// shows in lastCommand, and actualValue keeps the device's last report
// until the device reports again.
func TestActualValueIsWhatTheDeviceReported(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	const name = "reports-only"
	commandDevice(p, name, simulator.ProfileGPIO)
	if err := p.sim.PublishReadings(context.Background(), name, map[string]string{"pin_17": "false"}); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
		if got := d.Status.DeviceProperties["pin_17"]; got.ActualValue != "false" {
			return fmt.Errorf("pin_17 is %+v", got)
		}
		return nil
	})

	// The write's event is lost: the bus drops everything.
	p.sim.Faults().DropBus()
	setDesired(p, name, "pin_17", "true")
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
		got := d.Status.DeviceProperties["pin_17"]
		if got.LastCommand == nil || got.LastCommand.Result != v1alpha1.CommandSucceeded || got.LastCommand.Value != "true" {
			return fmt.Errorf("last command %+v", got.LastCommand)
		}
		if got.ActualValue != "false" {
			return fmt.Errorf("actualValue %q: the device never reported it; the last report was false", got.ActualValue)
		}
		return nil
	})

	p.sim.Faults().RestoreBus()
	if err := p.sim.PublishEvent(context.Background(), name, "pin_17"); err != nil {
		t.Fatal(err)
	}
	waitProperty(p, name, "pin_17", "Bool", "true")
}
