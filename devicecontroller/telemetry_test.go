package devicecontroller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// metric returns the sum of a Prometheus metric's series for one pool.
func metric(t *testing.T, name, pool string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelValue(m, "pool") != pool {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Readings become status without any REST call, and a device's status is
// written at most once per interval however many readings arrive, and not
// at all when nothing changed.
func TestTelemetryIsCoalescedIntoStatus(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.StatusInterval = 2 * time.Second
	}})
	sensor := simulator.DemoDevices()[1].Name
	name := convert.PreferredKubeName(p.name, sensor)
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	ctx := context.Background()
	restBefore := p.sim.RequestCount()
	writesBefore := metric(t, "edgebridge_status_writes_total", p.name)
	eventsBefore := metric(t, "edgebridge_events_received_total", p.name)

	const burst = 40
	for i := range burst {
		if err := p.sim.PublishReadings(ctx, sensor, map[string]string{"temperature": fmt.Sprintf("%d.5", 10+i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
		got := d.Status.DeviceProperties["temperature"]
		if !convert.EqualValues("Float32", got.ActualValue, fmt.Sprintf("%d.5", 10+burst-1)) || got.LastReported == 0 || d.Status.LastReported == 0 {
			return fmt.Errorf("temperature status %+v", got)
		}
		return nil
	})
	if got := metric(t, "edgebridge_events_received_total", p.name) - eventsBefore; got != burst {
		t.Fatalf("%v events received, want %d", got, burst)
	}
	// The burst took well under one interval: one write at its start, one
	// after the interval with the last value.
	if writes := metric(t, "edgebridge_status_writes_total", p.name) - writesBefore; writes > 2 {
		t.Fatalf("%v status writes for a burst of %d readings, want at most 2", writes, burst)
	}

	// The same value again: readings arrive, nothing is written.
	writesBefore = metric(t, "edgebridge_status_writes_total", p.name)
	eventsBefore = metric(t, "edgebridge_events_received_total", p.name)
	for range 5 {
		if err := p.sim.PublishReadings(ctx, sensor, map[string]string{"temperature": fmt.Sprintf("%d.5", 10+burst-1)}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if got := metric(t, "edgebridge_events_received_total", p.name) - eventsBefore; got != 5 {
			return fmt.Errorf("%v of 5 events received", got)
		}
		return nil
	})
	assertStays(t, 2*p.opts.StatusInterval, func() error {
		if w := metric(t, "edgebridge_status_writes_total", p.name) - writesBefore; w != 0 {
			return fmt.Errorf("%v status writes for unchanged values", w)
		}
		return nil
	})
	if n := p.sim.RequestCount() - restBefore; n != 0 {
		t.Fatalf("telemetry cost %d EdgeX REST calls, want 0", n)
	}
}

// A device that keeps reporting the same value is not silent: its
// lastConnected moves at least once per --connected-refresh, while the
// property's lastReported stays the time of the reading that set the value.
func TestUnchangedValuesStillShowTheDeviceConnected(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.StatusInterval, o.ConnectedRefresh = 200*time.Millisecond, time.Second
	}})
	sensor := simulator.DemoDevices()[1].Name
	name := convert.PreferredKubeName(p.name, sensor)
	ctx := context.Background()
	report := func() {
		if err := p.sim.PublishReadings(ctx, sensor, map[string]string{"temperature": "66.66"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	report()
	var first v1alpha1.Device
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
		if got := d.Status.DeviceProperties["temperature"]; !convert.EqualValues("Float32", got.ActualValue, "66.66") {
			return fmt.Errorf("temperature status %+v", got)
		}
		first = *d
		return nil
	})
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
		if d.Status.LastConnected-first.Status.LastConnected < time.Second.Milliseconds() {
			report() // the same value, again
			return fmt.Errorf("lastConnected %d, first %d: not refreshed", d.Status.LastConnected, first.Status.LastConnected)
		}
		if got, was := d.Status.DeviceProperties["temperature"], first.Status.DeviceProperties["temperature"]; got.LastReported != was.LastReported || got.ActualValue != was.ActualValue {
			t.Errorf("temperature went from %+v to %+v on unchanged readings", was, got)
		}
		return nil
	})
}

