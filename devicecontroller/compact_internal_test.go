package devicecontroller

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
)

// The mirror of EdgeX keeps an encoded copy of each device: decoded, it is
// equal to what EdgeX said in every field (nil and empty alike, which decide
// what a patch sends; numbers as the EdgeX client decodes them), and the
// caller's copy is untouched.
func TestKeptDeviceKeepsEveryValue(t *testing.T) {
	cases := map[string]dtos.Device{
		"a full device": {
			Id: "4f7c", Name: "dev-1", Description: "benchmark device", AdminState: "UNLOCKED", OperatingState: "UP",
			Labels: []string{"bench", "floor-2"}, Location: map[string]any{"room": json.Number("7")},
			ServiceName: "svc", ProfileName: "profile",
			AutoEvents:  []dtos.AutoEvent{{Interval: "10s", SourceName: "all", OnChange: true}},
			Protocols:   map[string]dtos.ProtocolProperties{"modbus-tcp": {"Address": "10.0.0.1", "Port": json.Number("502")}, "empty": {}, "none": nil},
			Tags:        map[string]any{"zone": "a", "floors": []any{json.Number("1"), json.Number("2.50")}, "on": true, "none": nil},
			Properties:  map[string]any{},
			DBTimestamp: dtos.DBTimestamp{Created: 1, Modified: 2},
		},
		"empty lists and maps": {
			Name: "dev-2", Labels: []string{}, AutoEvents: []dtos.AutoEvent{}, Protocols: map[string]dtos.ProtocolProperties{},
			Tags: map[string]any{}, Location: "",
		},
		"nothing set": {Name: "dev-3"},
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			before, _ := json.Marshal(d)
			encoded, err := deviceKind{}.encode(d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := deviceKind{}.decode(encoded)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, d) {
				t.Errorf("kept %+v\nfrom %+v", got, d)
			}
			if after, _ := json.Marshal(d); string(after) != string(before) {
				t.Errorf("the caller's device changed: %s, was %s", after, before)
			}
		})
	}
}

// The interner is bounded: past its size, or for long strings, it hands
// strings back unshared rather than growing.
func TestInternerIsBounded(t *testing.T) {
	in := newInterner(2, 8)
	a := in.intern(strings.Clone("alpha"))
	if got := in.intern(strings.Clone("alpha")); got != a || in.intern("beta") != "beta" {
		t.Fatalf("interned %q, %q", got, a)
	}
	for _, s := range []string{"gamma", "a string longer than eight"} {
		if in.intern(s) != s {
			t.Errorf("intern(%q) changed it", s)
		}
	}
	if len(in.m) != 2 {
		t.Errorf("the interner holds %d strings, want at most 2", len(in.m))
	}
}
