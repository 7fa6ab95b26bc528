package devicecontroller_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// droppingBus loses the system event of one device the way the message
// bus client does when the bridge's handler falls behind: the event never
// reaches the handler, and the error callback learns how many were lost.
type droppingBus struct {
	devicecontroller.Bus
	mu     sync.Mutex
	victim string
}

func (b *droppingBus) dropEventsOf(device string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.victim = device
}

func (b *droppingBus) SubscribeSystemEvents(handler func(string, messagebus.SystemEvent), onError func(string, error)) error {
	return b.Bus.SubscribeSystemEvents(func(topic string, se messagebus.SystemEvent) {
		if d, err := se.Device(); err == nil && b.drops(d.Name) {
			onError(topic, &messagebus.DroppedError{Count: 1})
			return
		}
		handler(topic, se)
	}, onError)
}

func (b *droppingBus) drops(device string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return device != "" && device == b.victim
}

// A system event the bus had to drop is a change the bridge does not know
// of: the drop is counted and a full resync finds the change, long before
// the periodic one (ten minutes away here).
func TestDroppedSystemEventsAreCountedAndRepairedByAResync(t *testing.T) {
	bus := &droppingBus{}
	p := startPool(t, poolConfig{seedDemo: true, wrapBus: func(inner devicecontroller.Bus) devicecontroller.Bus {
		bus.Bus = inner
		return bus
	}})
	demoImports(p)
	dropped := func() float64 {
		return metricWhere(t, "edgebridge_messages_dropped_total", map[string]string{"pool": p.name, "type": "system-event"})
	}
	before := dropped()

	added := simulator.DemoDevices()[1]
	added.Name, added.Id, added.AutoEvents = "added-unheard", "", nil
	bus.dropEventsOf(added.Name)
	if _, err := p.sim.AddDevice(added); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, added.Name), func(d *v1alpha1.Device) error {
		return synced(d.Status.Synced, d.Status.Conditions)
	})
	if got := dropped() - before; got != 1 {
		t.Errorf("edgebridge_messages_dropped_total{type=system-event} rose by %v, want 1", got)
	}
}

// garblingBus hands the bridge one system event whose envelope decoded
// but whose details are not a device, as a buggy or hostile publisher on
// the EdgeX bus could send.
type garblingBus struct {
	devicecontroller.Bus
	mu      sync.Mutex
	handler func(string, messagebus.SystemEvent)
}

func (b *garblingBus) SubscribeSystemEvents(handler func(string, messagebus.SystemEvent), onError func(string, error)) error {
	b.mu.Lock()
	b.handler = handler
	b.mu.Unlock()
	return b.Bus.SubscribeSystemEvents(handler, onError)
}

func (b *garblingBus) subscribed() (func(string, messagebus.SystemEvent), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.handler == nil {
		return nil, errors.New("the bridge has not subscribed to system events yet")
	}
	return b.handler, nil
}

// A system event whose details cannot be decoded is counted as a decode
// error, not dropped silently.
func TestUndecodableSystemEventsAreCounted(t *testing.T) {
	bus := &garblingBus{}
	p := startPool(t, poolConfig{seedDemo: true, wrapBus: func(inner devicecontroller.Bus) devicecontroller.Bus {
		bus.Bus = inner
		return bus
	}})
	demoImports(p)
	errs := func() float64 {
		return metricWhere(t, "edgebridge_decode_errors_total", map[string]string{"pool": p.name, "type": "system-event"})
	}
	before := errs()
	garbled := []messagebus.SystemEvent{
		{Type: messagebus.KindDevice, Action: "add", Details: []byte(`{"name": 42}`)},
		{Type: messagebus.KindDeviceProfile, Action: "update", Details: []byte(`{}`)},
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		_, err := bus.subscribed()
		return err
	})
	handler, _ := bus.subscribed()
	for _, se := range garbled {
		handler("edgex/system-events/core-metadata/device/add", se)
	}
	if got := errs() - before; got != float64(len(garbled)) {
		t.Errorf("edgebridge_decode_errors_total{type=system-event} rose by %v, want %d", got, len(garbled))
	}
}
