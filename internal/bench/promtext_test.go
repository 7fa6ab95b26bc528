package bench

import (
	"math"
	"strings"
	"testing"
)

// An excerpt of what the bridge's metrics endpoint and the kube-apiserver
// serve, the two inputs the benchmark reads counters from.
const exposition = `# HELP edgebridge_readings_total Readings received in device events.
# TYPE edgebridge_readings_total counter
edgebridge_readings_total{pool="bench"} 4500
edgebridge_decode_errors_total{pool="bench",type="event"} 2
edgebridge_decode_errors_total{pool="bench",type="system-event"} 0
edgebridge_resyncs_total{kind="Device",pool="bench",result="ok"} 1
edgebridge_resyncs_total{kind="DeviceProfile",pool="bench",result="ok"} 1
edgebridge_command_duration_seconds_bucket{pool="bench",transport="rest",le="+Inf"} 80
workqueue_depth{controller="device-bench",name="device-bench"} 0
apiserver_request_total{code="201",component="apiserver",dry_run="",group="iot.openyurt.io",resource="devices",scope="resource",subresource="",verb="POST",version="v1alpha1"} 1000
apiserver_request_total{code="200",component="apiserver",dry_run="",group="iot.openyurt.io",resource="devices",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 1003
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 40
apiserver_request_total{code="200",component="apiserver",dry_run="",group="iot.openyurt.io",resource="devices",scope="namespace",subresource="",verb="LIST",version="v1alpha1"} 7
go_gc_duration_seconds{quantile="0.5"} 1.2e-05 1700000000000
process_start_time_seconds 1.7e+09
`

func mustParseScrape(t *testing.T, text string) scrape {
	t.Helper()
	s, err := parseScrape(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReadingTheCountersTheBenchmarkUses(t *testing.T) {
	s := mustParseScrape(t, exposition)
	cases := []struct {
		name   string
		metric string
		match  map[string]string
		want   float64
	}{
		{"readings received", "edgebridge_readings_total", nil, 4500},
		{"dropped-event reports only", "edgebridge_decode_errors_total", map[string]string{"type": "event"}, 2},
		{"a label that must exist, any value", "edgebridge_resyncs_total", map[string]string{"kind": ""}, 2},
		{"an unknown metric is zero", "edgebridge_nothing_total", nil, 0},
		{"a +Inf bucket bound is a label, not the value", "edgebridge_command_duration_seconds_bucket", map[string]string{"le": "+Inf"}, 80},
		{"a sample with a timestamp", "go_gc_duration_seconds", nil, 1.2e-05},
		{"a sample without labels", "process_start_time_seconds", nil, 1.7e9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.sum(tc.metric, tc.match); got != tc.want {
				t.Errorf("sum = %v, want %v", got, tc.want)
			}
		})
	}
	byKind := s.by("edgebridge_resyncs_total", "kind", map[string]string{"result": "ok"})
	if len(byKind) != 2 || byKind["Device"] != 1 || byKind["DeviceProfile"] != 1 {
		t.Errorf("resyncs by kind = %v", byKind)
	}
}

// The API server's writes are counted by resource and subresource, reads
// and the leases of its own heartbeat are not.
func TestAPIWritesLeaveOutReadsAndLeases(t *testing.T) {
	s := mustParseScrape(t, exposition)
	got := apiWrites(s)
	want := map[string]float64{"devices": 1000, "devices/status": 1003}
	if len(got) != len(want) || got["devices"] != want["devices"] || got["devices/status"] != want["devices/status"] {
		t.Errorf("apiWrites = %v, want %v", got, want)
	}
}

func TestSampleLines(t *testing.T) {
	cases := []struct {
		line    string
		name    string
		labels  map[string]string
		value   float64
		wantErr bool
	}{
		{line: `up 1`, name: "up", labels: map[string]string{}, value: 1},
		{line: `m{a="x"} 2.5`, name: "m", labels: map[string]string{"a": "x"}, value: 2.5},
		{line: `m{a="q\"uote",b="back\\slash",c="new\nline"} 3`, name: "m",
			labels: map[string]string{"a": `q"uote`, "b": `back\slash`, "c": "new\nline"}, value: 3},
		{line: `m{a="with } brace, and comma"} 4`, name: "m", labels: map[string]string{"a": "with } brace, and comma"}, value: 4},
		{line: `m{a="x",} 5`, name: "m", labels: map[string]string{"a": "x"}, value: 5},
		{line: `m +Inf`, name: "m", labels: map[string]string{}, value: math.Inf(1)},
		{line: `m{a="x"}`, wantErr: true},
		{line: `m{a="x" 1`, wantErr: true},
		{line: `m{a=x} 1`, wantErr: true},
		{line: `m one`, wantErr: true},
		{line: `m 1 2 3`, wantErr: true},
		{line: `{a="x"} 1`, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			s, err := parseSampleLine(tc.line)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parsed %+v, want an error", s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.name != tc.name || s.value != tc.value || len(s.labels) != len(tc.labels) {
				t.Fatalf("got %+v", s)
			}
			for k, v := range tc.labels {
				if s.labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, s.labels[k], v)
				}
			}
		})
	}
}

