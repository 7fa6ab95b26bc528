package devicecontroller

import (
	"strconv"
	"strings"
	"sync"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// resourceGauge is the latest numeric reading of one device resource, as
// exported on edgebridge_reading_value.
type resourceGauge struct {
	resource string
	value    float64
}

// exportGaugesLocked records the numeric readings' values, within the
// series cap.
func (t *telemetry) exportGaugesLocked(st *deviceState, ev dtos.Event) {
	for _, r := range ev.Readings {
		v, ok := numeric(r)
		if !ok {
			continue
		}
		g := t.gaugeLocked(st, r.ResourceName)
		if g == nil {
			t.counters.seriesDropped.Inc()
			continue
		}
		g.value = v
	}
}

// gaugeLocked returns a device resource's series, made on first use while
// the cap allows; nil when it does not.
func (t *telemetry) gaugeLocked(st *deviceState, resource string) *resourceGauge {
	for i := range st.gauges {
		if st.gauges[i].resource == resource {
			return &st.gauges[i]
		}
	}
	if t.series >= t.opts.MaxReadingSeries {
		return nil
	}
	st.gauges = append(st.gauges, resourceGauge{resource: resource})
	t.series++
	return &st.gauges[len(st.gauges)-1]
}

// collectGauges sends every exported reading series of the pool. The
// values are copied under the lock and sent after it, so that a scrape
// holds up the bus's delivery only for the copy.
func (t *telemetry) collectGauges(desc *prometheus.Desc, ch chan<- prometheus.Metric) {
	type series struct {
		device types.NamespacedName
		resourceGauge
	}
	t.mu.Lock()
	all := make([]series, 0, t.series)
	for key, st := range t.devices {
		for _, g := range st.gauges {
			all = append(all, series{device: key, resourceGauge: g})
		}
	}
	t.mu.Unlock()
	for _, s := range all {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, s.value,
			t.metrics.pool, s.device.Namespace, s.device.Name, s.resource)
	}
}

// readingCollector serves edgebridge_reading_value from the telemetry
// state of every bridge that listens in this process. A series per device
// resource, held by the Prometheus client, cost more than a kilobyte each
// (label pairs, the vector's map entry, the gauge): 11 MB at 10,000
// devices. The values live in each device's telemetry record instead, and
// a scrape reads them there; a device that is forgotten takes its series
// with it.
type readingCollector struct {
	desc    *prometheus.Desc
	mu      sync.Mutex
	sources map[*telemetry]struct{}
}

func newReadingCollector() *readingCollector {
	return &readingCollector{
		desc: prometheus.NewDesc("edgebridge_reading_value",
			"Latest numeric reading per device resource (series are capped).",
			[]string{"pool", "namespace", "device", "resource"}, nil),
		sources: map[*telemetry]struct{}{},
	}
}

func (c *readingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *readingCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for t := range c.sources {
		t.collectGauges(c.desc, ch)
	}
}

// serve exports t's readings until the returned func is called.
func (c *readingCollector) serve(t *telemetry) (stop func()) {
	c.mu.Lock()
	c.sources[t] = struct{}{}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.sources, t)
		c.mu.Unlock()
	}
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
