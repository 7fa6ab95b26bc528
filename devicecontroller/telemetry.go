package devicecontroller

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
// does per event is kept to map lookups under one mutex: the owning Device
// is remembered rather than listed from the cache each time, metric
// handles are resolved once, and a device already waiting for its status
// write is not queued again.
type telemetry struct {
	*shared
	commands *commander
	lookup   func(ctx context.Context, edgexName string) (*v1alpha1.Device, bool)
	queue    workqueue.TypedDelayingInterface[types.NamespacedName]
	counters telemetryCounters
	// northbound holds events waiting to be re-published, so that the bus
	// never waits for the northbound broker (see Options.NorthboundQueue).
	northbound chan northboundItem

	mu sync.Mutex
	// owners remembers which Device an EdgeX name belongs to (see owner);
	// names is the reverse, the name each Device was found for.
	owners    map[string]ownerEntry
	names     map[types.NamespacedName]string
	pending   map[types.NamespacedName]map[string]reading
	lastWrite map[types.NamespacedName]time.Time
	// scheduled are the devices whose status write is queued and not yet
	// started.
	scheduled map[types.NamespacedName]bool
	// gauges are the exported reading series by device and resource;
	// series counts them against MaxReadingSeries.
	gauges map[types.NamespacedName]map[string]prometheus.Gauge
	series int
}

// ownerEntry is a remembered lookup of an EdgeX name's Device.
type ownerEntry struct {
	key   types.NamespacedName
	until time.Time
}

// reading is the latest a device reported for one resource.
type reading struct {
	value, valueType, units, mediaType string
	binarySize                         int64
	originNanos                        int64
}

func newTelemetry(s *shared, commands *commander, lookup func(context.Context, string) (*v1alpha1.Device, bool)) *telemetry {
	return &telemetry{
		shared: s, commands: commands, lookup: lookup,
		queue:      workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[types.NamespacedName]{Name: "telemetry"}),
		counters:   s.metrics.telemetryCounters(s.opts.Northbound != nil),
		owners:     map[string]ownerEntry{},
		names:      map[types.NamespacedName]string{},
		pending:    map[types.NamespacedName]map[string]reading{},
		lastWrite:  map[types.NamespacedName]time.Time{},
		scheduled:  map[types.NamespacedName]bool{},
		gauges:     map[types.NamespacedName]map[string]prometheus.Gauge{},
		northbound: make(chan northboundItem, s.opts.NorthboundQueue),
	}
}

// northboundItem is one event waiting for the northbound broker.
type northboundItem struct {
	key types.NamespacedName
	ev  dtos.Event
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
	t.exportGaugesLocked(key, ev)
	t.mergeLocked(key, ev)
	schedule := !t.scheduled[key]
	t.scheduled[key] = true
	delay := t.lastWrite[key].Add(t.opts.StatusInterval).Sub(now)
	t.mu.Unlock()
	if schedule {
		t.queue.AddAfter(key, max(delay, 0))
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
	t.names[key] = edgexName
	t.mu.Unlock()
	return key, true
}

// mergeLocked keeps, per resource, the reading taken last.
func (t *telemetry) mergeLocked(key types.NamespacedName, ev dtos.Event) {
	latest := t.pending[key]
	if latest == nil {
		latest = make(map[string]reading, len(ev.Readings))
		t.pending[key] = latest
	}
	for _, r := range ev.Readings {
		next := toReading(r, ev.Origin)
		if cur, ok := latest[r.ResourceName]; ok && cur.originNanos > next.originNanos {
			continue
		}
		latest[r.ResourceName] = next
	}
}

func toReading(r dtos.BaseReading, eventOrigin int64) reading {
	origin := r.Origin
	if origin == 0 {
		origin = eventOrigin
	}
	out := reading{valueType: r.ValueType, units: r.Units, originNanos: origin}
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

// Start runs the status writers and the northbound publisher until ctx
// ends (leader only).
func (t *telemetry) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	if t.opts.Northbound != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.publishNorthbound(ctx)
		}()
	}
	for range t.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				key, quit := t.queue.Get()
				if quit {
					return
				}
				t.flush(ctx, key)
				t.queue.Done(key)
			}
		}()
	}
	<-ctx.Done()
	t.queue.ShutDown()
	wg.Wait()
	return nil
}

