package devicecontroller_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// stalledBroker is a northbound broker that has stopped acknowledging:
// every publish waits until the broker is released or gives up.
type stalledBroker struct{ release chan struct{} }

func (b *stalledBroker) Publish(ctx context.Context, _ string, _ []byte) error {
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A stalled northbound broker costs only northbound copies, counted as
// dropped: EdgeX's events keep reaching status at full speed, and the
// EdgeX bus drops nothing.
func TestStalledNorthboundBrokerDoesNotStallTelemetry(t *testing.T) {
	north := &stalledBroker{release: make(chan struct{})}
	const queue = 2
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.Northbound, o.NorthboundQueue, o.NorthboundTimeout = north, queue, 10*time.Minute
	}})
	sensor := simulator.DemoDevices()[1].Name
	name := convert.PreferredKubeName(p.name, sensor)
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	labels := map[string]string{"pool": p.name}
	busDrops := metricWhere(t, "edgebridge_messages_dropped_total", map[string]string{"pool": p.name, "type": "event"})

	const events = 20
	for i := 1; i <= events; i++ {
		if err := p.sim.PublishReadings(context.Background(), sensor, map[string]string{"sample_rate": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
		if got := d.Status.DeviceProperties["sample_rate"].ActualValue; got != strconv.Itoa(events) {
			return fmt.Errorf("sample_rate is %q in status, want the last reading %d", got, events)
		}
		return nil
	})
	// One event waits in the stalled publish and queue more in the queue;
	// the rest were dropped and counted.
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if got := metricWhere(t, "edgebridge_northbound_dropped_total", labels); got < events-queue-1 {
			return fmt.Errorf("edgebridge_northbound_dropped_total is %v, want at least %d", got, events-queue-1)
		}
		return nil
	})
	if got := metricWhere(t, "edgebridge_messages_dropped_total", map[string]string{"pool": p.name, "type": "event"}); got != busDrops {
		t.Errorf("the EdgeX bus dropped %v events while northbound stalled", got-busDrops)
	}
	// The broker recovers: what was queued goes out.
	close(north.release)
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if got := metricWhere(t, "edgebridge_northbound_published_total", labels); got < 1 {
			return fmt.Errorf("nothing published northbound after the broker recovered")
		}
		return nil
	})
}
