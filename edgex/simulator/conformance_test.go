package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/responses"

	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// Real EdgeX 3.1.1 ran on these ports when the captures were made.
const (
	capturedMetadata = "http://127.0.0.1:59881"
	capturedCommand  = "http://127.0.0.1:59882"
	capturedDevice   = "Test-GPIO-Sensor-Camera"
	// initialEvents are the startup's first system events: device-virtual,
	// its five profiles and its five devices registering.
	initialEvents = 11
)

// TestConformance replays every captured exchange against the simulator, in
// order, after loading what the real stack held, and compares status codes,
// answers, system events, device events and the external MQTT command API
// with what the real EdgeX said.
func TestConformance(t *testing.T) {
	exchanges, err := captures.Exchanges()
	if err != nil {
		t.Fatal(err)
	}
	startup := mustMQTT(t, "mqtt-startup.txt")
	session := mustMQTT(t, "mqtt-session1.txt")

	sim, b := startWithBroker(t, Options{})
	systemEvents := subscribe(t, b.URL(), "edgex/system-events/#")
	deviceEvents := subscribe(t, b.URL(), "edgex/events/device/device-virtual/"+capturedDevice+"/#")

	loadCapturedStack(t, sim, exchanges, startup)
	wantLoad := systemEventsIn(startup)[:initialEvents]
	compareMessages(t, "system events while loading", wantLoad, systemEvents.waitFor(t, len(wantLoad), nil))

	externalDone := false
	for _, ex := range exchanges {
		if ex.File == "42-delete.txt" && !externalDone {
			// The external MQTT requests ran while the test device existed
			// and after the PATCHes of 41, as in the captured session.
			replayExternalRequests(t, sim, b.URL(), session)
			externalDone = true
		}
		t.Run(fmt.Sprintf("%s#%d %s %s", ex.File, ex.Index, ex.Method, pathOf(ex.URL)), func(t *testing.T) {
			replayExchange(t, sim, ex)
		})
		if ex.File == "35-command-get-int-pushevent.txt" {
			t.Run("36-command-get-binary", func(t *testing.T) { replayBinaryGet(t, sim) })
		}
	}

	wantSession := systemEventsIn(session)
	got := systemEvents.waitFor(t, len(wantLoad)+len(wantSession), nil)
	compareMessages(t, "system events of the session", wantSession, got[len(wantLoad):])

	wantEvents := commandEventsIn(session)
	compareMessages(t, "device events of commands", wantEvents, deviceEvents.waitFor(t, len(wantEvents), nil))
}

