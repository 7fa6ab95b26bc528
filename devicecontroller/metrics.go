package devicecontroller

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/edgebridge/edgebridge/edgex"
)

// metrics are the bridge's Prometheus series, served on the manager's
// metrics endpoint. They are registered once per process and labelled by
// pool, so several bridges (as in tests) share them.
type metrics struct {
	pool string

	// Reconciles are counted and timed by controller-runtime
	// (controller_runtime_reconcile_*); these are what only the bridge knows.
	edgexFailures *prometheus.CounterVec
	edgeEvents    *prometheus.CounterVec
	resyncs       *prometheus.CounterVec
	resyncSeconds *prometheus.HistogramVec
	deletionsHeld *prometheus.GaugeVec
	imports       *prometheus.CounterVec
	edgeDeletions *prometheus.CounterVec
	// wipeChecksTriggered counts resyncs the wipe watch asked for.
	wipeChecksTriggered *prometheus.CounterVec

	eventsReceived   *prometheus.CounterVec
	readings         *prometheus.CounterVec
	decodeErrors     *prometheus.CounterVec
	messagesDropped  *prometheus.CounterVec
	unknownDevices   *prometheus.CounterVec
	statusWrites     *prometheus.CounterVec
	statusWriteLimit *prometheus.GaugeVec
	// managedFieldsLeft and managedFieldsPruned follow the emptying of
	// server-side apply's records (managedfields.go).
	managedFieldsLeft   *prometheus.GaugeVec
	managedFieldsPruned *prometheus.CounterVec
	readingValue        *readingCollector
	seriesDropped       *prometheus.CounterVec
	commandsSent        *prometheus.CounterVec
	commandsFailed      *prometheus.CounterVec
	commandSeconds      *prometheus.HistogramVec
	northboundSent      *prometheus.CounterVec
	northboundError     *prometheus.CounterVec
	northboundDropped   *prometheus.CounterVec
}

var (
	registerOnce sync.Once
	vecs         metrics
)

func newMetrics(pool string) *metrics {
	registerOnce.Do(func() {
		vecs = metrics{
			edgexFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_edgex_failures_total", Help: "Failed EdgeX metadata calls by kind and condition reason.",
			}, []string{"pool", "kind", "reason"}),
			edgeEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_system_events_total", Help: "core-metadata system events received, by kind and action.",
			}, []string{"pool", "kind", "action"}),
			resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_resyncs_total", Help: "Full EdgeX lists by kind and result (ok, error, held).",
			}, []string{"pool", "kind", "result"}),
			resyncSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "edgebridge_resync_duration_seconds", Help: "Time one full, paged EdgeX list took.",
				Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
			}, []string{"pool", "kind"}),
			deletionsHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "edgebridge_deletions_held", Help: "Imported objects whose deletion the mass-deletion guard holds.",
			}, []string{"pool", "kind"}),
			imports: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_imports_total", Help: "Objects imported from EdgeX.",
			}, []string{"pool", "kind"}),
			edgeDeletions: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_edge_deletions_total", Help: "Imported objects deleted because EdgeX deleted them.",
			}, []string{"pool", "kind"}),
			wipeChecksTriggered: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_wipe_checks_triggered_total", Help: "Resyncs triggered because a count of EdgeX differed from what the bridge knew (a wiped or replaced EdgeX).",
			}, []string{"pool"}),
			eventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_events_received_total", Help: "EdgeX device events received on the message bus.",
			}, []string{"pool"}),
			readings: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_readings_total", Help: "Readings received in device events.",
			}, []string{"pool"}),
			decodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_decode_errors_total", Help: "Messages that could not be decoded, by message type.",
			}, []string{"pool", "type"}),
			messagesDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_messages_dropped_total", Help: "Bus messages dropped because their handler fell behind, by message type.",
			}, []string{"pool", "type"}),
			unknownDevices: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_events_unknown_device_total", Help: "Device events for devices that have no Device object.",
			}, []string{"pool"}),
			statusWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_status_writes_total", Help: "Device status writes made from telemetry.",
			}, []string{"pool"}),
			statusWriteLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "edgebridge_status_write_limit",
				Help: "Telemetry status writes per second the bridge allows itself: lowered while the API server answers them slowly.",
			}, []string{"pool"}),
			managedFieldsLeft: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "edgebridge_managed_fields_left",
				Help: "Objects whose managedFields the bridge has yet to empty (objects nobody applies server-side).",
			}, []string{"pool"}),
			managedFieldsPruned: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_managed_fields_emptied_total", Help: "Objects whose managedFields the bridge emptied.",
			}, []string{"pool"}),
			readingValue: newReadingCollector(),
			seriesDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_reading_series_dropped_total", Help: "Readings not exported because the series cap was reached.",
			}, []string{"pool"}),
			commandsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_commands_sent_total", Help: "Commands sent to devices, by transport.",
			}, []string{"pool", "transport"}),
			commandsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_commands_failed_total", Help: "Commands that failed, by transport and reason.",
			}, []string{"pool", "transport", "reason"}),
			commandSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "edgebridge_command_duration_seconds", Help: "Time from sending a command to its answer.",
				Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
			}, []string{"pool", "transport"}),
			northboundSent: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_northbound_published_total", Help: "Normalised events re-published northbound.",
			}, []string{"pool"}),
			northboundError: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_northbound_errors_total", Help: "Northbound publishes that failed.",
			}, []string{"pool"}),
			northboundDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "edgebridge_northbound_dropped_total",
				Help: "Events not re-published northbound because the northbound queue was full (a slow or stalled northbound broker).",
			}, []string{"pool"}),
		}
		ctrlmetrics.Registry.MustRegister(
			vecs.edgexFailures, vecs.edgeEvents,
			vecs.resyncs, vecs.resyncSeconds, vecs.deletionsHeld, vecs.imports, vecs.edgeDeletions, vecs.wipeChecksTriggered,
			vecs.eventsReceived, vecs.readings, vecs.decodeErrors, vecs.messagesDropped, vecs.unknownDevices, vecs.statusWrites, vecs.statusWriteLimit,
			vecs.managedFieldsLeft, vecs.managedFieldsPruned,
			vecs.readingValue, vecs.seriesDropped, vecs.commandsSent, vecs.commandsFailed, vecs.commandSeconds,
			vecs.northboundSent, vecs.northboundError, vecs.northboundDropped,
		)
	})
	m := vecs
	m.pool = pool
	// Series that exist from the start read as zero rather than missing,
	// so that rates and alerts work before the first event.
	for _, typ := range []string{"event", "system-event"} {
		m.decodeErrors.WithLabelValues(pool, typ)
		m.messagesDropped.WithLabelValues(pool, typ)
	}
	m.managedFieldsLeft.WithLabelValues(pool)
	for _, c := range []*prometheus.CounterVec{m.eventsReceived, m.readings, m.unknownDevices, m.statusWrites, m.seriesDropped, m.managedFieldsPruned} {
		c.WithLabelValues(pool)
	}
	return &m
}