// flush writes one device's pending readings into its status, if any of
// them changed a value.
func (t *telemetry) flush(ctx context.Context, key types.NamespacedName) {
	t.mu.Lock()
	latest := t.pending[key]
	delete(t.pending, key)
	delete(t.scheduled, key)
	// Set before writing, so that readings arriving meanwhile wait a full
	// interval.
	t.lastWrite[key] = time.Now()
	edgexName := t.names[key]
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
	patch, newest := t.statusPatch(key, dev, latest)
	var body []byte
	var err error
	switch {
	case len(patch) > 0:
		body, err = json.Marshal(map[string]any{"status": map[string]any{
			"deviceProperties": patch, "lastReported": newest, "lastConnected": newest,
		}})
	case t.connectedStale(dev, latest):
		// Same values again: only say that the device is still there.
		body, err = json.Marshal(map[string]any{"status": map[string]any{"lastConnected": newestReading(latest)}})
	default:
		return
	}
	if down, _, _ := t.cloud.Down(); down {
		// The write waits for the cloud, coalescing with later readings;
		// meanwhile the commander reads them from here (unwritten).
		t.requeueReadings(key, latest)
		t.requeueIfDesired(key, dev, latest)
		return
	}
	if err == nil {
		err = t.client.Status().Patch(ctx, dev, client.RawPatch(types.MergePatchType, body))
	}
	if err != nil {
		t.log.V(1).Info("telemetry status write failed; retrying", "device", key.String(), "error", err.Error())
		t.requeueReadings(key, latest)
		t.requeueIfDesired(key, dev, latest)
		return
	}
	// A value that differs from a desired one reaches the commander through
	// the watch event of this write (see reportedDesiredChanged).
	t.counters.statusWrites.Inc()
}

// connectedStale reports whether readings that change nothing should
// still refresh the device's lastConnected, which is then older than
// ConnectedRefresh.
func (t *telemetry) connectedStale(dev *v1alpha1.Device, latest map[string]reading) bool {
	if t.opts.ConnectedRefresh < 0 {
		return false
	}
	return newestReading(latest)-dev.Status.LastConnected >= t.opts.ConnectedRefresh.Milliseconds()
}

// newestReading is the time (ms) of the newest of the readings.
func newestReading(latest map[string]reading) int64 {
	var newest int64
	for _, r := range latest {
		newest = max(newest, r.originNanos/int64(time.Millisecond))
	}
	return newest
}

