package messagebus

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// The fast path is only worth having if it takes what EdgeX really
// publishes: every captured JSON event, envelope and body, must go through
// it.
func TestFastPathTakesCapturedEvents(t *testing.T) {
	events := 0
	for _, m := range capturedMessages(t, "edgex/events/") {
		env, ok := fastEnvelope(m.Payload, nil)
		if !ok {
			t.Fatalf("fast path refused the envelope on %s", m.Topic)
		}
		if env.ContentType != ContentTypeJSON {
			continue
		}
		if _, ok := fastEventRequest(env.Payload, nil); !ok {
			t.Fatalf("fast path refused the event on %s: %s", m.Topic, env.Payload)
		}
		events++
	}
	if events == 0 {
		t.Fatal("no captured JSON event")
	}
	if _, ok := fastEnvelope(sensorEvent(t), nil); !ok {
		t.Fatal("fast path refused a three-reading event")
	}
}

// Input just outside the shape the fast path reads is left to
// encoding/json, which decides what it means, or refuses it.
func TestFastPathLeavesTheRestToEncodingJSON(t *testing.T) {
	const event = `{"apiVersion":"v3","event":{"deviceName":"d","origin":1,"readings":[{"resourceName":"r","valueType":"Int8","value":"1"}]}}`
	cases := []struct {
		name, body string
	}{
		{"an escaped character", strings.Replace(event, `"d"`, `"d\u00e9"`, 1)},
		{"a key in other case", strings.Replace(event, `"deviceName"`, `"DeviceName"`, 1)},
		{"a repeated key", strings.Replace(event, `"origin":1,`, `"origin":1,"origin":2,`, 1)},
		{"an unknown key", strings.Replace(event, `"origin":1,`, `"origin":1,"extra":true,`, 1)},
		{"tags", strings.Replace(event, `"origin":1,`, `"origin":1,"tags":{"a":"b"},`, 1)},
		{"an object value", strings.Replace(event, `"value":"1"`, `"objectValue":{"a":1}`, 1)},
		{"a float origin", strings.Replace(event, `"origin":1,`, `"origin":1.5,`, 1)},
		{"an exponent origin", strings.Replace(event, `"origin":1,`, `"origin":1e3,`, 1)},
		{"a leading zero", strings.Replace(event, `"origin":1,`, `"origin":01,`, 1)},
		{"an origin past int64", strings.Replace(event, `"origin":1,`, `"origin":9223372036854775808,`, 1)},
		{"null readings", strings.Replace(event, `[{"resourceName":"r","valueType":"Int8","value":"1"}]`, `null`, 1)},
		{"a null string", strings.Replace(event, `"d"`, `null`, 1)},
		{"invalid UTF-8", strings.Replace(event, `"d"`, "\"d\xff\"", 1)},
		{"a control character", strings.Replace(event, `"d"`, "\"d\t\"", 1)},
		{"trailing bytes", event + `{}`},
		{"a missing comma", strings.Replace(event, `"origin":1,`, `"origin":1 `, 1)},
		{"a truncated body", event[:len(event)-3]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := fastEventRequest([]byte(tc.body), nil); ok {
				t.Fatalf("fast path took %s", tc.body)
			}
			assertFastPathAgrees(t, []byte(tc.body))
		})
	}
}

// FuzzFastPathAgreesWithEncodingJSON holds the fast path to what
// encoding/json makes of the same bytes: whatever the fast path accepts,
// encoding/json accepts too, with the same result.
func FuzzFastPathAgreesWithEncodingJSON(f *testing.F) {
	for _, m := range capturedForFuzz(f) {
		f.Add(m.Payload)
		if env, err := DecodeEnvelope(m.Payload); err == nil {
			f.Add(env.Payload)
		}
	}
	f.Add(sensorEvent(f))
	f.Add([]byte(` { "apiVersion" : "v3" , "errorCode" : -0 , "payload" : "" } `))
	f.Add([]byte(`{"apiVersion":"v3","payload":"AA==","errorCode":1,"contentType":"text/plain"}`))
	f.Add([]byte(`{"apiVersion":"v3","payload":"AA=","errorCode":1}`))
	f.Add([]byte(`{"apiVersion":"v3","event":{"deviceName":"Gerät","readings":[]}}`))
	f.Add([]byte(`{"event":{"readings":[{},{"origin":-12,"units":"°C","mediaType":"image/png"}]}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		assertFastPathAgrees(t, data)
	})
}

func assertFastPathAgrees(t *testing.T, data []byte) {
	t.Helper()
	if fast, ok := fastEnvelope(data, nil); ok {
		var slow Envelope
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast path took an envelope encoding/json refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("envelope %q:\nfast path    %+v\nencoding/json %+v", data, fast, slow)
		}
	}
	var m memo
	for _, fast := range []func() (AddEventRequest, bool){
		func() (AddEventRequest, bool) { return fastEventRequest(data, nil) },
		// A decoder's memory of earlier events changes nothing: the same
		// event twice, then after another.
		func() (AddEventRequest, bool) { return fastEventRequest(data, &m) },
		func() (AddEventRequest, bool) { return fastEventRequest(data, &m) },
		func() (AddEventRequest, bool) {
			_, _ = fastEventRequest([]byte(`{"event":{"deviceName":"other","readings":[{"resourceName":"r","value":"1"},{"resourceName":"s"}]}}`), &m)
			return fastEventRequest(data, &m)
		},
	} {
		assertFastEventAgrees(t, data, fast)
	}
}

func assertFastEventAgrees(t *testing.T, data []byte, decode func() (AddEventRequest, bool)) {
	t.Helper()
	if fast, ok := decode(); ok {
		var slow AddEventRequest
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast path took an event encoding/json refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("event %q:\nfast path    %+v\nencoding/json %+v", data, fast, slow)
		}
	}
}

// A decoder reuses its memory from one message to the next; events it
// returned earlier must not change.
func TestEventDecoderLeavesEarlierEventsAlone(t *testing.T) {
	var dec EventDecoder
	first, err := dec.Decode(sensorEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%+v", first)
	if second, err := dec.Decode(sensorEventOf(t, "dev-00043")); err != nil || second.DeviceName == first.DeviceName {
		t.Fatalf("second event: %v, device %q", err, second.DeviceName)
	}
	if got := fmt.Sprintf("%+v", first); got != want {
		t.Fatalf("the first event changed:\n got %s\nwant %s", got, want)
	}
}

// A stream of ever new or huge names cannot make a decoder's memory grow
// without bound.
func TestDecoderMemoryIsBounded(t *testing.T) {
	var m memo
	long := strings.Repeat("x", maxNameLength+1)
	if m.intern([]byte(long)); len(m.names) != 0 {
		t.Fatalf("kept a name of %d bytes", len(long))
	}
	for i := range maxNames + 10 {
		m.intern([]byte(fmt.Sprintf("device-%d", i)))
	}
	if len(m.names) != maxNames {
		t.Fatalf("kept %d names, want at most %d", len(m.names), maxNames)
	}
	if got := m.intern([]byte("device-1")); got != "device-1" {
		t.Fatalf("intern returned %q", got)
	}
}
