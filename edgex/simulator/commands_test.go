package simulator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	commonDTO "github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/responses"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"
	"github.com/google/uuid"

	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

func seededDemo(t testing.TB, opts Options) *Simulator {
	t.Helper()
	sim := startSim(t, opts)
	if err := sim.SeedDemo(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sim
}

func commandURL(sim *Simulator, device, command string) string {
	return fmt.Sprintf("%s/api/v3/device/name/%s/%s", sim.CommandURL(), device, command)
}

func readValue(t testing.TB, sim *Simulator, device, resource string) string {
	t.Helper()
	got := call(t, "GET", commandURL(sim, device, resource), "")
	if got.status != 200 {
		t.Fatalf("read %s/%s: %d %s", device, resource, got.status, got.body)
	}
	ev := decodeAs[responses.EventResponse](t, got)
	return ev.Event.Readings[0].Value
}

// A user sets values through core-command and reads them back; the device
// service refuses what device-sdk-go refuses, with its messages.
func TestSetAndReadThroughCoreCommand(t *testing.T) {
	sim := seededDemo(t, Options{})
	var mu sync.Mutex
	var writes []Write
	cancel := sim.OnWrite(func(w Write) {
		mu.Lock()
		writes = append(writes, w)
		mu.Unlock()
	})
	defer cancel()

	cases := []struct {
		name     string
		device   string
		command  string
		body     string
		status   int
		message  string // inner device-service message; "" on success
		readBack string
	}{
		{"switch a GPIO pin on", "gpio-board-01", "pin_17", `{"pin_17":"true"}`, 200, "", "true"},
		{"JSON bool is accepted too", "gpio-board-01", "pin_18", `{"pin_18":true}`, 200, "", "true"},
		{"sample rate in range", "env-sensor-01", "sample_rate", `{"sample_rate":"250"}`, 200, "", "250"},
		{"sample rate above maximum", "env-sensor-01", "sample_rate", `{"sample_rate":"2000"}`, 400,
			"failed to transform set parameter -> set command parameter out of maximum value 1000", "250"},
		{"sample rate below minimum", "env-sensor-01", "sample_rate", `{"sample_rate":"0"}`, 400,
			"failed to transform set parameter -> set command parameter out of minimum value 1", "250"},
		{"not an Int32", "env-sensor-01", "sample_rate", `{"sample_rate":"3000000000"}`, 500,
			`failed to create CommandValue -> failed to convert set parameter 3000000000 to ValueType Int32 -> strconv.ParseInt: parsing "3000000000": value out of range`, "250"},
		{"empty value", "env-sensor-01", "sample_rate", `{"sample_rate":""}`, 400,
			"failed to create CommandValue -> empty string is invalid for Int32 value type", "250"},
		{"read-only sensor", "env-sensor-01", "temperature", `{"temperature":"30"}`, 405,
			"DeviceResource temperature is marked as read-only", ""},
		{"read-only command", "env-sensor-01", "environment", `{"temperature":"30"}`, 405,
			"DeviceCommand environment is marked as read-only", ""},
		{"unknown resource", "gpio-board-01", "pin_99", `{"pin_99":"true"}`, 404, "DeviceResource pin_99 not found", ""},
		{"value missing, no default", "camera-01", "streaming", `{}`, 200, "", "false"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, "PUT", commandURL(sim, tc.device, tc.command), tc.body)
			if got.status != tc.status {
				t.Fatalf("status %d, want %d: %s", got.status, tc.status, got.body)
			}
			if tc.message != "" {
				inner, _ := json.Marshal(commonDTO.NewBaseResponse("", tc.message, tc.status))
				want := fmt.Sprintf("request failed, status code: %d, err: %s", tc.status, inner)
				if e := decodeAs[commonDTO.BaseResponse](t, got); e.Message != want {
					t.Errorf("message %q\nwant    %q", e.Message, want)
				}
			}
			if tc.readBack != "" {
				if v := readValue(t, sim, tc.device, tc.command); v != tc.readBack {
					t.Errorf("reads %q after the write, want %q", v, tc.readBack)
				}
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(writes) != 4 || writes[0] != (Write{Device: "gpio-board-01", Resource: "pin_17", Value: "true", Via: "rest", At: writes[0].At}) {
		t.Errorf("accepted writes %+v; want the 4 accepted ones, first pin_17=true via rest", writes)
	}
}

func TestDeviceServiceRefusals(t *testing.T) {
	sim := seededDemo(t, Options{})
	lock := func(u dtos.UpdateDevice) {
		t.Helper()
		if err := sim.UpdateDevice(u); err != nil {
			t.Fatal(err)
		}
	}
	name, locked, unlocked, down, up := "gpio-board-01", "LOCKED", "UNLOCKED", "DOWN", "UP"
	svc := DemoServiceName
	cases := []struct {
		name    string
		change  func()
		status  int
		message string
	}{
		{"locked device", func() { lock(dtos.UpdateDevice{Name: &name, AdminState: &locked}) }, 423, "device gpio-board-01 locked"},
		{"device down", func() {
			lock(dtos.UpdateDevice{Name: &name, AdminState: &unlocked, OperatingState: &down})
		}, 423, "device gpio-board-01 OperatingState is DOWN"},
		{"locked service", func() {
			lock(dtos.UpdateDevice{Name: &name, OperatingState: &up})
			if err := sim.UpdateDeviceService(dtos.UpdateDeviceService{Name: &svc, AdminState: &locked}); err != nil {
				t.Fatal(err)
			}
		}, 423, "service locked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			for _, method := range []string{"GET", "PUT"} {
				got := call(t, method, commandURL(sim, name, "pin_17"), `{"pin_17":"true"}`)
				e := decodeAs[commonDTO.BaseResponse](t, got)
				if got.status != tc.status || !strings.Contains(e.Message, `"message":"`+tc.message+`"`) {
					t.Errorf("%s: %d %q, want %d with %q", method, got.status, e.Message, tc.status, tc.message)
				}
			}
		})
	}
}

func TestReadOptions(t *testing.T) {
	sim := seededDemo(t, Options{})
	cases := []struct {
		name   string
		query  string
		status int
		body   string
	}{
		{"no event returned", "?ds-returnevent=false", 200, ""},
		{"invalid ds-pushevent", "?ds-pushevent=maybe", 400, `{"apiVersion":"v3","message":"invalid query parameter, maybe has to be true or false","statusCode":400}`},
		{"regex read of every pin", "", 200, "pin_17 pin_18 pin_27"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			source := "pin_17"
			if tc.query == "" {
				source = "pin_.*"
			}
			got := call(t, "GET", commandURL(sim, "gpio-board-01", source)+tc.query, "")
			if got.status != tc.status {
				t.Fatalf("status %d: %s", got.status, got.body)
			}
			if tc.query == "" {
				ev := decodeAs[responses.EventResponse](t, got).Event
				var names []string
				for _, r := range ev.Readings {
					names = append(names, r.ResourceName)
				}
				if strings.Join(names, " ") != tc.body || ev.SourceName != "pin_.*" {
					t.Errorf("read %v from source %s", names, ev.SourceName)
				}
				return
			}
			if strings.TrimSpace(got.body) != tc.body {
				t.Errorf("body %q, want %q", got.body, tc.body)
			}
		})
	}
}

