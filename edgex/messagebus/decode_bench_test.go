package messagebus

import (
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
)

// sensorEvent is an event as a device service publishes it for an
// autoEvent that reads three resources: the shape the benchmark's
// telemetry uses.
func sensorEvent(tb testing.TB) []byte {
	tb.Helper()
	return sensorEventOf(tb, "dev-00042")
}

// sensorEventOf is sensorEvent for another device.
func sensorEventOf(tb testing.TB, device string) []byte {
	tb.Helper()
	ev := dtos.NewEvent("bench-sensor", device, "all")
	ev.Origin = 1795315732342002106
	for _, r := range []struct {
		name, valueType, units string
		value                  any
	}{
		{"temperature", common.ValueTypeFloat32, "degC", float32(21.5)},
		{"humidity", common.ValueTypeFloat32, "%", float32(40.2)},
		{"sample_rate", common.ValueTypeInt32, "", int32(10)},
	} {
		reading, err := dtos.NewSimpleReading(ev.ProfileName, ev.DeviceName, r.name, r.valueType, r.value)
		if err != nil {
			tb.Fatal(err)
		}
		reading.Origin, reading.Units = ev.Origin, r.units
		ev.Readings = append(ev.Readings, reading)
	}
	contentType, payload, err := EncodeEvent("b5d1c275-9a82-4005-9e89-b7ea052deb3b", ev)
	if err != nil {
		tb.Fatal(err)
	}
	data, err := Envelope{CorrelationID: "d15660e5-c7aa-4c1f-835c-1df1079c3f87", Payload: payload, ContentType: contentType}.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	data := sensorEvent(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEnvelope(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	data := sensorEvent(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		env, err := DecodeEnvelope(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeEvent(env); err != nil {
			b.Fatal(err)
		}
	}
}
