//go:build chaos

package devicecontroller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// cloudOutageAtScale is the long version for make chaos: a pool of two
// replicas and `devices` edge devices, each reporting every `period`, plus
// `managed` managed devices with a desired value, loses the cloud for
// `outage`. Meanwhile one managed device drifts every 20 seconds, and the
// edge adds, changes and deletes devices. It reports the commands sent
// during the outage and how long statuses took to catch up.
func cloudOutageAtScale(t *testing.T, devices, managed int, period, outage time.Duration) {
	edgeNames := make([]string, devices)
	rig := startOutageRig(t, func(p *pool) {
		base := simulator.DemoDevices()[1]
		for i := range edgeNames {
			d := base
			d.Name, d.Id, d.AutoEvents = fmt.Sprintf("edge-%04d", i), "", nil
			edgeNames[i] = d.Name
			_, err := p.sim.AddDevice(d)
			must(t, err)
		}
	})
	p := rig.pool
	leader, standby := rig.waitForLeader()
	names := createManagedDevices(p, "valve", managed)
	for _, name := range names {
		setDesired(p, name, "pin_17", "true")
	}
	kubeNames := make([]string, len(edgeNames))
	for i, n := range edgeNames {
		kubeNames[i] = convert.PreferredKubeName(p.name, n)
	}
	waitDevices(p, kubeNames, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	waitDevices(p, names, func(d *v1alpha1.Device) error {
		return reason(d.Status.Conditions, v1alpha1.ConditionPropertiesSynced, v1alpha1.ReasonInSync)
	})
	t.Logf("%d edge and %d managed devices synced; %s leads", devices, managed, leader.identity)
	writes := recordWrites(t, p)

	// Telemetry: every edge device reports a new temperature every period.
	tele := startTelemetry(t, p, edgeNames, period)
	for _, r := range rig.replicas {
		r.link.Cut()
	}
	cutAt := time.Now()
	t.Logf("cloud cut at %s for %s", cutAt.Format(time.TimeOnly), outage)
	rig.waitCloud(leader, false)
	rig.waitCloud(standby, false)

	// The edge changes meanwhile: ten added, ten changed, ten deleted.
	const desc = "changed at the edge during the outage"
	var added, changed, deleted []string
	for i := range 10 {
		d := simulator.DemoDevices()[1]
		d.Name, d.Id, d.AutoEvents = fmt.Sprintf("added-%02d", i), "", nil
		_, err := p.sim.AddDevice(d)
		must(t, err)
		added = append(added, convert.PreferredKubeName(p.name, d.Name))
		must(t, p.sim.UpdateDevice(dtos.UpdateDevice{Name: ptr(edgeNames[i]), Description: ptr(desc)}))
		changed = append(changed, kubeNames[i])
		gone := edgeNames[len(edgeNames)-1-i]
		tele.stop(gone)
		must(t, p.sim.DeleteDevice(gone))
		deleted = append(deleted, convert.PreferredKubeName(p.name, gone))
	}
	// One managed device drifts every 20 seconds and must be commanded back.
	drifts := 0
	for i := 0; time.Until(cutAt.Add(outage)) > 20*time.Second; i++ {
		lastFor(time.Until(cutAt.Add(time.Duration(i+1) * 20 * time.Second)))
		name := names[i%len(names)]
		rig.drift(name)
		drifts++
		testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
			if v, _ := p.sim.Value(name, "pin_17"); v != "true" {
				return fmt.Errorf("%s: pin_17 is %q at the device: not commanded back", name, v)
			}
			return nil
		})
		rig.stillLeads(leader, standby)
	}
	rig.waitNorthboundCount(tele)
	lastFor(time.Until(cutAt.Add(outage)))
	rig.stillLeads(leader, standby)
	duringOutage := writes.count()
	latest := tele.stopAll()
	readingCurrent := func(d *v1alpha1.Device) bool {
		want, ok := latest[v1alpha1.EdgeXName(d)]
		got := d.Status.DeviceProperties["temperature"]
		return ok && convert.EqualValues(got.ValueType, want, got.ActualValue) && synced(d.Status.Synced, d.Status.Conditions) == nil
	}
	objectCurrent := func(d *v1alpha1.Device) bool {
		c := v1alpha1.FindCondition(d.Status.Conditions, v1alpha1.ConditionSynced)
		if c == nil || c.Status != "True" || c.ObservedGeneration != d.Generation {
			return false
		}
		return len(d.Spec.DeviceProperties) == 0 ||
			reason(d.Status.Conditions, v1alpha1.ConditionPropertiesSynced, v1alpha1.ReasonInSync) == nil
	}
	clock := startStatusClock(t, p, map[string]func(*v1alpha1.Device) bool{"reading": readingCurrent, "object": objectCurrent})
	restoredAt := time.Now()
	for _, r := range rig.replicas {
		r.link.Restore()
	}

	var readingsAt, objectsAt time.Duration
	readingsCurrent := func(context.Context) error {
		err := devicesAll(p, kubeNames[:len(kubeNames)-10], func(d *v1alpha1.Device) error {
			want := latest[v1alpha1.EdgeXName(d)]
			if got := d.Status.DeviceProperties["temperature"]; !convert.EqualValues(got.ValueType, want, got.ActualValue) {
				return fmt.Errorf("%s: status says temperature %q, the device last reported %s", d.Name, got.ActualValue, want)
			}
			return synced(d.Status.Synced, d.Status.Conditions)
		})
		if err == nil && readingsAt == 0 {
			readingsAt = time.Since(restoredAt)
		}
		return err
	}
	objectsCurrent := func(ctx context.Context) error {
		err := errors.Join(
			devicesAll(p, changed, func(d *v1alpha1.Device) error {
				if d.Spec.Description != desc {
					return fmt.Errorf("%s: the edge's change is not mirrored", d.Name)
				}
				return nil
			}),
			devicesAll(p, added, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) }),
			rig.allAbsent(ctx, deleted),
			rig.allCurrent(ctx),
		)
		if err == nil && objectsAt == 0 {
			objectsAt = time.Since(restoredAt)
		}
		return err
	}
	testenv.Eventually(t, 5*time.Minute, func(ctx context.Context) error {
		return errors.Join(readingsCurrent(ctx), objectsCurrent(ctx))
	})
	took := time.Since(restoredAt)
	t.Logf("after the link returned, as the polls saw it: every reading in status after %s, every object and condition current after %s; %s",
		readingsAt.Round(100*time.Millisecond), objectsAt.Round(100*time.Millisecond), rig.metricLine("edgebridge_messages_dropped_total"))
	// A poll over a thousand objects takes seconds on a loaded machine, so
	// the polls above only bound the catch-up; the watch says when each
	// object's last needed write landed.
	readingsAt = clock.currentAfter(t, "reading", kubeNames[:len(kubeNames)-10], restoredAt)
	objectsAt = max(clock.currentAfter(t, "object", clock.names(), restoredAt), clock.goneAfter(t, deleted, restoredAt))
	t.Logf("after the link returned, as the watch saw it: every reading in status after %s, every object and condition current after %s",
		readingsAt.Round(100*time.Millisecond), objectsAt.Round(100*time.Millisecond))
	rig.stillLeads(leader, standby)
	rig.noDuplicates()
	t.Logf("outage of %s with %d edge devices reporting every %s and %d managed: %d drifts, %d commands sent during the outage, "+
		"%d readings published; statuses caught up %s after the link returned; restarts 0",
		outage, devices, period, managed, drifts, duringOutage, tele.published(), took.Round(100*time.Millisecond))
	if duringOutage != drifts {
		t.Errorf("%d commands for %d drifts during the outage", duringOutage, drifts)
	}
	// took also counts the final polls, over 2,000 objects.
	if current := max(readingsAt, objectsAt); current > 10*time.Second {
		t.Errorf("statuses took %s to catch up, more than 10s", current.Round(100*time.Millisecond))
	}
}