// telemetryCounters are one pool's telemetry counters, resolved once:
// looking a series up by its labels costs more than counting, and these
// count every event. The northbound ones exist only when northbound
// publishing is on, as before the first publish.
type telemetryCounters struct {
	events, readings, unknownDevices, statusWrites, seriesDropped prometheus.Counter
	northboundSent, northboundErrors, northboundDropped           prometheus.Counter
}

func (m *metrics) telemetryCounters(northbound bool) telemetryCounters {
	c := telemetryCounters{
		events:         m.eventsReceived.WithLabelValues(m.pool),
		readings:       m.readings.WithLabelValues(m.pool),
		unknownDevices: m.unknownDevices.WithLabelValues(m.pool),
		statusWrites:   m.statusWrites.WithLabelValues(m.pool),
		seriesDropped:  m.seriesDropped.WithLabelValues(m.pool),
	}
	if northbound {
		c.northboundSent = m.northboundSent.WithLabelValues(m.pool)
		c.northboundErrors = m.northboundError.WithLabelValues(m.pool)
		c.northboundDropped = m.northboundDropped.WithLabelValues(m.pool)
	}
	return c
}

var (
	edgexRequestsOnce sync.Once
	edgexRequests     *prometheus.CounterVec
	edgexSeconds      *prometheus.HistogramVec
)

// ObserveEdgeXRequest returns the hook the EdgeX REST clients call after
// every attempt: it counts requests by service, method, route pattern and
// status, which is how the benchmark proves steady state costs none.
func ObserveEdgeXRequest(pool string) func(edgex.RequestInfo) {
	edgexRequestsOnce.Do(func() {
		edgexRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgebridge_edgex_requests_total", Help: "EdgeX REST requests by service, method, route and status code.",
		}, []string{"pool", "service", "method", "route", "code"})
		edgexSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "edgebridge_edgex_request_duration_seconds", Help: "EdgeX REST request latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"pool", "service", "method"})
		ctrlmetrics.Registry.MustRegister(edgexRequests, edgexSeconds)
	})
	return func(info edgex.RequestInfo) {
		code := strconv.Itoa(info.Status)
		if info.Status == 0 {
			code = "error"
		}
		edgexRequests.WithLabelValues(pool, info.Service, info.Method, info.Route, code).Inc()
		edgexSeconds.WithLabelValues(pool, info.Service, info.Method).Observe(info.Duration.Seconds())
	}
}
