package messagebus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// Everything on the bus comes from outside the bridge. These fuzz tests
// feed the decoders arbitrary bytes, seeded with what a real EdgeX sent;
// their seeds run in every plain `go test`.

func capturedForFuzz(f *testing.F) []captures.Message {
	f.Helper()
	var all []captures.Message
	for _, file := range []string{"mqtt-startup.txt", "mqtt-session1.txt", "internal-cmd.txt"} {
		msgs, err := captures.MQTT(file)
		if err != nil {
			f.Fatal(err)
		}
		all = append(all, msgs...)
	}
	return all
}

// capturedBodies returns the decoded payloads of captured messages under
// prefix, with their content types.
func capturedBodies(f *testing.F, prefix string) []Envelope {
	f.Helper()
	var out []Envelope
	for _, m := range capturedForFuzz(f) {
		if !strings.HasPrefix(m.Topic, prefix) {
			continue
		}
		env, err := DecodeEnvelope(m.Payload)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, env)
	}
	return out
}

func nested(open, close string, depth int) []byte {
	return []byte(strings.Repeat(open, depth) + strings.Repeat(close, depth))
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, m := range capturedForFuzz(f) {
		f.Add(m.Payload)
	}
	f.Add([]byte(`{"apiVersion":"v3","payload":12}`))
	f.Add([]byte(`{"apiVersion":["v3"],"errorCode":"1"}`))
	f.Add([]byte(`{"apiVersion":"v3","queryParams":{"a":{"b":1}}}`))
	f.Add([]byte(`{"apiVersion":"v3","payload":"` + strings.Repeat("QUFB", 1000) + `"}`))
	f.Add(nested(`{"a":`, `}`, 5000))
	f.Add([]byte(`null`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := DecodeEnvelope(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("error without text")
			}
			return
		}
		if env.APIVersion != APIVersion {
			t.Fatalf("accepted apiVersion %q", env.APIVersion)
		}
		encoded, err := env.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeEnvelope(encoded)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v", err)
		}
		if again.RequestID != env.RequestID || again.ErrorCode != env.ErrorCode || !bytes.Equal(again.Payload, env.Payload) || again.ContentType != env.ContentType {
			t.Fatalf("round trip changed the envelope: %+v -> %+v", env, again)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	contentTypes := []string{ContentTypeJSON, ContentTypeCBOR, "", ContentTypeText}
	for _, env := range capturedBodies(f, "edgex/events/") {
		ct := uint8(0)
		if env.ContentType == ContentTypeCBOR {
			ct = 1
		}
		f.Add(ct, env.Payload)
	}
	f.Add(uint8(0), []byte(`{"event":{"deviceName":7}}`))
	f.Add(uint8(0), []byte(`{"event":{"deviceName":"d","readings":[{"resourceName":"r","binaryValue":"not base64"}]}}`))
	f.Add(uint8(0), nested(`[`, `]`, 20000))
	f.Add(uint8(1), bytes.Repeat([]byte{0x81}, 10000))                            // CBOR arrays nested past any sane depth
	f.Add(uint8(1), []byte{0x5b, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // a byte string claiming 2^62 bytes
	f.Add(uint8(3), []byte(`{}`))
	f.Fuzz(func(t *testing.T, ct uint8, payload []byte) {
		env := Envelope{APIVersion: APIVersion, ContentType: contentTypes[int(ct)%len(contentTypes)], Payload: payload}
		ev, err := DecodeEvent(env)
		if err != nil {
			return
		}
		if ev.DeviceName == "" {
			t.Fatal("accepted an event without a device")
		}
		for _, r := range ev.Readings {
			if r.ResourceName == "" || (r.DeviceName != "" && r.DeviceName != ev.DeviceName) {
				t.Fatalf("accepted an unattributable reading %+v", r)
			}
		}
		// What the bridge accepted, a device service could have sent.
		ct2, body, err := EncodeEvent("id", ev)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeEvent(Envelope{APIVersion: APIVersion, ContentType: ct2, Payload: body})
		if err != nil || again.DeviceName != ev.DeviceName || len(again.Readings) != len(ev.Readings) {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
	})
}

func FuzzDecodeSystemEvent(f *testing.F) {
	for _, env := range capturedBodies(f, "edgex/system-events/") {
		f.Add(env.Payload)
	}
	f.Add([]byte(`{"type":"device","action":"add","details":{"name":["x"]}}`))
	f.Add([]byte(`{"type":"deviceprofile","action":"delete","details":{"name":"p","deviceResources":[{"properties":{"valueType":1}}]}}`))
	f.Add([]byte(`{"type":"deviceservice","action":"update","details":` + string(nested(`[`, `]`, 20000)) + `}`))
	f.Add([]byte(`{"type":"device","action":"add","details":{"name":"d","protocols":{"p":{"n":1e400}}}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		se, err := DecodeSystemEvent(Envelope{APIVersion: APIVersion, ContentType: ContentTypeJSON, Payload: payload})
		if err != nil {
			return
		}
		var got map[string]error
		_, dErr := se.Device()
		_, pErr := se.Profile()
		_, sErr := se.Service()
		got = map[string]error{KindDevice: dErr, KindDeviceProfile: pErr, KindDeviceService: sErr}
		for kind, err := range got {
			if kind != se.Type && err == nil {
				t.Fatalf("a %s system event decoded as a %s", se.Type, kind)
			}
		}
	})
}

func FuzzCommandError(f *testing.F) {
	for _, env := range capturedBodies(f, "edgex/command/response/") {
		if env.IsError() {
			f.Add(env.Payload)
		}
	}
	f.Add([]byte(edgexErrorText("failed to set command", 405, "DeviceResource temperature is marked as read-only")))
	f.Add([]byte(`err: {"apiVersion":"v3","statusCode":"404"}`))
	f.Add([]byte(`err: {"apiVersion":"v3","statusCode":99999999999999999999}`))
	f.Add([]byte(`err: {"apiVersion":"v3","statusCode":200}`))
	f.Add(append(bytes.Repeat([]byte("{"), maxErrorScan), `{"apiVersion":"v3","statusCode":404}`...))
	f.Add(nested(`{"a":`, `}`, 3000))
	f.Add([]byte("\xff\xfe invalid UTF-8 {\"apiVersion\":\"v3\",\"statusCode\":423}"))
	f.Fuzz(func(t *testing.T, text []byte) {
		e := commandError("get command", text)
		switch {
		case e.StatusCode == 0 && e.Kind != edgex.KindInternal:
			t.Fatalf("no status but kind %s", e.Kind)
		case e.StatusCode != 0 && (e.StatusCode < 400 || e.StatusCode > 599 || e.Kind != edgex.KindForStatus(e.StatusCode)):
			t.Fatalf("status %d with kind %s", e.StatusCode, e.Kind)
		}
		// U+FFFD takes three bytes where one invalid byte stood.
		if !utf8.ValidString(e.Message) || len(e.Message) > 3*(maxErrorMessage+3) || e.Message == "" {
			t.Fatalf("message of %d bytes, valid UTF-8 %v", len(e.Message), utf8.ValidString(e.Message))
		}
	})
}

func FuzzCommandResult(f *testing.F) {
	for _, env := range capturedBodies(f, "edgex/") {
		if strings.HasPrefix(env.ReceivedTopic, "edgex/events/") {
			continue
		}
		f.Add(env.ErrorCode, env.ContentType == ContentTypeCBOR, env.Payload)
	}
	f.Add(0, false, []byte(`{"apiVersion":"v3","statusCode":200,"event":{"deviceName":"test-device-01","readings":[{"resourceName":""}]}}`))
	f.Add(0, false, []byte(`{"statusCode":"200"}`))
	f.Add(0, true, []byte{0xa1, 0x65, 'e', 'v', 'e', 'n', 't', 0xf6})
	f.Fuzz(func(t *testing.T, errorCode int, cbor bool, payload []byte) {
		env := Envelope{APIVersion: APIVersion, RequestID: "r", ErrorCode: errorCode, ContentType: ContentTypeJSON, Payload: payload}
		if cbor {
			env.ContentType = ContentTypeCBOR
		}
		res, err := commandResult("get command", "test-device-01", env)
		if err != nil {
			var e *edgex.Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if res.Event != nil && res.Event.DeviceName != "test-device-01" {
			t.Fatalf("accepted an event of device %q", res.Event.DeviceName)
		}
	})
}

// Ten megabytes of hostile input cost a bounded multiple of their own size
// and end in a clear error from every decoder.
func TestDecodersRefuseHostileInput(t *testing.T) {
	const size = 10 << 20
	randomBytes := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(randomBytes)
	hugeCBOR := []byte{0x5b}
	hugeCBOR = binary.BigEndian.AppendUint64(hugeCBOR, 1<<62)
	cases := []struct {
		name    string
		payload []byte
	}{
		{"nested JSON arrays", nested(`[`, `]`, size/2)},
		{"nested JSON objects", nested(`{"a":`, `}`, size/6)},
		{"a number where a string belongs", []byte(`{"apiVersion":` + strings.Repeat("9", size) + `}`)},
		{"nested CBOR arrays", bytes.Repeat([]byte{0x81}, size)},
		{"CBOR byte string claiming 2^62 bytes", append(hugeCBOR, randomBytes[:size-9]...)},
		{"random bytes", randomBytes},
		{"over MaxMessageSize", bytes.Repeat([]byte(" "), MaxMessageSize+1)},
	}
	decoders := []struct {
		name   string
		decode func(payload []byte) error
	}{
		{"envelope", func(p []byte) error { _, err := DecodeEnvelope(p); return err }},
		{"JSON event", func(p []byte) error {
			_, err := DecodeEvent(Envelope{APIVersion: APIVersion, ContentType: ContentTypeJSON, Payload: p})
			return err
		}},
		{"CBOR event", func(p []byte) error {
			_, err := DecodeEvent(Envelope{APIVersion: APIVersion, ContentType: ContentTypeCBOR, Payload: p})
			return err
		}},
		{"system event", func(p []byte) error {
			_, err := DecodeSystemEvent(Envelope{APIVersion: APIVersion, ContentType: ContentTypeJSON, Payload: p})
			return err
		}},
		{"command answer", func(p []byte) error {
			_, err := commandResult("get command", "d", Envelope{APIVersion: APIVersion, ContentType: ContentTypeJSON, Payload: p})
			return err
		}},
		{"command error", func(p []byte) error { return commandError("get command", p) }},
	}
	for _, tc := range cases {
		for _, d := range decoders {
			var err error
			allocated := measureAlloc(func() { err = d.decode(tc.payload) })
			if err == nil || err.Error() == "" {
				t.Errorf("%s decoder accepted %s", d.name, tc.name)
			}
			// Refusing must not cost more than one copy of the input, let
			// alone what the input claims to hold.
			if limit := uint64(len(tc.payload) + 1<<20); allocated > limit {
				t.Errorf("%s decoder allocated %d MB for %s of %d MB", d.name, allocated>>20, tc.name, len(tc.payload)>>20)
			}
		}
	}
}

func measureAlloc(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
