package devicecontroller

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
)

// telemetry turns EdgeX device events into device status without any REST
// call: readings are merged in memory per device, and each device's status
// is written at most once per StatusInterval, and not at all when no value
// changed. Binary readings (camera frames) never reach status; only their
// media type and size do.
//
// onEvent runs once per event on the bus's delivery goroutine, so what it
// does per event is kept to two map lookups under one mutex: the owning
// Device is remembered rather than listed from the cache each time, metric
// handles are resolved once, and a device already waiting for its status
// write is not queued again. What it keeps is one small record per device
// (see deviceState), whose resource names are the decoder's interned
// strings.
type telemetry struct {
	*shared
	commands *commandDriver
	lookup   func(ctx context.Context, edgexName string) (*v1alpha1.Device, bool)
	// writes feeds the status writer, a controller keyed by device.
	writes   *queueSource[types.NamespacedName]
	counters telemetryCounters
	// pacer slows the status writes down while the API server is slow.
	pacer *statusPacer
	// northbound holds events waiting to be re-published, so that the bus
	// never waits for the northbound broker (see Options.NorthboundQueue).
	northbound chan northboundItem

	mu sync.Mutex
	// owners remembers which Device an EdgeX name belongs to (see owner).
	owners  map[string]ownerEntry
	devices map[types.NamespacedName]*deviceState
	// series counts the exported reading series against MaxReadingSeries.
	series int
}

// deviceState is what telemetry keeps for one Device.
type deviceState struct {
	// edgexName is the name the Device was found for.
	edgexName string
	lastWrite time.Time
	// scheduled says the status write is queued and not yet started.
	scheduled bool
	// pending are the latest readings not yet written, one per resource.
	pending []reading
	// gauges are the device's exported reading series (see
	// readingCollector).
	gauges []resourceGauge
}

// state returns the device's record, made on first use.
func (t *telemetry) stateLocked(key types.NamespacedName) *deviceState {
	st := t.devices[key]
	if st == nil {
		st = &deviceState{}
		t.devices[key] = st
	}
	return st
}

// ownerEntry is a remembered lookup of an EdgeX name's Device.
type ownerEntry struct {
	key   types.NamespacedName
	until time.Time
}

// reading is the latest a device reported for one resource.
type reading struct {
	resource, value, valueType, units, mediaType string
	binarySize                                   int64
	originNanos                                  int64
}

// find returns the index of the resource's reading, or -1. A device has a
// handful of resources: a scan beats a map, and costs no memory.
func find(readings []reading, resource string) int {
	for i := range readings {
		if readings[i].resource == resource {
			return i
		}
	}
	return -1
}

// keepLatest puts r into readings unless a newer reading of its resource
// is there already.
func keepLatest(readings []reading, r reading) []reading {
	i := find(readings, r.resource)
	switch {
	case i < 0:
		return append(readings, r)
	case readings[i].originNanos <= r.originNanos:
		readings[i] = r
	}
	return readings
}

func newTelemetry(s *shared, commands *commandDriver, lookup func(context.Context, string) (*v1alpha1.Device, bool)) *telemetry {
	return &telemetry{
		shared: s, commands: commands, lookup: lookup,
		writes:     newQueueSource[types.NamespacedName](),
		counters:   s.metrics.telemetryCounters(s.opts.Northbound != nil),
		pacer:      newStatusPacer(s.opts.StatusWriters, s.opts.StatusWriteRate, s.metrics.statusWriteLimit.WithLabelValues(s.metrics.pool)),
		owners:     map[string]ownerEntry{},
		devices:    map[types.NamespacedName]*deviceState{},
		northbound: make(chan northboundItem, s.opts.NorthboundQueue),
	}
}

