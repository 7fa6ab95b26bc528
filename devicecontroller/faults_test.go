package devicecontroller_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
	"github.com/edgebridge/edgebridge/hack/testenv/broker"
)

// EdgeX stops answering while users edit their devices. Meanwhile every
// edited device says EdgeXUnreachable and nothing is deleted, in the cloud
// or at the edge; once EdgeX answers again every edit lands, desired values
// included. make chaos runs the same with a full minute of outage.
func TestEdgeXOutageWhileUsersEdit(t *testing.T) {
	edgeXOutageWhileUsersEdit(t, 100, 10*time.Second)
}

func edgeXOutageWhileUsersEdit(t *testing.T, devices int, outage time.Duration) {
	p := startPool(t, poolConfig{seedDemo: true, noBridge: true})
	metadata, command := newLink(t, p.sim.MetadataURL()), newLink(t, p.sim.CommandURL())
	p.cfg.restOptions = func(o *edgex.Options) { o.MetadataURL, o.CommandURL = metadata.URL(), command.URL() }
	p.startBridge()
	imported := demoImports(p)
	names := createManagedDevices(p, "edit", devices)
	atEdge := len(p.sim.Devices())

	metadata.Cut()
	command.Cut()
	restoreAt := time.Now().Add(outage)
	const edited = "edited while EdgeX was unreachable"
	for _, name := range names {
		update(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) {
			d.Spec.Description = edited
			d.Spec.DeviceProperties = map[string]v1alpha1.DesiredPropertyState{"pin_17": {Name: "pin_17", DesiredValue: "true"}}
		})
	}
	waitDevices(p, names, func(d *v1alpha1.Device) error {
		return reason(d.Status.Conditions, v1alpha1.ConditionSynced, v1alpha1.ReasonEdgeXUnreachable)
	})
	if err := p.bridge.Ready(); err == nil {
		t.Error("the bridge reports ready while EdgeX is unreachable")
	}
	// A resync during the outage fails; it must delete nothing.
	failedLists := resyncs(t, p, "error")
	p.bridge.ResyncNow()
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if resyncs(t, p, "error") == failedLists {
			return fmt.Errorf("no resync attempted during the outage yet")
		}
		return nil
	})
	assertStays(t, time.Until(restoreAt), func() error {
		if err := allPresent(p, imported); err != nil {
			return err
		}
		return devicesAll(p, names, func(d *v1alpha1.Device) error {
			return reason(d.Status.Conditions, v1alpha1.ConditionSynced, v1alpha1.ReasonEdgeXUnreachable)
		})
	})

	metadata.Restore()
	command.Restore()
	waitDevices(p, names, func(d *v1alpha1.Device) error {
		edge, ok := p.sim.Device(d.Name)
		if !ok || edge.Description != edited {
			return fmt.Errorf("EdgeX holds %q (present %v)", edge.Description, ok)
		}
		if v, _ := p.sim.Value(d.Name, "pin_17"); v != "true" {
			return fmt.Errorf("pin_17 is %q at the device", v)
		}
		return reason(d.Status.Conditions, v1alpha1.ConditionSynced, v1alpha1.ReasonInSync)
	})
	if err := allPresent(p, imported); err != nil {
		t.Fatal(err)
	}
	if n := len(p.sim.Devices()); n != atEdge {
		t.Fatalf("%d devices in EdgeX after the outage, %d before", n, atEdge)
	}
}

