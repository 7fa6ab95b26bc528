package devicecontroller

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// benchTelemetry is a telemetry with nothing behind it but its own
// memory: what a bus message costs before any status write.
func benchTelemetry(tb testing.TB, devices int) *telemetry {
	tb.Helper()
	opts := Options{NodePool: fmt.Sprintf("bench-%s", tb.Name()), Namespaces: []string{"ns"}, MaxReadingSeries: 10000}
	opts.StatusInterval, opts.ConnectedRefresh = 5*time.Second, 10*time.Minute
	s := &shared{opts: opts, metrics: newMetrics(opts.NodePool)}
	return newTelemetry(s, nil, func(_ context.Context, name string) (*v1alpha1.Device, bool) {
		return &v1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pool-" + name}}, true
	})
}

// benchMessages are bus messages of n devices, one event of three
// readings each, as the benchmark's sensors publish them.
func benchMessages(tb testing.TB, n int, round int) [][]byte {
	tb.Helper()
	out := make([][]byte, n)
	for i := range out {
		ev := dtos.NewEvent("bench-sensor", fmt.Sprintf("dev-%05d", i), "all")
		ev.Origin = time.Now().UnixNano()
		for _, r := range []struct {
			name, valueType, units string
			value                  any
		}{
			{"temperature", common.ValueTypeFloat32, "degC", float32(20 + round%50)},
			{"humidity", common.ValueTypeFloat32, "%", float32(40.5)},
			{"sample_rate", common.ValueTypeInt32, "", int32(10)},
		} {
			reading, err := dtos.NewSimpleReading(ev.ProfileName, ev.DeviceName, r.name, r.valueType, r.value)
			if err != nil {
				tb.Fatal(err)
			}
			reading.Origin, reading.Units = ev.Origin, r.units
			ev.Readings = append(ev.Readings, reading)
		}
		contentType, payload, err := messagebus.EncodeEvent("b5d1c275-9a82-4005-9e89-b7ea052deb3b", ev)
		if err != nil {
			tb.Fatal(err)
		}
		data, err := messagebus.Envelope{CorrelationID: "d15660e5-c7aa-4c1f-835c-1df1079c3f87", Payload: payload, ContentType: contentType}.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = data
	}
	return out
}

// cpuTime is this process's user and system time so far: on a machine
// shared with other work, CPU per event says more than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTelemetryEvent is the bridge's whole in-memory cost of one
// device event: envelope and event decoding, then telemetry's merge,
// gauges and scheduling.
func BenchmarkTelemetryEvent(b *testing.B) {
	const devices = 10000
	t := benchTelemetry(b, devices)
	msgs := benchMessages(b, devices, 1)
	var dec messagebus.EventDecoder
	handle := func(data []byte) {
		ev, err := dec.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		t.onEvent("", ev)
	}
	for _, m := range msgs {
		handle(m)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	i := 0
	for b.Loop() {
		handle(msgs[i%devices])
		i++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// TestTelemetryStateSize reports the heap telemetry holds for 10,000
// devices of three readings each, with their gauges (run with -v).
func TestTelemetryStateSize(t *testing.T) {
	const devices = 10000
	msgs := benchMessages(t, devices, 1)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tel := benchTelemetry(t, devices)
	var dec messagebus.EventDecoder
	for _, m := range msgs {
		ev, err := dec.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		tel.onEvent("", ev)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("telemetry state for %d devices: %.1f MB (%.0f bytes a device)", devices,
		float64(after.HeapAlloc-before.HeapAlloc)/1e6, float64(after.HeapAlloc-before.HeapAlloc)/devices)
	runtime.KeepAlive(tel)
	runtime.KeepAlive(msgs)
}