// Camera frames never reach status: their media type, size and time do.
func TestBinaryReadingsStayOutOfStatus(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	camera := simulator.DemoDevices()[2].Name
	name := convert.PreferredKubeName(p.name, camera)
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	if err := p.sim.PublishEvent(context.Background(), camera, "snapshot"); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
		snap, ok := d.Status.DeviceProperties["snapshot"]
		switch {
		case !ok:
			return fmt.Errorf("no snapshot entry")
		case snap.ActualValue != "":
			return fmt.Errorf("a frame went into status (%d bytes)", len(snap.ActualValue))
		case snap.MediaType != "image/jpeg" || snap.BinarySize < 100 || snap.LastReported == 0:
			return fmt.Errorf("snapshot entry %+v", snap)
		}
		return nil
	})
}

// The manager's metrics endpoint shows readings as gauges by pool, device
// and resource, and the bridge's own counters and histograms.
func TestMetricsAreExposed(t *testing.T) {
	addr := freeAddr(t)
	p := startPool(t, poolConfig{seedDemo: true, metricsAddr: addr})
	sensor := simulator.DemoDevices()[1].Name
	name := convert.PreferredKubeName(p.name, sensor)
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	if err := p.sim.PublishReadings(context.Background(), sensor, map[string]string{"temperature": "23.25"}); err != nil {
		t.Fatal(err)
	}
	commandDevice(p, "metered", simulator.ProfileGPIO)
	setDesired(p, "metered", "pin_17", "true")
	waitProperty(p, "metered", "pin_17", "Bool", "true")

	want := []string{
		fmt.Sprintf(`edgebridge_reading_value{device=%q,namespace=%q,pool=%q,resource="temperature"} 23.25`, name, p.ns, p.name),
		fmt.Sprintf(`edgebridge_events_received_total{pool=%q}`, p.name),
		fmt.Sprintf(`edgebridge_readings_total{pool=%q}`, p.name),
		fmt.Sprintf(`edgebridge_status_writes_total{pool=%q}`, p.name),
		fmt.Sprintf(`edgebridge_commands_sent_total{pool=%q,transport="rest"} 1`, p.name),
		fmt.Sprintf(`edgebridge_command_duration_seconds_bucket{pool=%q,transport="rest"`, p.name),
		fmt.Sprintf(`edgebridge_edgex_requests_total{code="200",method="GET",pool=%q,route="/api/v3/device/all",service="core-metadata"}`, p.name),
		"edgebridge_decode_errors_total",
		// Reconciles are controller-runtime's to count, per kind and pool.
		fmt.Sprintf(`controller_runtime_reconcile_total{controller="device-%s",result="success"}`, p.name),
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				return fmt.Errorf("metrics lack %s", w)
			}
		}
		return nil
	})
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Readings are re-published, normalised as JSON with typed values, on a
// topic addressed by pool, namespace and device name.
func TestNorthboundReadings(t *testing.T) {
	north, err := messagebus.New(messagebus.Options{BrokerURL: mqtt.URL()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := north.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.Northbound = north
		o.NorthboundPrefix = "north"
	}})
	listener, _ := messagebus.New(messagebus.Options{BrokerURL: mqtt.URL()})
	if err := listener.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]devicecontroller.NorthboundEvent{}
	if err := listener.Subscribe("north/"+p.name+"/#", func(topic string, payload []byte) {
		var ev devicecontroller.NorthboundEvent
		if json.Unmarshal(payload, &ev) == nil {
			mu.Lock()
			got[topic] = ev
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := listener.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	gpio, sensor := simulator.DemoDevices()[0].Name, simulator.DemoDevices()[1].Name
	for _, d := range []string{gpio, sensor} {
		waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, d), func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	}
	_ = p.sim.PublishReadings(ctx, sensor, map[string]string{"temperature": "19.75", "sample_rate": "30"})
	_ = p.sim.PublishReadings(ctx, gpio, map[string]string{"pin_27": "true"})

	sensorTopic := devicecontroller.NorthboundTopic("north", p.name, p.ns, convert.PreferredKubeName(p.name, sensor), "")
	gpioTopic := devicecontroller.NorthboundTopic("north", p.name, p.ns, convert.PreferredKubeName(p.name, gpio), "")
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		var sensorEv, gpioEv *devicecontroller.NorthboundEvent
		for topic, ev := range got {
			ev := ev
			switch {
			case strings.HasPrefix(topic, sensorTopic):
				sensorEv = &ev
			case strings.HasPrefix(topic, gpioTopic):
				gpioEv = &ev
			}
		}
		if sensorEv == nil || gpioEv == nil {
			return fmt.Errorf("northbound topics so far: %v", keys(got))
		}
		values := map[string]string{}
		for _, r := range append(sensorEv.Readings, gpioEv.Readings...) {
			values[r.Resource] = string(r.Value)
		}
		if values["temperature"] != "19.75" || values["sample_rate"] != "30" || values["pin_27"] != "true" {
			return fmt.Errorf("readings not typed JSON: %v", values)
		}
		if sensorEv.Device != convert.PreferredKubeName(p.name, sensor) || sensorEv.EdgeXName != sensor || sensorEv.Namespace != p.ns || sensorEv.Pool != p.name {
			return fmt.Errorf("identity %+v", sensorEv)
		}
		return nil
	})
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A device's reading series go with it: once its Device is deleted its
// gauges vanish and make room, under the series cap, for other devices'
// readings; created again, it reports into its new Device at once.
func TestReadingSeriesFollowTheirDevices(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.MaxReadingSeries = 2
	}})
	gpio := simulator.DemoDevices()[0]
	gpioName := convert.PreferredKubeName(p.name, gpio.Name)
	waitFor(p, &v1alpha1.Device{}, gpioName, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	sensor := commandDevice(p, "greenhouse", simulator.ProfileSensor)
	sensorEdgeX := v1alpha1.EdgeXName(sensor)
	ctx := context.Background()
	publish := func(device string, values map[string]string) {
		t.Helper()
		if err := p.sim.PublishReadings(ctx, device, values); err != nil {
			t.Fatal(err)
		}
	}
	seriesAre := func(device string, want int) {
		t.Helper()
		testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
			if got := readingSeries(t, p.name, device); got != want {
				return fmt.Errorf("%s has %d reading series, want %d", device, got, want)
			}
			return nil
		})
	}

	publish(sensorEdgeX, map[string]string{"temperature": "21.5", "humidity": "40"})
	seriesAre(sensor.Name, 2)
	dropped := metric(t, "edgebridge_reading_series_dropped_total", p.name)
	publish(gpio.Name, map[string]string{"pin_27": "true"})
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if got := metric(t, "edgebridge_reading_series_dropped_total", p.name) - dropped; got != 1 {
			return fmt.Errorf("%v readings dropped for the cap, want 1", got)
		}
		return nil
	})
	if got := readingSeries(t, p.name, gpioName); got != 0 {
		t.Fatalf("%s got %d series beyond the cap", gpioName, got)
	}

	p.delete(sensor)
	waitGone(p, &v1alpha1.Device{}, sensor.Name)
	seriesAre(sensor.Name, 0)
	publish(gpio.Name, map[string]string{"pin_27": "false"})
	seriesAre(gpioName, 1)

	commandDevice(p, sensor.Name, simulator.ProfileSensor)
	publish(sensorEdgeX, map[string]string{"temperature": "22.5"})
	waitFor(p, &v1alpha1.Device{}, sensor.Name, func(d *v1alpha1.Device) error {
		if got := d.Status.DeviceProperties["temperature"]; !convert.EqualValues("Float32", got.ActualValue, "22.5") {
			return fmt.Errorf("temperature status %+v", got)
		}
		return nil
	})
	seriesAre(sensor.Name, 1)
}