// EdgeX answers resyncs and edits with 500s, error bodies, truncated JSON
// or not in time. Each fault surfaces (in the resync metrics and in the
// edited object's Synced condition), nothing is deleted, and the edit lands
// once the fault is gone. Afterwards the bridge is stopped while its calls
// hang, and none of the goroutines it started outlives it.
func TestFaultyEdgeXAnswersSurfaceAndLeaveNoGoroutinesBehind(t *testing.T) {
	before := goroutineStacks()
	p := startPool(t, poolConfig{seedDemo: true})
	imported := demoImports(p)
	dev := commandDevice(p, "faulty", simulator.ProfileGPIO)

	faults := []struct {
		name   string
		inject func(f *simulator.Faults)
		// editReason is the failure reason an edit made under the fault
		// is counted and reported with; "" when the edit lands despite
		// the fault.
		editReason string
		// shown says the edited object's Synced condition keeps the
		// reason while the fault lasts. A truncated answer to an update
		// EdgeX applied anyway is soon corrected by EdgeX's update event.
		shown bool
	}{
		{"500 on every call", func(f *simulator.Faults) { f.FailRequests(500, -1) }, v1alpha1.ReasonEdgeXError, true},
		{"error body on a successful list", func(f *simulator.Faults) { f.ErrorBodyOnSuccess(true) }, "", false},
		{"truncated JSON", func(f *simulator.Faults) { f.TruncateResponses(true) }, v1alpha1.ReasonEdgeXError, false},
		{"answers slower than the timeout", func(f *simulator.Faults) { f.SetLatency(4 * time.Second) }, v1alpha1.ReasonEdgeXUnreachable, true},
	}
	for i, tc := range faults {
		failedLists := resyncs(t, p, "error")
		failedEdits := edgexFailures(t, p, tc.editReason)
		tc.inject(p.sim.Faults())
		p.bridge.ResyncNow()
		desc := fmt.Sprintf("edit %d, made while EdgeX gave %s", i, tc.name)
		update(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) { d.Spec.Description = desc })
		testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
			if resyncs(t, p, "error") == failedLists {
				return fmt.Errorf("%s: no failed resync counted", tc.name)
			}
			if tc.editReason != "" && edgexFailures(t, p, tc.editReason) == failedEdits {
				return fmt.Errorf("%s: no failed edit counted as %s", tc.name, tc.editReason)
			}
			return nil
		})
		if tc.shown {
			waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
				return reason(d.Status.Conditions, v1alpha1.ConditionSynced, tc.editReason)
			})
		}
		assertStays(t, time.Second, func() error { return allPresent(p, imported) })

		p.sim.Faults().Clear()
		waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
			if edge, _ := p.sim.Device(dev.Name); edge.Description != desc {
				return fmt.Errorf("%s: EdgeX holds %q", tc.name, edge.Description)
			}
			return synced(d.Status.Synced, d.Status.Conditions)
		})
	}

	// Stop the bridge while its calls hang: a command and a resync (each
	// attempt gives up after the client's 3s timeout, so they are started
	// just before the stop). The edit made meanwhile may not be sent at
	// all: once calls time out the bridge holds EdgeX unreachable and only
	// its prober calls.
	hanging := func(calls ...string) {
		t.Helper()
		before := p.sim.RequestCounts()
		testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
			now := p.sim.RequestCounts()
			for _, call := range calls {
				if now[call] == before[call] {
					return fmt.Errorf("no hanging %s yet", call)
				}
			}
			return nil
		})
	}
	p.sim.Faults().SetDeviceLatency(dev.Name, time.Minute)
	setDesired(p, dev.Name, "pin_17", "true")
	hanging("core-command PUT /api/v3/device/name/{name}/{command}")
	p.sim.Faults().SetLatency(time.Minute)
	p.bridge.ResyncNow()
	update(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) { d.Spec.Description = "edited as the bridge stops" })
	hanging("core-metadata GET /api/v3/deviceservice/all")
	p.stop()
	stopped := time.Now()
	// The bridge's own goroutines end with it, while EdgeX still hangs;
	// a command already sent is not cancelled by the stop but ends with
	// its own timeout (the client's 3s here), so the bound allows for it.
	testenv.Eventually(t, 3*time.Second+2*time.Second, func(context.Context) error {
		for _, stack := range goroutineStacks() {
			if strings.Contains(stack, "edgebridge/devicecontroller.") {
				return fmt.Errorf("a goroutine of the bridge outlived it:\n%s", stack)
			}
		}
		return nil
	})
	_ = p.sim.Close()
	waitNoLeakedGoroutines(t, before)
	t.Logf("every goroutine of the bridge ended within %s of its stop", time.Since(stopped).Round(time.Millisecond))
}

