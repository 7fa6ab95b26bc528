package devicecontroller_test

import (
	"sync"
	"testing"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/edgex/simulator"
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
