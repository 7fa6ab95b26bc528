package devicecontroller

import (
	"strconv"
	"strings"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// exportGaugesLocked sets the numeric readings' gauges, within the series
// cap.
func (t *telemetry) exportGaugesLocked(key types.NamespacedName, st *deviceState, ev dtos.Event) {
	for _, r := range ev.Readings {
		v, ok := numeric(r)
		if !ok {
			continue
		}
		g := t.gauge(key, st, r.ResourceName)
		if g == nil {
			t.counters.seriesDropped.Inc()
			continue
		}
		g.Set(v)
	}
}

// gauge returns a device resource's series, made on first use while the
// cap allows; nil when it does not.
func (t *telemetry) gauge(key types.NamespacedName, st *deviceState, resource string) prometheus.Gauge {
	for _, g := range st.gauges {
		if g.resource == resource {
			return g.gauge
		}
	}
	if t.series >= t.opts.MaxReadingSeries {
		return nil
	}
	g := t.metrics.readingValue.WithLabelValues(t.metrics.pool, key.Namespace, key.Name, resource)
	st.gauges = append(st.gauges, resourceGauge{resource: resource, gauge: g})
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