func (rig *outageRig) allAbsent(ctx context.Context, names []string) error {
	var errs []error
	for _, n := range names {
		errs = append(errs, rig.absent(ctx, n))
	}
	return errors.Join(errs...)
}

// waitNorthboundCount waits until northbound carried readings published
// during the outage.
func (rig *outageRig) waitNorthboundCount(tele *telemetryLoad) {
	rig.t.Helper()
	testenv.Eventually(rig.t, testenv.DefaultTimeout, func(context.Context) error {
		want := tele.snapshot()
		rig.mu.Lock()
		defer rig.mu.Unlock()
		missing := 0
		for device := range want {
			if rig.northbound[device+"/temperature"] == "" {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d devices' readings never reached the northbound broker", missing, len(want))
		}
		return nil
	})
}

// telemetryLoad publishes a temperature for each device every period,
// spread evenly, and remembers the last value of each.
type telemetryLoad struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	last    map[string]string
	stopped map[string]bool
	count   int
}

func startTelemetry(t *testing.T, p *pool, devices []string, period time.Duration) *telemetryLoad {
	ctx, cancel := context.WithCancel(context.Background())
	tl := &telemetryLoad{t: t, cancel: cancel, done: make(chan struct{}), last: map[string]string{}, stopped: map[string]bool{}}
	t.Cleanup(func() { tl.stopAll() })
	gap := period / time.Duration(len(devices))
	go func() {
		defer close(tl.done)
		tick := time.NewTicker(gap)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			device := devices[i%len(devices)]
			value := fmt.Sprintf("%d.5", 10+i%30)
			tl.mu.Lock()
			skip := tl.stopped[device]
			tl.mu.Unlock()
			if skip {
				continue
			}
			// Not ctx: a publish cancelled half-way may still reach the
			// device and the bus, and then the last value here is wrong.
			pubCtx, pubCancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := p.sim.PublishReadings(pubCtx, device, map[string]string{"temperature": value})
			pubCancel()
			if err != nil {
				continue // the device was deleted meanwhile, or the test ends
			}
			tl.mu.Lock()
			tl.last[device] = value
			tl.count++
			tl.mu.Unlock()
		}
	}()
	return tl
}