// statusPatch returns the status entries that changed and the newest
// reading time (ms).
func (t *telemetry) statusPatch(key types.NamespacedName, dev *v1alpha1.Device, latest map[string]reading) (map[string]any, int64) {
	patch := map[string]any{}
	var newest int64
	for res, r := range latest {
		if r.originNanos < t.commands.confirmedAt(key, res).UnixNano() {
			continue // taken before the device accepted a newer command
		}
		cur, known := dev.Status.DeviceProperties[res]
		ms := r.originNanos / int64(time.Millisecond)
		if r.mediaType != "" || r.binarySize > 0 {
			if known && cur.MediaType == r.mediaType && cur.BinarySize == r.binarySize {
				continue
			}
			patch[res] = map[string]any{"name": res, "actualValue": "", "valueType": r.valueType,
				"mediaType": r.mediaType, "binarySize": r.binarySize, "lastReported": ms}
		} else {
			if known && cur.LastReported > 0 && convert.EqualValues(r.valueType, cur.ActualValue, r.value) {
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
	return patch, newest
}

// requeueReadings puts back readings whose write failed, unless newer ones
// arrived meanwhile, and retries after an interval.
func (t *telemetry) requeueReadings(key types.NamespacedName, readings map[string]reading) {
	t.mu.Lock()
	latest := t.pending[key]
	if latest == nil {
		latest = map[string]reading{}
		t.pending[key] = latest
	}
	for res, r := range readings {
		if cur, ok := latest[res]; !ok || cur.originNanos < r.originNanos {
			latest[res] = r
		}
	}
	t.scheduled[key] = true
	t.mu.Unlock()
	t.queue.AddAfter(key, t.opts.StatusInterval)
}

// disown forgets that the EdgeX name belongs to the Device.
func (t *telemetry) disown(key types.NamespacedName, edgexName string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.owners[edgexName].key == key {
		delete(t.owners, edgexName)
	}
	if t.names[key] == edgexName {
		delete(t.names, key)
	}
}

// forget drops what telemetry keeps for a device that is gone.
func (t *telemetry) forget(key types.NamespacedName) {
	t.mu.Lock()
	delete(t.pending, key)
	delete(t.lastWrite, key)
	delete(t.scheduled, key)
	if name, ok := t.names[key]; ok && t.owners[name].key == key {
		delete(t.owners, name)
	}
	delete(t.names, key)
	// Under mu, so that no event makes one of the device's series again
	// between forgetting and deleting it.
	t.series -= len(t.gauges[key])
	delete(t.gauges, key)
	t.metrics.readingValue.DeletePartialMatch(map[string]string{"pool": t.metrics.pool, "namespace": key.Namespace, "device": key.Name})
	t.mu.Unlock()
}

// exportGaugesLocked sets the numeric readings' gauges, within the series
// cap.
func (t *telemetry) exportGaugesLocked(key types.NamespacedName, ev dtos.Event) {
	for _, r := range ev.Readings {
		v, ok := numeric(r)
		if !ok {
			continue
		}
		g := t.gauge(key, r.ResourceName)
		if g == nil {
			t.counters.seriesDropped.Inc()
			continue
		}
		g.Set(v)
	}
}

// gauge returns a device resource's series, made on first use while the
// cap allows; nil when it does not.
func (t *telemetry) gauge(key types.NamespacedName, resource string) prometheus.Gauge {
	byResource := t.gauges[key]
	if g, ok := byResource[resource]; ok {
		return g
	}
	if t.series >= t.opts.MaxReadingSeries {
		return nil
	}
	if byResource == nil {
		byResource = map[string]prometheus.Gauge{}
		t.gauges[key] = byResource
	}
	g := t.metrics.readingValue.WithLabelValues(t.metrics.pool, key.Namespace, key.Name, resource)
	byResource[resource] = g
	t.series++
	return g
}

// numeric returns a reading's value as a number, for Bool, integer and
// float value types.
func numeric(r dtos.BaseReading) (float64, bool) {
	switch {
	case r.ValueType == "Bool":
		b, err := strconv.ParseBool(r.Value)
		if err != nil {
			return 0, false
		}
		if b {
			return 1, true
		}
		return 0, true
	case strings.HasPrefix(r.ValueType, "Int"), strings.HasPrefix(r.ValueType, "Uint"), strings.HasPrefix(r.ValueType, "Float"):
		if strings.HasSuffix(r.ValueType, "Array") {
			return 0, false
		}
		v, err := strconv.ParseFloat(r.Value, 64)
		return v, err == nil
	}
	return 0, false
}

// NorthboundEvent is what the bridge re-publishes for each device event,
// addressed by Kubernetes identity rather than EdgeX names.
type NorthboundEvent struct {
	Pool      string              `json:"pool"`
	Namespace string              `json:"namespace"`
	Device    string              `json:"device"`
	EdgeXName string              `json:"edgexName"`
	Profile   string              `json:"profile"`
	Source    string              `json:"source"`
	Origin    time.Time           `json:"origin"`
	Readings  []NorthboundReading `json:"readings"`
}

// NorthboundReading is one reading with its value typed as JSON: a boolean,
// a number, a string, an array or an object. Binary values are not
// carried; their media type and size are.
type NorthboundReading struct {
	Resource  string          `json:"resource"`
	ValueType string          `json:"valueType"`
	Value     json.RawMessage `json:"value,omitempty"`
	Units     string          `json:"units,omitempty"`
	MediaType string          `json:"mediaType,omitempty"`
	Size      int             `json:"size,omitempty"`
}

// NorthboundTopic is where a device's events for one source are published:
// <prefix>/<pool>/<namespace>/<device>/<source>. Subscribe to
// <prefix>/<pool>/# for a whole pool, or <prefix>/+/<namespace>/<device>/#
// for one device.
func NorthboundTopic(prefix, pool, namespace, device, source string) string {
	return strings.Join([]string{prefix, pool, namespace, device, source}, "/")
}

// enqueueNorthbound hands an event to the northbound publisher without
// ever waiting: it runs on the bus's delivery path. A full queue means the
// northbound broker is behind; the event is counted as dropped.
func (t *telemetry) enqueueNorthbound(key types.NamespacedName, ev dtos.Event) {
	if t.opts.Northbound == nil {
		return
	}
	select {
	case t.northbound <- northboundItem{key: key, ev: ev}:
	default:
		t.counters.northboundDropped.Inc()
	}
}

// publishNorthbound re-publishes queued events, one at a time and each
// within NorthboundTimeout, until ctx ends.
func (t *telemetry) publishNorthbound(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case item := <-t.northbound:
			t.publishOne(ctx, item.key, item.ev)
		}
	}
}

func (t *telemetry) publishOne(ctx context.Context, key types.NamespacedName, ev dtos.Event) {
	out := NorthboundEvent{
		Pool: t.opts.NodePool, Namespace: key.Namespace, Device: key.Name, EdgeXName: ev.DeviceName,
		Profile: ev.ProfileName, Source: ev.SourceName, Origin: time.Unix(0, ev.Origin).UTC(),
	}
	for _, r := range ev.Readings {
		nr := NorthboundReading{Resource: r.ResourceName, ValueType: r.ValueType, Units: r.Units}
		if r.ValueType == "Binary" {
			nr.MediaType, nr.Size = r.MediaType, len(r.BinaryValue)
		} else {
			nr.Value = typedJSON(r)
		}
		out.Readings = append(out.Readings, nr)
	}
	body, err := json.Marshal(out)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, t.opts.NorthboundTimeout)
		err = t.opts.Northbound.Publish(ctx, NorthboundTopic(t.opts.NorthboundPrefix, t.opts.NodePool, key.Namespace, key.Name, ev.SourceName), body)
		cancel()
	}
	if err != nil {
		t.counters.northboundErrors.Inc()
		return
	}
	t.counters.northboundSent.Inc()
}