// An imported device deleted at the edge takes its reading series with
// it, as a Device deleted in the cloud does.
func TestReadingSeriesGoWithDevicesDeletedAtTheEdge(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	sensor := simulator.DemoDevices()[1].Name
	name := convert.PreferredKubeName(p.name, sensor)
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	if err := p.sim.PublishReadings(context.Background(), sensor, map[string]string{"temperature": "19.5", "humidity": "55"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if got := readingSeries(t, p.name, name); got != 2 {
			return fmt.Errorf("%s has %d reading series, want 2", name, got)
		}
		return nil
	})

	if err := p.sim.DeleteDevice(sensor); err != nil {
		t.Fatal(err)
	}
	waitGone(p, &v1alpha1.Device{}, name)
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if got := readingSeries(t, p.name, name); got != 0 {
			return fmt.Errorf("%s, deleted at the edge, still has %d reading series", name, got)
		}
		return nil
	})
}

// readingSeries counts a device's reading gauges in one pool.
func readingSeries(t *testing.T, pool, device string) int {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		if f.GetName() != "edgebridge_reading_value" {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelValue(m, "pool") == pool && labelValue(m, "device") == device {
				n++
			}
		}
	}
	return n
}

// A Device that stops claiming an EdgeX device (its EdgeX name changed)
// stops receiving that device's readings, though telemetry remembered it
// as their owner.
func TestReadingsFollowTheEdgeXName(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.StatusInterval = time.Second
	}})
	dev := commandDevice(p, "thermo", simulator.ProfileSensor)
	ctx := context.Background()
	if err := p.sim.PublishReadings(ctx, "thermo", map[string]string{"temperature": "21.5"}); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
		if got := d.Status.DeviceProperties["temperature"]; !convert.EqualValues("Float32", got.ActualValue, "21.5") {
			return fmt.Errorf("temperature status %+v", got)
		}
		return nil
	})

	update(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) {
		d.Annotations[v1alpha1.EdgeXNameAnnotation] = "thermo-2"
	})
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
		if _, ok := p.sim.Device("thermo-2"); !ok {
			return fmt.Errorf("EdgeX has no thermo-2 yet")
		}
		return synced(d.Status.Synced, d.Status.Conditions)
	})
	unknown := metric(t, "edgebridge_events_unknown_device_total", p.name)
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if err := p.sim.PublishReadings(ctx, "thermo", map[string]string{"temperature": "30.5"}); err != nil {
			return err
		}
		if metric(t, "edgebridge_events_unknown_device_total", p.name) == unknown {
			return fmt.Errorf("events of thermo still reach a Device")
		}
		return nil
	})
	d := &v1alpha1.Device{}
	if err := p.get(d, dev.Name); err != nil {
		t.Fatal(err)
	}
	if got := d.Status.DeviceProperties["temperature"].ActualValue; !convert.EqualValues("Float32", got, "21.5") {
		t.Fatalf("%s took a reading of the EdgeX device it no longer claims: temperature %s", dev.Name, got)
	}
}