func TestDemoDevices(t *testing.T) {
	sim := seededDemo(t, Options{})
	got := decodeAs[responses.DeviceCoreCommandResponse](t, call(t, "GET", sim.CommandURL()+"/api/v3/device/name/gpio-board-01", ""))
	var described []string
	for _, c := range got.DeviceCoreCommand.CoreCommands {
		described = append(described, fmt.Sprintf("%s:%v/%v", c.Name, c.Get, c.Set))
	}
	if strings.Join(described, " ") != "pins:true/false pin_17:true/true pin_18:true/true pin_27:true/false" {
		t.Errorf("gpio commands %v", described)
	}
	all := decodeAs[responses.MultiDeviceCoreCommandsResponse](t, call(t, "GET", sim.CommandURL()+"/api/v3/device/all", ""))
	if all.TotalCount != 3 || len(all.DeviceCoreCommands) != 3 {
		t.Errorf("core-command lists %d of %d devices", len(all.DeviceCoreCommands), all.TotalCount)
	}
	if v := readValue(t, sim, "env-sensor-01", "temperature"); v != "2.150000e+01" {
		t.Errorf("temperature starts at %q, want the profile's default 21.5 in EdgeX's format", v)
	}
	snap := decodeAs[responses.EventResponse](t, call(t, "GET", commandURL(sim, "camera-01", "snapshot"), ""))
	r := snap.Event.Readings[0]
	if r.MediaType != "image/jpeg" || len(r.BinaryValue) < 100 || r.BinaryValue[0] != 0xFF || r.BinaryValue[1] != 0xD8 {
		t.Errorf("snapshot %s of %d bytes is not a JPEG", r.MediaType, len(r.BinaryValue))
	}
	if v, ok := sim.Value("camera-01", "stream_url"); !ok || !strings.HasPrefix(v, "rtsp://") {
		t.Errorf("stream_url %q", v)
	}
}