func (tl *telemetryLoad) stop(device string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.stopped[device] = true
	delete(tl.last, device)
}

// stopAll stops publishing and returns each device's last value.
func (tl *telemetryLoad) stopAll() map[string]string {
	tl.cancel()
	<-tl.done
	return tl.snapshot()
}

func (tl *telemetryLoad) snapshot() map[string]string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := make(map[string]string, len(tl.last))
	for k, v := range tl.last {
		out[k] = v
	}
	return out
}

func (tl *telemetryLoad) published() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.count
}

func (w *writes) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.all)
}

// metricLine returns the /metrics lines that start with name, for the log.
func (rig *outageRig) metricLine(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+rig.metricsAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, name) && strings.Contains(l, rig.pool.name) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return name + " not reported"
	}
	return strings.Join(out, "; ")
}

// statusClock watches a pool's Devices and remembers, for each named
// check, since when each device has passed it (and when devices were
// deleted), as the API server's events tell.
type statusClock struct {
	mu     sync.Mutex
	checks map[string]func(*v1alpha1.Device) bool
	since  map[string]map[string]time.Time // check -> device -> passing since
	seen   map[string]bool
	gone   map[string]time.Time
}

func startStatusClock(t *testing.T, p *pool, checks map[string]func(*v1alpha1.Device) bool) *statusClock {
	t.Helper()
	// An informer, not a bare watch: the API server may end a watch that
	// falls behind, and the informer watches again where it stopped.
	informers, err := cache.New(kube.Config, cache.Options{Scheme: devicecontroller.Scheme(),
		DefaultNamespaces: map[string]cache.Config{p.ns: {}}})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &statusClock{checks: checks, since: map[string]map[string]time.Time{}, seen: map[string]bool{}, gone: map[string]time.Time{}}
	for name := range checks {
		c.since[name] = map[string]time.Time{}
	}
	informer, err := informers.GetInformer(ctx, &v1alpha1.Device{})
	must(t, err)
	_, err = informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.observe(watch.Added, obj, time.Now()) },
		UpdateFunc: func(_, obj any) { c.observe(watch.Modified, obj, time.Now()) },
		DeleteFunc: func(obj any) { c.observe(watch.Deleted, obj, time.Now()) },
	})
	must(t, err)
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		t.Fatal("the status clock's informer did not sync")
	}
	return c
}

func (c *statusClock) observe(kind watch.EventType, obj any, at time.Time) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	d, ok := obj.(*v1alpha1.Device)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if kind == watch.Deleted {
		c.gone[d.Name] = at
		return
	}
	c.seen[d.Name] = true
	for name, check := range c.checks {
		switch passing := check(d); {
		case !passing:
			delete(c.since[name], d.Name)
		case c.since[name][d.Name].IsZero():
			c.since[name][d.Name] = at
		}
	}
}

func (c *statusClock) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for n := range c.seen {
		if _, gone := c.gone[n]; !gone {
			out = append(out, n)
		}
	}
	return out
}

// currentAfter is how long after from the last of the devices began to
// pass the check for good; it fails the test for a device that does not
// pass now.
func (c *statusClock) currentAfter(t *testing.T, check string, devices []string, from time.Time) time.Duration {
	t.Helper()
	var last time.Duration
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		last = 0
		for _, n := range devices {
			at, ok := c.since[check][n]
			if !ok {
				return fmt.Errorf("the watch has not seen %s pass the %s check", n, check)
			}
			last = max(last, at.Sub(from))
		}
		return nil
	})
	return last
}

// goneAfter is how long after from the last of the devices was deleted.
func (c *statusClock) goneAfter(t *testing.T, devices []string, from time.Time) time.Duration {
	t.Helper()
	var last time.Duration
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		last = 0
		for _, n := range devices {
			at, ok := c.gone[n]
			if !ok {
				return fmt.Errorf("the watch has not seen %s deleted", n)
			}
			last = max(last, at.Sub(from))
		}
		return nil
	})
	return last
}