// typedJSON renders a reading's text value as the JSON value it stands for.
func typedJSON(r dtos.BaseReading) json.RawMessage {
	if r.ObjectValue != nil {
		raw, err := json.Marshal(r.ObjectValue)
		if err == nil {
			return raw
		}
	}
	switch {
	case r.ValueType == "Bool":
		if b, err := strconv.ParseBool(r.Value); err == nil {
			return json.RawMessage(strconv.FormatBool(b))
		}
	case strings.HasSuffix(r.ValueType, "Array"), r.ValueType == "Object":
		if json.Valid([]byte(r.Value)) {
			return json.RawMessage(r.Value)
		}
	case strings.HasPrefix(r.ValueType, "Int"), strings.HasPrefix(r.ValueType, "Uint"):
		if _, err := strconv.ParseInt(r.Value, 10, 64); err == nil {
			return json.RawMessage(r.Value)
		}
		if _, err := strconv.ParseUint(r.Value, 10, 64); err == nil {
			return json.RawMessage(r.Value)
		}
	case strings.HasPrefix(r.ValueType, "Float"):
		if f, err := strconv.ParseFloat(r.Value, 64); err == nil {
			if raw, err := json.Marshal(f); err == nil {
				return raw
			}
		}
	}
	raw, _ := json.Marshal(r.Value)
	return raw
}

// requeueIfDesired asks the commander to look at a device whose readings
// could not be written, when one of them is of a property with a desired
// value: without the write's watch event (reportedDesiredChanged), drift
// would go unseen until the cloud returns.
func (t *telemetry) requeueIfDesired(key types.NamespacedName, dev *v1alpha1.Device, readings map[string]reading) {
	if !dev.Spec.Managed {
		return
	}
	for res := range readings {
		if dev.Spec.DeviceProperties[res].DesiredValue != "" {
			t.commands.requeue(key)
			return
		}
	}
}

// unwritten returns the latest reading of a device resource that is not in
// the device's status yet (its write is pending or waits for the cloud).
func (t *telemetry) unwritten(key types.NamespacedName, resource string) (value string, reportedMs int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.pending[key][resource]
	if !ok || r.mediaType != "" || r.binarySize > 0 {
		return "", 0, false
	}
	return r.value, r.originNanos / int64(time.Millisecond), true
}

// flushSoon writes every pending reading now rather than after its
// interval: the cloud is back and the statuses are behind.
func (t *telemetry) flushSoon() {
	t.mu.Lock()
	keys := make([]types.NamespacedName, 0, len(t.pending))
	for key := range t.pending {
		keys = append(keys, key)
	}
	t.mu.Unlock()
	for _, key := range keys {
		t.queue.Add(key)
	}
}