// onEvent takes one device event from the bus. It runs on the bus's
// delivery path, so it only records and schedules.
func (t *telemetry) onEvent(_ string, ev dtos.Event) {
	t.counters.events.Inc()
	t.counters.readings.Add(float64(len(ev.Readings)))
	now := time.Now()
	key, ok := t.owner(ev.DeviceName, now)
	if !ok {
		t.counters.unknownDevices.Inc()
		return
	}
	t.enqueueNorthbound(key, ev)

	t.mu.Lock()
	st := t.stateLocked(key)
	t.exportGaugesLocked(st, ev)
	mergeLocked(st, ev)
	schedule := !st.scheduled
	st.scheduled = true
	delay := st.lastWrite.Add(t.opts.StatusInterval).Sub(now)
	t.mu.Unlock()
	if schedule {
		t.writes.AddAfter(key, delay)
	}
}

// ownerReuse is how long telemetry trusts a lookup of an EdgeX name's
// Device without asking the cache again.
const ownerReuse = time.Minute

// owner returns the Device an EdgeX name belongs to. Listing the cache for
// every event would cost more than everything else the event needs, and
// ownership changes only when Devices are created, deleted or renamed: a
// deleted Device is forgotten at once (forget, or the failed Get of its
// next write), every status write checks that the Device still claims
// the name, and the rare change of hands between two claimants is seen
// within ownerReuse.
func (t *telemetry) owner(edgexName string, now time.Time) (types.NamespacedName, bool) {
	t.mu.Lock()
	o, ok := t.owners[edgexName]
	t.mu.Unlock()
	if ok && now.Before(o.until) {
		return o.key, true
	}
	dev, found := t.lookup(context.Background(), edgexName)
	if !found {
		return types.NamespacedName{}, false
	}
	key := types.NamespacedName{Namespace: dev.Namespace, Name: dev.Name}
	t.mu.Lock()
	t.owners[edgexName] = ownerEntry{key: key, until: now.Add(ownerReuse)}
	t.stateLocked(key).edgexName = edgexName
	t.mu.Unlock()
	return key, true
}

// mergeLocked keeps, per resource, the reading taken last.
func mergeLocked(st *deviceState, ev dtos.Event) {
	if st.pending == nil {
		st.pending = make([]reading, 0, len(ev.Readings))
	}
	for _, r := range ev.Readings {
		st.pending = keepLatest(st.pending, toReading(r, ev.Origin))
	}
}

func toReading(r dtos.BaseReading, eventOrigin int64) reading {
	origin := r.Origin
	if origin == 0 {
		origin = eventOrigin
	}
	out := reading{resource: r.ResourceName, valueType: r.ValueType, units: r.Units, originNanos: origin}
	switch {
	case r.ValueType == "Binary":
		out.mediaType, out.binarySize = r.MediaType, int64(len(r.BinaryValue))
	case r.ObjectValue != nil:
		raw, _ := json.Marshal(r.ObjectValue)
		out.value = string(raw)
	default:
		out.value = r.Value
	}
	return out
}

// setup registers the status writer: a controller, keyed by device, that
// controller-runtime runs only on the leader, with StatusWriters at once.
func (t *telemetry) setup(mgr manager.Manager) error {
	err := builder.TypedControllerManagedBy[types.NamespacedName](mgr).
		Named("telemetry-" + t.opts.NodePool).
		WatchesRawSource(t.writes).
		WithOptions(controller.TypedOptions[types.NamespacedName]{
			MaxConcurrentReconciles: t.opts.StatusWriters,
			// Several pools' bridges may share a process in tests.
			SkipNameValidation: ptr.To(true),
		}).
		Complete(reconcile.TypedFunc[types.NamespacedName](func(ctx context.Context, key types.NamespacedName) (reconcile.Result, error) {
			// A failed write puts its readings back and is scheduled
			// again after an interval (requeueReadings), so that it
			// coalesces with newer readings rather than retrying alone.
			t.flush(ctx, key)
			return reconcile.Result{}, nil
		}))
	if err != nil {
		return fmt.Errorf("set up the telemetry status writer: %w", err)
	}
	return nil
}

