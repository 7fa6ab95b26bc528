package messagebus

import (
	"strings"
	"testing"

	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// Every message a real EdgeX 3.1.1 put on the bus decodes: each event into
// a device event with readings, each system event into its typed object.
func TestCapturedMessagesDecode(t *testing.T) {
	topics := Topics{Prefix: "edgex"}
	var events, systemEvents, binary int
	for _, file := range []string{"mqtt-startup.txt", "mqtt-session1.txt"} {
		msgs, err := captures.MQTT(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			env, err := DecodeEnvelope(m.Payload)
			if err != nil {
				t.Errorf("%s:%d %s: %v", m.File, m.Line, m.Topic, err)
				continue
			}
			switch {
			case strings.HasPrefix(m.Topic, "edgex/events/device/"):
				ev, err := DecodeEvent(env)
				if err != nil {
					t.Errorf("%s:%d: %v", m.File, m.Line, err)
					continue
				}
				if len(ev.Readings) == 0 || !strings.HasSuffix(m.Topic, "/"+ev.DeviceName+"/"+ev.SourceName) {
					t.Errorf("%s:%d: event %s/%s does not match topic %s", m.File, m.Line, ev.DeviceName, ev.SourceName, m.Topic)
				}
				if topics.Event("device-virtual", ev.ProfileName, ev.DeviceName, ev.SourceName) != m.Topic {
					t.Errorf("%s:%d: Topics.Event does not rebuild %s", m.File, m.Line, m.Topic)
				}
				for _, r := range ev.Readings {
					if r.ValueType == "Binary" {
						binary++
						if len(r.BinaryValue) == 0 || r.MediaType == "" {
							t.Errorf("%s:%d: binary reading lost its value or media type", m.File, m.Line)
						}
					}
				}
				events++
			case strings.HasPrefix(m.Topic, "edgex/system-events/"):
				se, err := DecodeSystemEvent(env)
				if err != nil {
					t.Errorf("%s:%d: %v", m.File, m.Line, err)
					continue
				}
				var name string
				switch se.Type {
				case KindDevice:
					d, err := se.Device()
					if err != nil {
						t.Errorf("%s:%d: %v", m.File, m.Line, err)
					}
					name = d.Name
					if topics.SystemEvent(se.Type, se.Action, se.Owner, d.ProfileName) != m.Topic {
						t.Errorf("%s:%d: Topics.SystemEvent does not rebuild %s", m.File, m.Line, m.Topic)
					}
				case KindDeviceProfile:
					p, err := se.Profile()
					if err != nil {
						t.Errorf("%s:%d: %v", m.File, m.Line, err)
					}
					name = p.Name
				case KindDeviceService:
					s, err := se.Service()
					if err != nil {
						t.Errorf("%s:%d: %v", m.File, m.Line, err)
					}
					name = s.Name
				}
				if name == "" || se.Timestamp == 0 {
					t.Errorf("%s:%d: system event without name or timestamp", m.File, m.Line)
				}
				systemEvents++
			}
		}
	}
	if events == 0 || systemEvents == 0 || binary == 0 {
		t.Fatalf("decoded %d events (%d binary) and %d system events; the captures hold all three", events, binary, systemEvents)
	}
}

func TestParseCommandRequest(t *testing.T) {
	topics := Topics{Prefix: "edgex"}
	cases := []struct {
		topic                   string
		device, command, method string
		ok                      bool
	}{
		{"edgex/command/request/test-device-01/gpio_out_1/set", "test-device-01", "gpio_out_1", "set", true},
		{"edgex/command/request/test-device-01/gpio_out_1/get", "test-device-01", "gpio_out_1", "get", true},
		{"edgex/command/request/test-device-01/gpio_out_1/put", "", "", "", false},
		{"edgex/command/request/test-device-01/get", "", "", "", false},
		{"other/command/request/a/b/get", "", "", "", false},
	}
	for _, tc := range cases {
		d, c, m, ok := topics.ParseCommandRequest(tc.topic)
		if ok != tc.ok || d != tc.device || c != tc.command || m != tc.method {
			t.Errorf("ParseCommandRequest(%q) = %q %q %q %v", tc.topic, d, c, m, ok)
		}
		if ok && topics.CommandRequest(d, c, m) != tc.topic {
			t.Errorf("CommandRequest does not rebuild %q", tc.topic)
		}
	}
}
