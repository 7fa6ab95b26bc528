package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"

	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// The generator's messages must be byte for byte what a device service
// publishes for the same event, or row 7 would measure a bus EdgeX never
// carries: each is decoded, and the event it holds encoded again as EdgeX
// does (encoding/json, device-sdk-go's value text).
func TestEventWireMatchesEdgeX(t *testing.T) {
	fleet := []string{fleetDeviceName(0), fleetDeviceName(3), fleetDeviceName(6), `odd "name" <&>`}
	for perEvent := 1; perEvent <= maxReadingsPerEvent; perEvent++ {
		g, err := planTelemetry(fleet, "edgex-test", perEvent, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		for device := range fleet {
			for round := int64(1); round <= 3; round++ {
				t.Run(fmt.Sprintf("%d per event, %s, round %d", perEvent, fleet[device], round), func(t *testing.T) {
					message := g.message(device, round)
					env, err := messagebus.DecodeEnvelope(message)
					if err != nil {
						t.Fatalf("envelope does not decode: %v\n%s", err, message)
					}
					var req messagebus.AddEventRequest
					if req.Event, err = messagebus.DecodeEvent(env); err != nil {
						t.Fatalf("event does not decode: %v\n%s", err, env.Payload)
					}
					wantEnvelope, err := messagebus.Envelope{CorrelationID: env.CorrelationID, Payload: env.Payload, ContentType: env.ContentType}.Encode()
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(message, wantEnvelope) {
						t.Errorf("envelope\n got %s\nwant %s", message, wantEnvelope)
					}
					want := edgexEvent(t, g, device, round, req.Event)
					_, wantBody, err := messagebus.EncodeEvent(requestID(t, env.Payload), want)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(env.Payload, wantBody) {
						t.Errorf("event\n got %s\nwant %s", env.Payload, wantBody)
					}
				})
			}
		}
	}
}

// edgexEvent is the event device-sdk-go makes for the device's values in
// the round, with the ids and origin of got (which are random).
func edgexEvent(t *testing.T, g *telemetryGen, device int, round int64, got dtos.Event) dtos.Event {
	t.Helper()
	d := g.devices[device]
	if len(got.Readings) != len(d.resources) {
		t.Fatalf("%d readings, want %d", len(got.Readings), len(d.resources))
	}
	ev := dtos.NewEvent(d.profile, d.name, d.source)
	ev.Id, ev.Origin = got.Id, got.Origin
	values := readings(d.profile, int(round), d.changing)
	for i, r := range d.resources {
		reading, err := dtos.NewSimpleReading(d.profile, d.name, r.name, r.valueType, typed(t, r.valueType, values[r.name]))
		if err != nil {
			t.Fatal(err)
		}
		reading.Id, reading.Origin, reading.Units = got.Readings[i].Id, got.Origin, r.units
		ev.Readings = append(ev.Readings, reading)
	}
	return ev
}

// typed is a value as a device service holds it before making a reading.
func typed(t *testing.T, valueType, text string) any {
	t.Helper()
	var v any
	var err error
	switch valueType {
	case common.ValueTypeBool:
		v, err = strconv.ParseBool(text)
	case common.ValueTypeInt32:
		var n int64
		n, err = strconv.ParseInt(text, 10, 32)
		v = int32(n)
	case common.ValueTypeFloat32:
		var f float64
		f, err = strconv.ParseFloat(text, 32)
		v = float32(f)
	case common.ValueTypeFloat64:
		v, err = strconv.ParseFloat(text, 64)
	default:
		t.Fatalf("no benchmark resource has value type %s", valueType)
	}
	if err != nil {
		t.Fatalf("%s value %q: %v", valueType, text, err)
	}
	return v
}

func requestID(t *testing.T, body []byte) string {
	t.Helper()
	var req messagebus.AddEventRequest
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	return req.RequestID
}

// Every id is unique, as EdgeX's random UUIDs are.
func TestEventIDsAreUnique(t *testing.T) {
	ids := newIDSource(42)
	seen := map[string]bool{}
	for range 10000 {
		id := string(ids.appendID(nil))
		if seen[id] || len(id) != 36 {
			t.Fatalf("id %q: repeated or not in UUID form", id)
		}
		seen[id] = true
	}
}