// flush writes one device's pending readings into its status, if any of
// them changed a value.
func (t *telemetry) flush(ctx context.Context, key types.NamespacedName) {
	t.mu.Lock()
	st := t.stateLocked(key)
	latest := st.pending
	st.pending, st.scheduled = nil, false
	// Set before writing, so that readings arriving meanwhile wait a full
	// interval.
	st.lastWrite = time.Now()
	edgexName := st.edgexName
	t.mu.Unlock()
	if len(latest) == 0 {
		return
	}
	dev := &v1alpha1.Device{}
	if err := t.client.Get(ctx, key, dev); err != nil {
		t.forget(key)
		return
	}
	if v1alpha1.EdgeXName(dev) != edgexName {
		// The Device stopped claiming the EdgeX device whose readings these
		// are; the next event finds the new owner.
		t.disown(key, edgexName)
		return
	}
	patch, newest, first := t.statusPatch(key, dev, latest)
	var body []byte
	var err error
	switch {
	case len(patch) > 0:
		body, err = json.Marshal(map[string]any{"status": map[string]any{
			"deviceProperties": patch, "lastReported": newest, "lastConnected": newest,
		}})
	default:
		seen := newestReading(latest)
		if !t.connectedStale(dev, seen) {
			return
		}
		// Same values again: only say that the device is still there.
		body, err = json.Marshal(map[string]any{"status": map[string]any{"lastConnected": seen}})
	}
	if down, _, _ := t.cloud.Down(); down {
		// The write waits for the cloud, coalescing with later readings;
		// meanwhile the command driver reads them from here (unwritten).
		t.requeueReadings(key, latest)
		t.requeueIfDesired(key, dev, latest)
		return
	}
	switch {
	case err != nil, readsDesired(dev, latest):
		// A reading of a property with a desired value confirms or
		// contradicts a command, and status is what a restarted bridge
		// commands from: such writes are not paced, like the commands.
	case first:
		// A property's first value is what a person waits for on a new
		// device or pool; only later values share the operator's budget.
		err = t.pacer.wait(ctx)
	default:
		err = t.pacer.waitBudgeted(ctx)
	}
	if err == nil {
		start := time.Now()
		err = t.client.Status().Patch(ctx, dev, client.RawPatch(types.MergePatchType, body))
		if err == nil {
			// Only answered writes tell how busy the API server is: one
			// that failed because the cloud link went down says nothing
			// of it, and must not leave status crawling when it returns.
			t.pacer.observe(time.Now(), time.Since(start))
		}
	}
	if err != nil {
		t.log.V(1).Info("telemetry status write failed; retrying", "device", key.String(), "error", err.Error())
		t.requeueReadings(key, latest)
		t.requeueIfDesired(key, dev, latest)
		return
	}
	// A value that differs from a desired one reaches the command driver through
	// the watch event of this write (see reportedDesiredChanged).
	t.counters.statusWrites.Inc()
}

// connectedStale reports whether readings that change nothing, the newest
// taken at seen (ms), should still refresh the device's lastConnected,
// which is then older than ConnectedRefresh.
func (t *telemetry) connectedStale(dev *v1alpha1.Device, seen int64) bool {
	if t.opts.ConnectedRefresh < 0 {
		return false
	}
	return seen-dev.Status.LastConnected >= t.opts.ConnectedRefresh.Milliseconds()
}

// newestReading is the time (ms) of the newest of the readings.
func newestReading(latest []reading) int64 {
	var newest int64
	for _, r := range latest {
		newest = max(newest, r.originNanos/int64(time.Millisecond))
	}
	return newest
}