func TestValueAndSetValue(t *testing.T) {
	sim := seededDemo(t, Options{})
	cases := []struct {
		device, resource, set, want string
		ok                          bool
	}{
		{"env-sensor-01", "temperature", "70", "7.000000e+01", true}, // drift may leave the range
		{"env-sensor-01", "sample_rate", "12", "12", true},
		{"gpio-board-01", "pin_27", "true", "true", true},
		{"camera-01", "snapshot", base64.StdEncoding.EncodeToString([]byte("frame")), base64.StdEncoding.EncodeToString([]byte("frame")), true},
		{"gpio-board-01", "pin_27", "yes", "", false},
		{"gpio-board-01", "nope", "1", "", false},
		{"nobody", "pin_27", "1", "", false},
	}
	for _, tc := range cases {
		err := sim.SetValue(tc.device, tc.resource, tc.set)
		if (err == nil) != tc.ok {
			t.Errorf("SetValue(%s, %s, %s) = %v, want ok=%v", tc.device, tc.resource, tc.set, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if v, _ := sim.Value(tc.device, tc.resource); v != tc.want {
			t.Errorf("Value(%s, %s) = %q, want %q", tc.device, tc.resource, v, tc.want)
		}
	}
	if v := readValue(t, sim, "gpio-board-01", "pin_27"); v != "true" {
		t.Errorf("a read after drift returns %q", v)
	}
}

// Commands to one slow device over core-command's external MQTT API must not
// hold up commands to the others.
func TestExternalCommandsDoNotWaitForASlowDevice(t *testing.T) {
	sim, b := startWithBroker(t, Options{})
	if err := sim.SeedDemo(context.Background()); err != nil {
		t.Fatal(err)
	}
	const slow = 3 * time.Second
	sim.Faults().SetDeviceLatency("camera-01", slow)
	client := subscribe(t, b.URL(), "edgex/command/response/#")
	request := func(device, command, method string, payload []byte) string {
		id := uuid.NewString()
		env := encodeEnvelope(wireEnvelope{RequestID: id, CorrelationID: uuid.NewString(), ContentType: "application/json", Payload: payload})
		client.publish(t, fmt.Sprintf("edgex/command/request/%s/%s/%s", device, command, method), env)
		return id
	}
	start := time.Now()
	slowID := request("camera-01", "streaming", "get", nil)
	fast := map[string]bool{}
	for i := range 20 {
		fast[request("gpio-board-01", "pin_17", "set", []byte(fmt.Sprintf(`{"pin_17":"%v"}`, i%2 == 0)))] = true
	}
	isFast := func(m received) bool { return fast[wireOf(t, m.payload).RequestID] }
	answers := client.waitFor(t, len(fast), isFast)
	if elapsed := time.Since(start); elapsed >= slow {
		t.Errorf("fast devices answered after %s, behind the slow one", elapsed)
	}
	for _, a := range answers {
		if env := wireOf(t, a.payload); env.ErrorCode != 0 {
			t.Errorf("fast command failed: %s", env.Payload)
		}
	}
	if n := len(client.messages(func(m received) bool { return wireOf(t, m.payload).RequestID == slowID })); n != 0 {
		t.Errorf("the slow device answered before its latency passed")
	}
	slowAnswer := client.waitFor(t, 1, func(m received) bool { return wireOf(t, m.payload).RequestID == slowID })[0]
	if time.Since(start) < slow {
		t.Errorf("slow device answered before its latency")
	}
	if env := wireOf(t, slowAnswer.payload); env.ErrorCode != 0 || !strings.Contains(string(env.Payload), `"sourceName":"streaming"`) {
		t.Errorf("slow device answered %s", env.Payload)
	}
}

func TestExternalCommandErrors(t *testing.T) {
	sim, b := startWithBroker(t, Options{})
	if err := sim.SeedDemo(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := subscribe(t, b.URL(), "edgex/command/response/#")
	cases := []struct {
		name     string
		topic    string
		envelope wireEnvelope
		answered bool
		text     string
	}{
		{"read-only resource", "edgex/command/request/env-sensor-01/temperature/set",
			wireEnvelope{ContentType: "application/json", Payload: []byte(`{"temperature":"1"}`)}, true,
			"DeviceResource temperature is marked as read-only"},
		{"invalid ds-returnevent", "edgex/command/request/env-sensor-01/temperature/get",
			wireEnvelope{ContentType: "application/json", QueryParams: map[string]string{"ds-returnevent": "yes"}}, true,
			"invalid query parameter, ds-returnevent has to be 'true' or 'false'"},
		{"set body is not JSON", "edgex/command/request/gpio-board-01/pin_17/set",
			wireEnvelope{ContentType: "application/json", Payload: []byte(`on`)}, true, "invalid character 'o' looking for beginning of value"},
		{"not JSON content is dropped", "edgex/command/request/gpio-board-01/pin_17/get",
			wireEnvelope{ContentType: "text/plain"}, false, ""},
		{"unknown method is dropped", "edgex/command/request/gpio-board-01/pin_17/put",
			wireEnvelope{ContentType: "application/json"}, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.NewString()
			tc.envelope.RequestID, tc.envelope.CorrelationID = id, uuid.NewString()
			client.publish(t, tc.topic, encodeEnvelope(tc.envelope))
			// A marker request answered after this one proves a dropped
			// request got no answer: answers keep the requests' order for
			// a device without latency.
			marker := uuid.NewString()
			client.publish(t, "edgex/command/request/gpio-board-01/pin_18/get",
				encodeEnvelope(wireEnvelope{RequestID: marker, CorrelationID: uuid.NewString(), ContentType: "application/json"}))
			client.waitFor(t, 1, func(m received) bool { return wireOf(t, m.payload).RequestID == marker })
			got := client.messages(func(m received) bool { return wireOf(t, m.payload).RequestID == id })
			if !tc.answered {
				if len(got) != 0 {
					t.Errorf("answered a request core-command drops: %s", got[0].payload)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d answers", len(got))
			}
			env := wireOf(t, got[0].payload)
			if env.ErrorCode != 1 || env.ContentType != "text/plain" || string(env.Payload) != tc.text {
				t.Errorf("answer %+v %q, want error text %q", summary(env), env.Payload, tc.text)
			}
		})
	}
}

// AutoEvents publish on their interval; read-only sensors drift inside their
// range; onChange publishes only when a value changed.
func TestAutoEvents(t *testing.T) {
	sim, b := startWithBroker(t, Options{AutoEvents: true})
	events := subscribe(t, b.URL(), "edgex/events/device/#")
	if _, err := sim.AddDeviceService(DemoService()); err != nil {
		t.Fatal(err)
	}
	for _, p := range DemoProfiles() {
		if _, err := sim.AddDeviceProfile(p); err != nil {
			t.Fatal(err)
		}
	}
	sensor := demoDevice("fast-sensor", ProfileSensor, dtos.AutoEvent{Interval: "20ms", SourceName: "temperature"})
	gpio := demoDevice("fast-gpio", ProfileGPIO, dtos.AutoEvent{Interval: "20ms", OnChange: true, SourceName: "pin_17"})
	for _, d := range []dtos.Device{sensor, gpio} {
		if _, err := sim.AddDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	temps := events.waitFor(t, 10, onTopicPrefix("edgex/events/device/device-virtual/Simulated-Sensor/fast-sensor/temperature"))
	distinct := map[string]bool{}
	for _, m := range temps {
		ev := decodeEvent(t, m)
		v, err := strconv.ParseFloat(ev.Readings[0].Value, 32)
		if err != nil || v < -20 || v > 60 {
			t.Errorf("temperature %q outside the profile's range", ev.Readings[0].Value)
		}
		distinct[ev.Readings[0].Value] = true
	}
	if len(distinct) < 2 {
		t.Errorf("temperature never changed over %d readings", len(temps))
	}

	pin := onTopicPrefix("edgex/events/device/device-virtual/Simulated-GPIO/fast-gpio/pin_17")
	first := events.waitFor(t, 1, pin)
	if v := decodeEvent(t, first[0]).Readings[0].Value; v != "false" {
		t.Fatalf("first pin_17 event %q", v)
	}
	got := call(t, "PUT", commandURL(sim, "fast-gpio", "pin_17"), `{"pin_17":"true"}`)
	if got.status != 200 {
		t.Fatal(got.body)
	}
	// The write itself publishes one event; onChange then publishes the new
	// value once. An unchanged "false" in between would mean onChange
	// published without a change.
	later := events.waitFor(t, 3, pin)
	for _, m := range later[1:3] {
		if v := decodeEvent(t, m).Readings[0].Value; v != "true" {
			t.Errorf("pin_17 events after the write: %v", topicsOf(later))
		}
	}
}

func decodeEvent(t testing.TB, m received) dtos.Event {
	t.Helper()
	env, err := messagebus.DecodeEnvelope(m.payload)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := messagebus.DecodeEvent(env)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestPublishReadingsAndEvents(t *testing.T) {
	sim, b := startWithBroker(t, Options{})
	events := subscribe(t, b.URL(), "edgex/events/device/#")
	if err := sim.SeedDemo(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sim.PublishReadings(ctx, "env-sensor-01", map[string]string{"temperature": "30.5", "humidity": "40"}); err != nil {
		t.Fatal(err)
	}
	if err := sim.PublishEvent(ctx, "camera-01", "snapshot"); err != nil {
		t.Fatal(err)
	}
	got := events.waitFor(t, 2, nil)
	env := decodeEvent(t, got[0])
	if got[0].topic != "edgex/events/device/device-virtual/Simulated-Sensor/env-sensor-01/environment" ||
		len(env.Readings) != 2 || env.Readings[0].Value != "3.050000e+01" || env.Readings[0].Units != "degC" {
		t.Errorf("readings event on %s: %+v", got[0].topic, env.Readings)
	}
	if v, _ := sim.Value("env-sensor-01", "humidity"); v != "4.000000e+01" {
		t.Errorf("published humidity did not become current: %s", v)
	}
	if wireOf(t, got[1].payload).ContentType != "application/cbor" {
		t.Errorf("binary event sent as %s", wireOf(t, got[1].payload).ContentType)
	}
	if err := sim.PublishReadings(ctx, "env-sensor-01", map[string]string{"pressure": "1"}); err == nil {
		t.Error("published a resource the profile does not have")
	}
	noBus := seededDemo(t, Options{})
	if err := noBus.PublishEvent(ctx, "camera-01", "snapshot"); err == nil {
		t.Error("published without a message bus")
	}
}

func TestSystemEventsForEdgeSideChanges(t *testing.T) {
	sim, b := startWithBroker(t, Options{})
	events := subscribe(t, b.URL(), "edgex/system-events/#")
	if err := sim.SeedDemo(context.Background()); err != nil {
		t.Fatal(err)
	}
	name, locked := "camera-01", string(models.Locked)
	if err := sim.UpdateDevice(dtos.UpdateDevice{Name: &name, AdminState: &locked}); err != nil {
		t.Fatal(err)
	}
	profile := DemoProfiles()[2]
	profile.Description = "new description"
	if err := sim.UpdateDeviceProfile(profile); err != nil {
		t.Fatal(err)
	}
	if err := sim.DeleteDevice(name); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"deviceservice/add/device-virtual",
		"deviceprofile/add/core-metadata/Simulated-GPIO",
		"deviceprofile/add/core-metadata/Simulated-Sensor",
		"deviceprofile/add/core-metadata/Simulated-Camera",
		"device/add/device-virtual/Simulated-GPIO",
		"device/add/device-virtual/Simulated-Sensor",
		"device/add/device-virtual/Simulated-Camera",
		"device/update/device-virtual/Simulated-Camera",
		"deviceprofile/update/core-metadata/Simulated-Camera",
		"deviceprofile/update/device-virtual/Simulated-Camera",
		"device/delete/device-virtual/Simulated-Camera",
	}
	got := events.waitFor(t, len(want), nil)
	for i, w := range want {
		if got[i].topic != "edgex/system-events/core-metadata/"+w {
			t.Errorf("event %d on %s, want %s", i, got[i].topic, w)
		}
	}
	se, err := messagebus.DecodeSystemEvent(messagebus.Envelope{ContentType: "application/json", Payload: wireOf(t, got[7].payload).Payload})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := se.Device(); err != nil || d.AdminState != locked {
		t.Errorf("update event carries %+v (%v)", d, err)
	}

	sim.Wipe()
	if len(sim.Devices()) != 0 || len(sim.Profiles()) != 0 || len(sim.Services()) != 0 {
		t.Fatal("Wipe left objects behind")
	}
	page := decodeAs[responses.MultiDevicesResponse](t, call(t, "GET", sim.MetadataURL()+"/api/v3/device/all", ""))
	if page.TotalCount != 0 || len(page.Devices) != 0 {
		t.Errorf("after Wipe core-metadata lists %d devices", page.TotalCount)
	}
	// The next change's event must come right after the delete: the wipe
	// announced nothing.
	if _, err := sim.AddDeviceService(DemoService()); err != nil {
		t.Fatal(err)
	}
	got = events.waitFor(t, len(want)+1, nil)
	if len(got) != len(want)+1 || got[len(want)].topic != "edgex/system-events/core-metadata/deviceservice/add/device-virtual" {
		t.Errorf("events after Wipe: %s", topicsOf(got[len(want):]))
	}
}