func mustMQTT(t *testing.T, name string) []captures.Message {
	t.Helper()
	msgs, err := captures.MQTT(name)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func pathOf(url string) string {
	_, path, _ := strings.Cut(strings.TrimPrefix(url, "http://"), "/")
	return "/" + path
}

func exchangeBody(t *testing.T, exchanges []captures.Exchange, file string) []byte {
	t.Helper()
	for _, ex := range exchanges {
		if ex.File == file {
			return []byte(ex.ResponseBody)
		}
	}
	t.Fatalf("no captured exchange %s", file)
	return nil
}

// loadCapturedStack adds what the real stack held before the exchanges: the
// device-virtual service (registered by itself, without id), its five
// Random-* profiles (complete only in the startup system events) and five
// devices (from the device listing, with their ids, which decide the
// listing's order). The two profiles in the profile listing keep their ids;
// the other three were captured in another run, so they get ids that sort
// below those two, as they did in the listed run.
func loadCapturedStack(t *testing.T, sim *Simulator, exchanges []captures.Exchange, startup []captures.Message) {
	t.Helper()
	var services responses.MultiDeviceServicesResponse
	mustUnmarshal(t, exchangeBody(t, exchanges, "01-deviceservice-all.txt"), &services)
	var profiles responses.MultiDeviceProfilesResponse
	mustUnmarshal(t, exchangeBody(t, exchanges, "02-deviceprofile-all.txt"), &profiles)
	var devices responses.MultiDevicesResponse
	mustUnmarshal(t, exchangeBody(t, exchanges, "03-device-all.txt"), &devices)

	svc := services.Services[0]
	svc.Id, svc.Created, svc.Modified = "", 0, 0
	if _, err := sim.AddDeviceService(svc); err != nil {
		t.Fatal(err)
	}
	listedIDs := map[string]string{}
	for _, p := range profiles.Profiles {
		listedIDs[p.Name] = p.Id
	}
	unlisted := 0
	initial := systemEventsIn(startup)[:initialEvents]
	for _, se := range initial {
		event := decodeSystemEvent(t, se)
		if event.Type != messagebus.KindDeviceProfile {
			continue
		}
		p, err := event.Profile()
		if err != nil {
			t.Fatal(err)
		}
		p.Id = listedIDs[p.Name]
		if p.Id == "" {
			unlisted++
			p.Id = fmt.Sprintf("00000000-0000-4000-8000-%012d", unlisted)
		}
		if _, err := sim.AddDeviceProfile(p); err != nil {
			t.Fatal(err)
		}
	}
	byName := map[string]dtos.Device{}
	for _, d := range devices.Devices {
		byName[d.Name] = d
	}
	for _, se := range initial {
		event := decodeSystemEvent(t, se)
		if event.Type != messagebus.KindDevice {
			continue
		}
		d, err := event.Device()
		if err != nil {
			t.Fatal(err)
		}
		if listed, ok := byName[d.Name]; ok {
			if _, err := sim.AddDevice(listed); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func mustUnmarshal(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
}

func decodeSystemEvent(t *testing.T, m captures.Message) messagebus.SystemEvent {
	t.Helper()
	env, err := messagebus.DecodeEnvelope(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	se, err := messagebus.DecodeSystemEvent(env)
	if err != nil {
		t.Fatal(err)
	}
	return se
}

func systemEventsIn(msgs []captures.Message) []captures.Message {
	var out []captures.Message
	for _, m := range msgs {
		if strings.HasPrefix(m.Topic, "edgex/system-events/") {
			out = append(out, m)
		}
	}
	return out
}

// commandEventsIn are the test device's events that commands caused (a PUT,
// a GET with ds-pushevent, an external set); the rest came from autoEvents,
// which this replay does not run.
func commandEventsIn(msgs []captures.Message) []captures.Message {
	var out []captures.Message
	for _, m := range msgs {
		prefix := "edgex/events/device/device-virtual/" + capturedDevice + "/test-device-01/"
		source := strings.TrimPrefix(m.Topic, prefix)
		if strings.HasPrefix(m.Topic, prefix) && source != "temperature" && source != "snapshot" {
			out = append(out, m)
		}
	}
	return out
}

func replayExchange(t *testing.T, sim *Simulator, ex captures.Exchange) {
	url := strings.NewReplacer(capturedMetadata, sim.MetadataURL(), capturedCommand, sim.CommandURL()).Replace(ex.URL)
	var headers []string
	for k, v := range ex.Headers {
		headers = append(headers, k+": "+v)
	}
	got := call(t, ex.Method, url, ex.Body, headers...)
	if got.status != ex.Status {
		t.Errorf("status %d, want %d (body %s)", got.status, ex.Status, got.body)
	}
	want := strings.ReplaceAll(ex.ResponseBody, capturedCommand, sim.CommandURL())
	if want == "" {
		if strings.TrimSpace(got.body) != "" {
			t.Errorf("body %q, want none", got.body)
		}
		return
	}
	assertSameShape(t, "answer", []byte(want), []byte(got.body))
}

func replayBinaryGet(t *testing.T, sim *Simulator) {
	want, err := captures.File("exchanges/36-command-get-binary.body")
	if err != nil {
		t.Fatal(err)
	}
	got := call(t, "GET", sim.CommandURL()+"/api/v3/device/name/test-device-01/snapshot", "")
	if got.status != 200 {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	assertSameShape(t, "binary read", want, []byte(got.body))
	ev := decodeAs[responses.EventResponse](t, got)
	if len(ev.Event.Readings) != 1 || !bytes.HasPrefix(ev.Event.Readings[0].BinaryValue, []byte{0xFF, 0xD8}) {
		t.Errorf("snapshot is not a JPEG frame")
	}
}

// replayExternalRequests publishes the captured external MQTT requests (and
// the one for an unknown device, taken from the session) and compares the
// answers with the real ones, matched by requestID.
func replayExternalRequests(t *testing.T, sim *Simulator, brokerURL string, session []captures.Message) {
	responses := subscribe(t, brokerURL, "edgex/command/response/#", "edgex/commandquery/response")
	var requests [][]byte
	for _, f := range []string{"50-ext-get-request.json", "51-ext-set-request.json", "52-ext-query-request.json"} {
		data, err := captures.File("exchanges/" + f)
		if err != nil {
			t.Fatal(err)
		}
		requests = append(requests, data)
	}
	for _, m := range session {
		if strings.HasPrefix(m.Topic, "edgex/command/request/no-such-device/") {
			requests = append(requests, m.Payload)
		}
	}
	for _, req := range requests {
		id := wireOf(t, req).RequestID
		t.Run("external "+id, func(t *testing.T) {
			reqTopic := capturedWithRequestID(t, session, id, "edgex/command/request/", "edgex/commandquery/request/")
			wantResp := capturedWithRequestID(t, session, id, "edgex/command/response/", "edgex/commandquery/response")
			responses.publish(t, reqTopic.Topic, req)
			got := responses.waitFor(t, 1, func(m received) bool { return wireOf(t, m.payload).RequestID == id })[0]
			if got.topic != wantResp.Topic {
				t.Errorf("answered on %s, want %s", got.topic, wantResp.Topic)
			}
			compareEnvelopes(t, sim.CommandURL(), wireOf(t, req), wantResp.Payload, got.payload)
		})
	}
}

func capturedWithRequestID(t *testing.T, msgs []captures.Message, id string, prefixes ...string) captures.Message {
	t.Helper()
	for _, m := range msgs {
		for _, p := range prefixes {
			if strings.HasPrefix(m.Topic, p) && strings.Contains(string(m.Payload), id) {
				return m
			}
		}
	}
	t.Fatalf("no captured message for request %s on %v", id, prefixes)
	return captures.Message{}
}

// compareEnvelopes compares an answer envelope field by field: ids and
// correlation as the real one relates them to the request, the payload by
// content type.
func compareEnvelopes(t *testing.T, commandURL string, req wireEnvelope, wantData, gotData []byte) {
	t.Helper()
	var wantFields, gotFields map[string]any
	mustUnmarshal(t, wantData, &wantFields)
	mustUnmarshal(t, gotData, &gotFields)
	withoutPayload := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			if k != "payload" {
				out[k] = v
			}
		}
		return out
	}
	if diffs := sameShape("$", withoutPayload(wantFields), withoutPayload(gotFields)); len(diffs) > 0 {
		t.Errorf("envelope differs: %v\nsimulator: %s", diffs, gotData)
	}
	want, got := wireOf(t, wantData), wireOf(t, gotData)
	if (want.CorrelationID == req.CorrelationID) != (got.CorrelationID == req.CorrelationID) {
		t.Errorf("correlationID %s; the real answer reused the request's (%s): %v", got.CorrelationID, req.CorrelationID, want.CorrelationID == req.CorrelationID)
	}
	switch {
	case want.Payload == nil:
		if got.Payload != nil {
			t.Errorf("payload %q, want null", got.Payload)
		}
	case want.ContentType == messagebus.ContentTypeText:
		if string(got.Payload) != string(want.Payload) {
			t.Errorf("error text %q, want %q", got.Payload, want.Payload)
		}
	default:
		// The command list names core-command's URL, which differs.
		wantPayload := bytes.ReplaceAll(want.Payload, []byte(capturedCommand), []byte(commandURL))
		assertSameShape(t, "payload", wantPayload, got.Payload)
	}
}

// compareMessages compares published messages in order: topics exactly,
// envelopes and JSON payloads by shape.
func compareMessages(t *testing.T, what string, want []captures.Message, got []received) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d messages, want %d:\n got %s\nwant %s", what, len(got), len(want), topicsOf(got), capturedTopics(want))
		return
	}
	for i := range want {
		if got[i].topic != want[i].Topic {
			t.Errorf("%s[%d]: topic %s, want %s", what, i, got[i].topic, want[i].Topic)
			continue
		}
		w, g := wireOf(t, want[i].Payload), wireOf(t, got[i].payload)
		if w.ContentType != g.ContentType || w.ErrorCode != g.ErrorCode || w.ReceivedTopic != g.ReceivedTopic {
			t.Errorf("%s[%d] %s: envelope %+v, want %+v", what, i, want[i].Topic, summary(g), summary(w))
		}
		assertSameShape(t, fmt.Sprintf("%s[%d] %s", what, i, want[i].Topic), w.Payload, g.Payload)
	}
}

func summary(e wireEnvelope) string {
	return fmt.Sprintf("contentType=%s errorCode=%d receivedTopic=%q", e.ContentType, e.ErrorCode, e.ReceivedTopic)
}

func capturedTopics(msgs []captures.Message) string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Topic
	}
	return strings.Join(out, ", ")
}