// statusPatch returns the status entries that changed, the newest reading
// time (ms), and whether one of them is a property's first value in
// status.
func (t *telemetry) statusPatch(key types.NamespacedName, dev *v1alpha1.Device, latest []reading) (patch map[string]any, newest int64, first bool) {
	patch = map[string]any{}
	for _, r := range latest {
		res := r.resource
		if r.originNanos < t.commands.confirmedAt(key, res).UnixNano() {
			continue // taken before the device accepted a newer command
		}
		cur, known := reportedOf(t.opts.DeviceFields, key, dev, res)
		first = first || !known
		ms := r.originNanos / int64(time.Millisecond)
		if r.mediaType != "" || r.binarySize > 0 {
			if known && cur.binary != nil && cur.binary.mediaType == r.mediaType && cur.binary.size == r.binarySize {
				continue
			}
			patch[res] = map[string]any{"name": res, "actualValue": "", "valueType": r.valueType,
				"mediaType": r.mediaType, "binarySize": r.binarySize, "lastReported": ms}
		} else {
			if known && cur.lastReported > 0 && convert.EqualValues(r.valueType, cur.value, r.value) {
				continue
			}
			entry := map[string]any{"name": res, "actualValue": r.value, "valueType": r.valueType, "lastReported": ms}
			if r.units != "" {
				entry["units"] = r.units
			}
			patch[res] = entry
		}
		newest = max(newest, ms)
	}
	return patch, newest, first
}

// requeueReadings puts back readings whose write failed, unless newer ones
// arrived meanwhile, and retries after an interval.
func (t *telemetry) requeueReadings(key types.NamespacedName, readings []reading) {
	t.mu.Lock()
	st := t.stateLocked(key)
	for _, r := range readings {
		// Readings that arrived meanwhile win, even taken at the same time.
		switch i := find(st.pending, r.resource); {
		case i < 0:
			st.pending = append(st.pending, r)
		case st.pending[i].originNanos < r.originNanos:
			st.pending[i] = r
		}
	}
	st.scheduled = true
	t.mu.Unlock()
	t.writes.AddAfter(key, t.opts.StatusInterval)
}

// disown forgets that the EdgeX name belongs to the Device.
func (t *telemetry) disown(key types.NamespacedName, edgexName string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.owners[edgexName].key == key {
		delete(t.owners, edgexName)
	}
	if st := t.devices[key]; st != nil && st.edgexName == edgexName {
		st.edgexName = ""
	}
}

// forget drops what telemetry keeps for a device that is gone.
func (t *telemetry) forget(key types.NamespacedName) {
	t.mu.Lock()
	if st := t.devices[key]; st != nil {
		if t.owners[st.edgexName].key == key {
			delete(t.owners, st.edgexName)
		}
		t.series -= len(st.gauges)
	}
	// The device's series go with its record.
	delete(t.devices, key)
	t.mu.Unlock()
	t.opts.DeviceFields.forget(key)
}

// requeueIfDesired asks the command driver to look at a device whose readings
// could not be written, when one of them is of a property with a desired
// value: without the write's watch event (reportedDesiredChanged), drift
// would go unseen until the cloud returns.
func (t *telemetry) requeueIfDesired(key types.NamespacedName, dev *v1alpha1.Device, readings []reading) {
	if readsDesired(dev, readings) {
		t.commands.requeue(key)
	}
}

// readsDesired reports whether one of the readings is of a property the
// managed device has a desired value for: one the command driver acts on.
func readsDesired(dev *v1alpha1.Device, readings []reading) bool {
	if !dev.Spec.Managed {
		return false
	}
	for _, r := range readings {
		if dev.Spec.DeviceProperties[r.resource].DesiredValue != "" {
			return true
		}
	}
	return false
}

// unwritten returns the latest reading of a device resource that is not in
// the device's status yet (its write is pending or waits for the cloud).
func (t *telemetry) unwritten(key types.NamespacedName, resource string) (value string, reportedMs int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.devices[key]
	if st == nil {
		return "", 0, false
	}
	i := find(st.pending, resource)
	if i < 0 {
		return "", 0, false
	}
	r := st.pending[i]
	if r.mediaType != "" || r.binarySize > 0 {
		return "", 0, false
	}
	return r.value, r.originNanos / int64(time.Millisecond), true
}

// flushSoon writes every pending reading now rather than after its
// interval: the cloud is back and the statuses are behind.
func (t *telemetry) flushSoon() {
	t.pacer.unpace(time.Now())
	t.mu.Lock()
	var keys []types.NamespacedName
	for key, st := range t.devices {
		if len(st.pending) > 0 {
			keys = append(keys, key)
		}
	}
	t.mu.Unlock()
	for _, key := range keys {
		t.writes.Add(key)
	}
}