func FuzzParseScrape(f *testing.F) {
	f.Add(exposition)
	for _, line := range strings.Split(exposition, "\n") {
		f.Add(line)
	}
	f.Add(`m{a="unterminated`)
	f.Add(`m{a="x\`)
	f.Fuzz(func(t *testing.T, text string) {
		s, err := parseScrape(strings.NewReader(text))
		if err != nil {
			return
		}
		for _, smp := range s {
			if smp.name == "" || strings.ContainsAny(smp.name, "{ \t") {
				t.Fatalf("sample with a bad name %q from %q", smp.name, text)
			}
		}
	})
}

// The time split divides each histogram's new time by its new
// observations, per queue or per API request kind; reads, leases and
// histograms with nothing new are left out.
func TestTimeSplitMeans(t *testing.T) {
	before := mustParseScrape(t, `
workqueue_queue_duration_seconds_sum{controller="device-bench",name="device-bench"} 1
workqueue_queue_duration_seconds_count{controller="device-bench",name="device-bench"} 10
workqueue_queue_duration_seconds_sum{name="edge-Device"} 0.5
workqueue_queue_duration_seconds_count{name="edge-Device"} 5
apiserver_request_duration_seconds_sum{group="iot.openyurt.io",resource="devices",subresource="status",verb="PATCH"} 2
apiserver_request_duration_seconds_count{group="iot.openyurt.io",resource="devices",subresource="status",verb="PATCH"} 100
apiserver_request_duration_seconds_sum{group="iot.openyurt.io",resource="devices",subresource="",verb="LIST"} 9
apiserver_request_duration_seconds_count{group="iot.openyurt.io",resource="devices",subresource="",verb="LIST"} 3
`)
	after := mustParseScrape(t, `
workqueue_queue_duration_seconds_sum{controller="device-bench",name="device-bench"} 3
workqueue_queue_duration_seconds_count{controller="device-bench",name="device-bench"} 20
workqueue_queue_duration_seconds_sum{name="edge-Device"} 0.5
workqueue_queue_duration_seconds_count{name="edge-Device"} 5
apiserver_request_duration_seconds_sum{group="iot.openyurt.io",resource="devices",subresource="status",verb="PATCH"} 2.5
apiserver_request_duration_seconds_count{group="iot.openyurt.io",resource="devices",subresource="status",verb="PATCH"} 150
apiserver_request_duration_seconds_sum{group="coordination.k8s.io",resource="leases",subresource="",verb="PUT"} 1
apiserver_request_duration_seconds_count{group="coordination.k8s.io",resource="leases",subresource="",verb="PUT"} 4
apiserver_request_duration_seconds_sum{group="iot.openyurt.io",resource="devices",subresource="",verb="LIST"} 19
apiserver_request_duration_seconds_count{group="iot.openyurt.io",resource="devices",subresource="",verb="LIST"} 4
`)
	queues := histogramMeans(before, after, "workqueue_queue_duration_seconds", queueName)
	if len(queues) != 1 || math.Abs(queues["device-bench"]-200) > 1e-9 {
		t.Errorf("queue waits %v, want only device-bench at 200 ms", queues)
	}
	api := histogramMeans(before, after, "apiserver_request_duration_seconds", apiRequestName)
	if len(api) != 1 || math.Abs(api["PATCH devices/status"]-10) > 1e-9 {
		t.Errorf("API server means %v, want only PATCH devices/status at 10 ms", api)
	}
	if n := histogramCounts(before, after, "apiserver_request_duration_seconds", apiRequestName); n["PATCH devices/status"] != 50 || len(n) != 1 {
		t.Errorf("API server counts %v, want PATCH devices/status 50", n)
	}
}

// The API server's garbage collection over a window comes from two scrapes
// of its Go runtime metrics.
func TestAPIServerGCBetweenTwoScrapes(t *testing.T) {
	before := mustParseScrape(t, `go_gc_cycles_total_gc_cycles_total 10
go_cpu_classes_gc_mark_assist_cpu_seconds_total 1
go_cpu_classes_gc_total_cpu_seconds_total 4
go_cpu_classes_total_cpu_seconds_total 100
go_cpu_classes_idle_cpu_seconds_total 50
go_gc_heap_allocs_bytes_total 1048576
go_gc_heap_live_bytes 5.24288e+07
watch_cache_capacity{group="iot.openyurt.io",resource="devices"} 100
`)
	after := mustParseScrape(t, `go_gc_cycles_total_gc_cycles_total 13
go_cpu_classes_gc_mark_assist_cpu_seconds_total 2.5
go_cpu_classes_gc_total_cpu_seconds_total 9
go_cpu_classes_total_cpu_seconds_total 120
go_cpu_classes_idle_cpu_seconds_total 60
go_gc_heap_allocs_bytes_total 2.2020096e+07
go_gc_heap_live_bytes 1.048576e+08
watch_cache_capacity{group="",resource="configmaps"} 100
watch_cache_capacity{group="iot.openyurt.io",resource="devices"} 16384
`)
	got := gcBetween(before, after, 10)
	want := apiserverGC{Cycles: 3, CPUShare: 0.5, AssistSeconds: 1.5, LiveHeapMB: 100, AllocMBPerSecond: 2, DeviceWatchCache: 16384}
	if got != want {
		t.Errorf("gcBetween = %+v, want %+v", got, want)
	}
	if s := got.describe(); !strings.Contains(s, "50 % of its CPU") || !strings.Contains(s, "16384 events") {
		t.Errorf("describe = %q", s)
	}
	if s := (apiserverGC{}).describe(); s != "API server GC not reported" {
		t.Errorf("an empty window describes itself as %q", s)
	}
}