// TestDeviceServiceBinaryAnswer compares the device service's CBOR answer
// for a binary read with the real device service's (37): the same fields,
// a binary reading with its media type.
func TestDeviceServiceBinaryAnswer(t *testing.T) {
	real, err := captures.File("exchanges/37-ds-direct-binary.body")
	if err != nil {
		t.Fatal(err)
	}
	sim := startSim(t, Options{})
	loadTestDevice(t, sim)
	ev, _, apiErr := sim.readFromService("test-device-01", "snapshot", readOptions{regex: true})
	if apiErr != nil {
		t.Fatal(apiErr.message)
	}
	answer := responses.NewEventResponse("", "", 200, ev)
	data, contentType, err := answer.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if contentType != messagebus.ContentTypeCBOR {
		t.Errorf("content type %s, want CBOR for a binary reading", contentType)
	}
	assertSameShape(t, "device service binary answer", cborAsJSON(t, real), cborAsJSON(t, data))
}

// cborAsJSON renders CBOR as the JSON of the same values, byte strings as
// base64 (as EdgeX's JSON carries them).
func cborAsJSON(t *testing.T, data []byte) []byte {
	t.Helper()
	dm, err := cbor.DecOptions{DefaultMapType: reflect.TypeOf(map[string]any{})}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := dm.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode CBOR: %v", err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