// The broker restarts. The bridge reconnects and subscribes again (new
// readings reach status), the resync it runs on reconnection repairs what
// the bus lost meanwhile, and a command sent over MQTT during the outage
// is retried until the device has the value.
func TestBrokerRestartIsRepairedAndCommandsAreRetried(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	p := startPool(t, poolConfig{seedDemo: true, transport: "mqtt", broker: b})
	w := recordWrites(t, p)
	imported := demoImports(p)
	commandDevice(p, "over-mqtt", simulator.ProfileGPIO)

	b.Stop()
	gone := simulator.DemoDevices()[0].Name
	if err := p.sim.DeleteDevice(gone); err != nil {
		t.Fatal(err)
	}
	added := simulator.DemoDevices()[1]
	added.Name, added.Id, added.AutoEvents = "added-while-the-broker-was-down", "", nil
	if _, err := p.sim.AddDevice(added); err != nil {
		t.Fatal(err)
	}
	setDesired(p, "over-mqtt", "pin_17", "true")
	waitFor(p, &v1alpha1.Device{}, "over-mqtt", func(d *v1alpha1.Device) error {
		c := d.Status.DeviceProperties["pin_17"].LastCommand
		if c == nil || c.Result != v1alpha1.CommandFailed {
			return fmt.Errorf("last command %+v, want a failure while the broker is down", c)
		}
		return nil
	})
	// A few seconds of outage: the command must keep failing meanwhile.
	outageEnds := time.Now().Add(3 * time.Second)
	assertStays(t, time.Until(outageEnds), func() error {
		if n := len(w.to("over-mqtt", "pin_17")); n != 0 {
			return fmt.Errorf("%d writes reached the device without a broker", n)
		}
		return nil
	})
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}

	waitProperty(p, "over-mqtt", "pin_17", "Bool", "true")
	if writes := w.to("over-mqtt", "pin_17"); len(writes) != 1 || writes[0].Via != "mqtt" {
		t.Errorf("writes %+v, want exactly one over MQTT", writes)
	}
	waitGone(p, &v1alpha1.Device{}, imported[gone])
	waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, added.Name), func(d *v1alpha1.Device) error {
		return synced(d.Status.Synced, d.Status.Conditions)
	})
	sensor := simulator.DemoDevices()[1].Name
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		if err := p.sim.PublishReadings(ctx, sensor, map[string]string{"temperature": "31.25"}); err != nil {
			return err
		}
		d := &v1alpha1.Device{}
		if err := p.get(d, imported[sensor]); err != nil {
			return err
		}
		if got := d.Status.DeviceProperties["temperature"].ActualValue; !convert.EqualValues("Float32", got, "31.25") {
			return fmt.Errorf("temperature in status %q: readings not subscribed again", got)
		}
		return nil
	})
}

// demoImports waits until the simulator's demo devices are imported and
// returns their object names by EdgeX name.
func demoImports(p *pool) map[string]string {
	p.t.Helper()
	names := map[string]string{}
	for _, d := range simulator.DemoDevices() {
		names[d.Name] = convert.PreferredKubeName(p.name, d.Name)
		waitFor(p, &v1alpha1.Device{}, names[d.Name], func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	}
	return names
}

// createManagedDevices applies n managed GPIO devices on the demo service
// and waits until all are synced.
func createManagedDevices(p *pool, prefix string, n int) []string {
	p.t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%03d", prefix, i)
		p.create(managedDevice(p, names[i], simulator.DemoServiceName, simulator.ProfileGPIO))
	}
	waitDevices(p, names, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	return names
}

// waitDevices waits until every named device of the pool passes check,
// with one list per poll.
func waitDevices(p *pool, names []string, check func(*v1alpha1.Device) error) {
	p.t.Helper()
	testenv.Eventually(p.t, testenv.DefaultTimeout, func(context.Context) error {
		return devicesAll(p, names, check)
	})
}

// devicesAll checks every named device of the pool; its error names the
// first failure and how many failed.
func devicesAll(p *pool, names []string, check func(*v1alpha1.Device) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var list v1alpha1.DeviceList
	if err := p.c.List(ctx, &list, client.InNamespace(p.ns)); err != nil {
		return err
	}
	byName := map[string]*v1alpha1.Device{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	var first error
	failing := 0
	for _, n := range names {
		d, ok := byName[n]
		var err error
		if !ok {
			err = fmt.Errorf("no device %s", n)
		} else if err = check(d); err != nil {
			err = fmt.Errorf("%s: %w", n, err)
		}
		if err != nil {
			failing++
			if first == nil {
				first = err
			}
		}
	}
	if first != nil {
		return fmt.Errorf("%d of %d devices not there yet; first: %w", failing, len(names), first)
	}
	return nil
}

// allPresent checks that the named objects exist and are not being deleted.
func allPresent(p *pool, byEdgeXName map[string]string) error {
	for edgeName, name := range byEdgeXName {
		d := &v1alpha1.Device{}
		if err := p.get(d, name); err != nil {
			return fmt.Errorf("imported device %s (EdgeX %q): %w", name, edgeName, err)
		}
		if d.DeletionTimestamp != nil {
			return fmt.Errorf("imported device %s is being deleted", name)
		}
	}
	return nil
}

// resyncs is the pool's count of full resyncs of every kind with the given
// result (ok, error, held).
func resyncs(t *testing.T, p *pool, result string) float64 {
	return metricWhere(t, "edgebridge_resyncs_total", map[string]string{"pool": p.name, "result": result})
}

// edgexFailures is the pool's count of failed EdgeX calls for devices with
// the given condition reason.
func edgexFailures(t *testing.T, p *pool, reason string) float64 {
	return metricWhere(t, "edgebridge_edgex_failures_total", map[string]string{"pool": p.name, "kind": "Device", "reason": reason})
}

// metricWhere sums the series of a Prometheus metric whose labels include
// the given ones.
func metricWhere(t *testing.T, name string, labels map[string]string) float64 {
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
	series:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				if labelValue(m, k) != v {
					continue series
				}
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

// link is a TCP proxy in front of one EdgeX service. Cutting it refuses new
// connections and drops open ones, as a stopped service or a network
// partition does; restoring it listens again on the same address.
type link struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newLink(t *testing.T, targetURL string) *link {
	t.Helper()
	u, err := url.Parse(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &link{t: t, target: u.Host, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	l.serve(ln)
	t.Cleanup(func() {
		l.Cut()
		l.wg.Wait()
	})
	return l
}

// URL is the service's URL through the link.
func (l *link) URL() string { return "http://" + l.addr }

// Cut closes the listener and every open connection.
func (l *link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		_ = l.ln.Close()
		l.ln = nil
	}
	for c := range l.conns {
		_ = c.Close()
	}
}

// Restore listens again on the link's address.
func (l *link) Restore() {
	l.t.Helper()
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		l.t.Fatalf("restore link to %s: %v", l.target, err)
	}
	l.serve(ln)
}

func (l *link) serve(ln net.Listener) {
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.pipe(c)
			}()
		}
	}()
}