// With --status-write-rate, a pool's later values wait for its budget, but
// a property's first value does not: a new device's readings show in
// status at once, however much of the budget the pool has spent.
func TestStatusBudgetHoldsLaterValuesNotFirstOnes(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		// One write at once, then one every thousand seconds.
		o.StatusInterval, o.StatusWriteRate = 100*time.Millisecond, 0.001
	}})
	sensor, gpio := simulator.DemoDevices()[1].Name, simulator.DemoDevices()[0].Name
	sensorName, gpioName := convert.PreferredKubeName(p.name, sensor), convert.PreferredKubeName(p.name, gpio)
	waitFor(p, &v1alpha1.Device{}, sensorName, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	waitFor(p, &v1alpha1.Device{}, gpioName, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	ctx := context.Background()
	temperature := func(value string) {
		t.Helper()
		if err := p.sim.PublishReadings(ctx, sensor, map[string]string{"temperature": value}); err != nil {
			t.Fatal(err)
		}
		waitFor(p, &v1alpha1.Device{}, sensorName, func(d *v1alpha1.Device) error {
			if got := d.Status.DeviceProperties["temperature"]; !convert.EqualValues("Float32", got.ActualValue, value) {
				return fmt.Errorf("temperature status %+v, want %s", got, value)
			}
			return nil
		})
	}
	temperature("1.5") // the first value: not budgeted
	temperature("2.5") // the budget's one write
	writes := metric(t, "edgebridge_status_writes_total", p.name)
	if err := p.sim.PublishReadings(ctx, sensor, map[string]string{"temperature": "3.5"}); err != nil {
		t.Fatal(err)
	}
	// The GPIO board's first value goes past the spent budget.
	if err := p.sim.PublishReadings(ctx, gpio, map[string]string{"pin_27": "true"}); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.Device{}, gpioName, func(d *v1alpha1.Device) error {
		if got := d.Status.DeviceProperties["pin_27"]; !convert.EqualValues("Bool", got.ActualValue, "true") {
			return fmt.Errorf("pin_27 status %+v", got)
		}
		return nil
	})
	if got := metric(t, "edgebridge_status_writes_total", p.name) - writes; got != 1 {
		t.Errorf("%v status writes after the budget was spent, want only the GPIO board's first value", got)
	}
	var d v1alpha1.Device
	if err := p.get(&d, sensorName); err != nil {
		t.Fatal(err)
	}
	if got := d.Status.DeviceProperties["temperature"]; !convert.EqualValues("Float32", got.ActualValue, "2.5") {
		t.Errorf("temperature status %+v past a spent budget, want it held at 2.5", got)
	}
}