// pipe relays one connection until either side closes it or the link is
// cut.
func (l *link) pipe(in net.Conn) {
	out, err := net.DialTimeout("tcp", l.target, 5*time.Second)
	if err != nil {
		_ = in.Close()
		return
	}
	if !l.track(in, out) {
		_ = in.Close()
		_ = out.Close()
		return
	}
	defer l.untrack(in, out)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(out, in)
		_ = out.Close()
	}()
	_, _ = io.Copy(in, out)
	_ = in.Close()
	<-done
}

func (l *link) track(conns ...net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return false // cut while this connection was being made
	}
	for _, c := range conns {
		l.conns[c] = struct{}{}
	}
	return true
}

func (l *link) untrack(conns ...net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range conns {
		delete(l.conns, c)
	}
}

// goroutineStacks returns the stack of every goroutine, by goroutine id.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if f := strings.Fields(header); len(f) > 1 && f[0] == "goroutine" {
			stacks[f[1]] = g
		}
	}
	return stacks
}

// waitNoLeakedGoroutines waits until every goroutine started since before
// has ended, except the API server client's idle connections: client-go
// caches one transport per configuration for the whole process, so its
// keep-alive connections outlive any bridge by design. They are recognised
// as HTTP connection loops; any HTTP connection of the bridge's own EdgeX
// client ended when the simulator closed, so the exception hides nothing
// of the bridge's.
func waitNoLeakedGoroutines(t *testing.T, before map[string]string) {
	t.Helper()
	var leaked []string
	excused := 0
	err := testenv.Wait(30*time.Second, func(context.Context) error {
		leaked, excused = leaked[:0], 0
		for id, stack := range goroutineStacks() {
			if _, old := before[id]; old {
				continue
			}
			if apiServerConnection(stack) {
				excused++
				continue
			}
			leaked = append(leaked, stack)
		}
		if len(leaked) > 0 {
			return fmt.Errorf("%d goroutines left", len(leaked))
		}
		return nil
	})
	if err != nil {
		sort.Strings(leaked)
		t.Fatalf("goroutines outlived the bridge (%v):\n\n%s", err, strings.Join(leaked, "\n\n"))
	}
	t.Logf("%d new goroutines are idle API server connections of the shared client", excused)
}

func apiServerConnection(stack string) bool {
	for _, frame := range []string{"net/http.(*persistConn).readLoop", "net/http.(*persistConn).writeLoop",
		"net/http.(*http2ClientConn).readLoop", "golang.org/x/net/http2.(*ClientConn).readLoop"} {
		if strings.Contains(stack, frame) {
			return true
		}
	}
	return false
}

// The broker restarts in well under a second, several times: each time a
// device added at the edge meanwhile has its system event lost, and only
// the resync the bridge runs on reconnection finds it (the periodic one is
// ten minutes away). A bridge that polled its connection would miss most
// of these reconnects.
func TestSubSecondBrokerRestartsAreRepaired(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	p := startPool(t, poolConfig{seedDemo: true, broker: b})
	demoImports(p)
	for i := range 3 {
		added := simulator.DemoDevices()[1]
		added.Name, added.Id, added.AutoEvents = fmt.Sprintf("added-during-restart-%d", i), "", nil
		var down time.Time
		err := b.Bounce(func() {
			down = time.Now()
			if _, err := p.sim.AddDevice(added); err != nil {
				t.Error(err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("restart %d: the broker was down for %s", i, time.Since(down).Round(time.Millisecond))
		waitFor(p, &v1alpha1.Device{}, convert.PreferredKubeName(p.name, added.Name), func(d *v1alpha1.Device) error {
			return synced(d.Status.Synced, d.Status.Conditions)
		})
	}
}
