package convert

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

func TestDeviceToEdgeXNameAndStates(t *testing.T) {
	cases := []struct {
		name      string
		meta      metav1.ObjectMeta
		spec      v1alpha1.DeviceSpec
		wantName  string
		wantAdmin string
		wantOp    string
	}{
		{
			name: "applied in the cloud: named as in Kubernetes, usual states",
			meta: metav1.ObjectMeta{Name: "gpio-1"}, wantName: "gpio-1", wantAdmin: "UNLOCKED", wantOp: "UP",
		},
		{
			name:     "imported: the annotation keeps the EdgeX name",
			meta:     metav1.ObjectMeta{Name: "pool-a-cam-01-1a2b", Annotations: map[string]string{v1alpha1.EdgeXNameAnnotation: "Cam_01"}},
			wantName: "Cam_01", wantAdmin: "UNLOCKED", wantOp: "UP",
		},
		{
			name:     "imported by yurt-iot-dock: the label keeps the EdgeX name",
			meta:     metav1.ObjectMeta{Name: "cam-01", Labels: map[string]string{v1alpha1.LegacyEdgeXNameLabel: "Cam_01"}},
			wantName: "Cam_01", wantAdmin: "UNLOCKED", wantOp: "UP",
		},
		{
			name:     "explicit states are kept",
			meta:     metav1.ObjectMeta{Name: "locked"},
			spec:     v1alpha1.DeviceSpec{AdminState: v1alpha1.Locked, OperatingState: v1alpha1.Down},
			wantName: "locked", wantAdmin: "LOCKED", wantOp: "DOWN",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dto, err := DeviceToEdgeX(&v1alpha1.Device{ObjectMeta: tc.meta, Spec: tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			if dto.Name != tc.wantName || dto.AdminState != tc.wantAdmin || dto.OperatingState != tc.wantOp {
				t.Errorf("got name %q admin %q operating %q, want %q %q %q",
					dto.Name, dto.AdminState, dto.OperatingState, tc.wantName, tc.wantAdmin, tc.wantOp)
			}
		})
	}
	if _, err := DeviceToEdgeX(&v1alpha1.Device{}); err == nil {
		t.Error("a device without any name must be refused")
	}
}

// nil means "leave EdgeX's as they are", empty means "clear them"; the DTO
// must keep the difference for DeviceUpdate.
func TestDeviceToEdgeXKeepsManagedCollections(t *testing.T) {
	unmanaged, err := DeviceToEdgeX(&v1alpha1.Device{ObjectMeta: named("d")})
	if err != nil {
		t.Fatal(err)
	}
	if unmanaged.AutoEvents != nil || unmanaged.Tags != nil || unmanaged.Properties != nil || unmanaged.Location != nil {
		t.Errorf("unmanaged fields must stay nil: %s", dump(unmanaged))
	}
	cleared, err := DeviceToEdgeX(&v1alpha1.Device{ObjectMeta: named("d"), Spec: v1alpha1.DeviceSpec{
		AutoEvents: []v1alpha1.AutoEvent{}, Tags: map[string]apiextensionsv1.JSON{}, Properties: map[string]apiextensionsv1.JSON{},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cleared.AutoEvents == nil || cleared.Tags == nil || cleared.Properties == nil {
		t.Errorf("empty (clearing) fields must stay empty, not nil: %#v", cleared)
	}
}

func TestDeviceToEdgeXRefusesBrokenJSON(t *testing.T) {
	_, err := DeviceToEdgeX(&v1alpha1.Device{ObjectMeta: named("d"), Spec: v1alpha1.DeviceSpec{
		Tags: map[string]apiextensionsv1.JSON{"site": {Raw: []byte(`{"unclosed"`)}},
	}})
	if err == nil || !strings.Contains(err.Error(), `"site"`) {
		t.Errorf("got %v, want an error naming the tag", err)
	}
}

func TestTypedProtocolValues(t *testing.T) {
	fromEdge := storedSpec(t, DeviceFromEdgeX(dtos.Device{Protocols: map[string]dtos.ProtocolProperties{
		"modbus-tcp": {"Address": "10.0.0.5", "Port": json.Number("502"), "UnitID": json.Number("1.0"), "Secure": false,
			"Options": map[string]any{"b": json.Number("2"), "a": "<x>"}},
	}}))
	wantShown := v1alpha1.ProtocolProperties{"Address": "10.0.0.5", "Port": "502", "UnitID": "1.0", "Secure": "false", "Options": `{"a":"<x>","b":2}`}
	if got := fromEdge.Protocols["modbus-tcp"]; !equalStringMaps(got, wantShown) {
		t.Fatalf("shown as %v, want %v", got, wantShown)
	}
	if _, typed := fromEdge.TypedProtocols["modbus-tcp"]["Address"]; typed {
		t.Error("a string value must not get a typed copy")
	}

	cases := []struct {
		name string
		edit func(*v1alpha1.DeviceSpec)
		key  string
		want any
	}{
		{"untouched number stays a number", func(*v1alpha1.DeviceSpec) {}, "Port", json.Number("502")},
		{"untouched boolean stays a boolean", func(*v1alpha1.DeviceSpec) {}, "Secure", false},
		{"untouched object stays an object", func(*v1alpha1.DeviceSpec) {}, "Options", map[string]any{"a": "<x>", "b": json.Number("2")}},
		{"string value stays a string", func(*v1alpha1.DeviceSpec) {}, "Address", "10.0.0.5"},
		{"an edit of the string field wins", func(s *v1alpha1.DeviceSpec) { s.Protocols["modbus-tcp"]["Port"] = "503" }, "Port", "503"},
		{
			"the number keeps its digits when the API server re-encoded the typed copy",
			func(s *v1alpha1.DeviceSpec) {
				s.TypedProtocols["modbus-tcp"]["UnitID"] = apiextensionsv1.JSON{Raw: []byte("1")}
			},
			"UnitID", json.Number("1.0"),
		},
		{
			"a typed copy without its string field is dropped with it",
			func(s *v1alpha1.DeviceSpec) { delete(s.Protocols["modbus-tcp"], "Port") }, "Port", nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := *fromEdge.DeepCopy()
			tc.edit(&spec)
			dto, err := DeviceToEdgeX(&v1alpha1.Device{ObjectMeta: named("d"), Spec: spec})
			if err != nil {
				t.Fatal(err)
			}
			got := dto.Protocols["modbus-tcp"][tc.key]
			if dump(got) != dump(tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("%s sent as %#v, want %#v", tc.key, got, tc.want)
			}
		})
	}
}

func equalStringMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestLocationOfAnyShape(t *testing.T) {
	cases := []struct {
		name      string
		location  any
		wantShown string
		wantTyped string // "" for none
	}{
		{"none", nil, "", ""},
		{"a plain string", "building 7, floor 2", "building 7, floor 2", ""},
		{"an empty string", "", "", `""`},
		{"a string that looks like JSON", `{"x":1}`, `{"x":1}`, ""},
		{"a number", json.Number("42"), "42", "42"},
		{"a float64", 52.52, "52.52", "52.52"},
		{"a boolean", true, "true", "true"},
		// The typed copy is stored as the API server keeps it; the shown text
		// keeps EdgeX's digits, and it is what goes back.
		{"an object", map[string]any{"lat": json.Number("52.52"), "lon": json.Number("13.40")}, `{"lat":52.52,"lon":13.40}`, `{"lat":52.52,"lon":13.4}`},
		{"HTML characters", map[string]any{"note": "<a&b>"}, `{"note":"<a&b>"}`, `{"note":"\u003ca\u0026b\u003e"}`},
		{"a big integer", json.Number("12345678901234567890"), "12345678901234567890", "12345678901234567000"},
		{"an array", []any{json.Number("1"), "two", nil}, `[1,"two",null]`, `[1,"two",null]`},
		{"nested", map[string]any{"site": map[string]any{"rooms": []any{map[string]any{}, []any{}}}}, `{"site":{"rooms":[{},[]]}}`, `{"site":{"rooms":[{},[]]}}`},
		{"unicode", map[string]any{"名前": "倉庫"}, `{"名前":"倉庫"}`, `{"名前":"倉庫"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := storedSpec(t, DeviceFromEdgeX(dtos.Device{Location: tc.location}))
			typed := ""
			if spec.TypedLocation != nil {
				typed = string(spec.TypedLocation.Raw)
			}
			if spec.Location != tc.wantShown || typed != tc.wantTyped {
				t.Errorf("shown %q typed %q, want %q typed %q", spec.Location, typed, tc.wantShown, tc.wantTyped)
			}
			dto, err := DeviceToEdgeX(&v1alpha1.Device{ObjectMeta: named("d"), Spec: spec})
			if err != nil {
				t.Fatal(err)
			}
			if (dto.Location == nil) != (tc.location == nil) || dump(dto.Location) != dump(tc.location) {
				t.Errorf("sent back %#v, want %#v", dto.Location, tc.location)
			}
		})
	}
}

func baseDevice() dtos.Device {
	return dtos.Device{
		Name: "thermo-1", Description: "hall", AdminState: "UNLOCKED", OperatingState: "UP",
		Labels: []string{"hall"}, Location: "hall", ServiceName: "device-virtual", ProfileName: "thermo",
		AutoEvents: []dtos.AutoEvent{{Interval: "10s", SourceName: "temperature"}},
		Protocols:  map[string]dtos.ProtocolProperties{"other": {"Address": "t1", "Port": json.Number("300")}},
		Tags:       map[string]any{"site": "berlin"},
		Properties: map[string]any{"poll": json.Number("5")},
	}
}

func TestDeviceUpdate(t *testing.T) {
	cases := []struct {
		name string
		want func(*dtos.Device)
		have func(*dtos.Device)
		// patched lists the JSON fields the PATCH must carry besides name;
		// every other field must be null, which EdgeX leaves alone.
		patched []string
		check   func(t *testing.T, p dtos.UpdateDevice)
	}{
		{name: "equal devices need no patch"},
		{
			name: "database fields do not count",
			have: func(d *dtos.Device) { d.Id, d.Created, d.Modified = "e6a1d561-1682-4a83-a4df-086a5e5657fd", 1, 2 },
		},
		{name: "a changed description", want: func(d *dtos.Device) { d.Description = "lobby" }, patched: []string{"description"}},
		{name: "locking", want: func(d *dtos.Device) { d.AdminState = "LOCKED" }, patched: []string{"adminState"}},
		{name: "a device service marking it down", have: func(d *dtos.Device) { d.OperatingState = "DOWN" }, patched: []string{"operatingState"}},
		{name: "another profile and service", want: func(d *dtos.Device) { d.ProfileName, d.ServiceName = "p2", "s2" }, patched: []string{"profileName", "serviceName"}},
		{
			name: "removing all labels sends an empty list", want: func(d *dtos.Device) { d.Labels = nil }, patched: []string{"labels"},
			check: func(t *testing.T, p dtos.UpdateDevice) {
				if p.Labels == nil || len(p.Labels) != 0 {
					t.Errorf("labels = %#v, want an empty list", p.Labels)
				}
			},
		},
		{name: "unmanaged location is left alone", want: func(d *dtos.Device) { d.Location = nil }},
		{name: "a moved device", want: func(d *dtos.Device) { d.Location = map[string]any{"room": json.Number("7")} }, patched: []string{"location"}},
		{name: "a location number in another representation", want: func(d *dtos.Device) { d.Location = 7.0 }, have: func(d *dtos.Device) { d.Location = json.Number("7") }},
		{name: "unmanaged auto events are left alone", want: func(d *dtos.Device) { d.AutoEvents = nil }},
		{
			name: "empty auto events clear EdgeX's", want: func(d *dtos.Device) { d.AutoEvents = []dtos.AutoEvent{} }, patched: []string{"autoEvents"},
			check: func(t *testing.T, p dtos.UpdateDevice) {
				if p.AutoEvents == nil || len(p.AutoEvents) != 0 {
					t.Errorf("autoEvents = %#v, want an empty list", p.AutoEvents)
				}
			},
		},
		{name: "a faster auto event", want: func(d *dtos.Device) { d.AutoEvents[0].Interval = "1s" }, patched: []string{"autoEvents"}},
		{name: "a port given as float64 equals the json.Number", want: func(d *dtos.Device) { d.Protocols["other"]["Port"] = 300.0 }},
		{name: "a port given as a string differs from the number", want: func(d *dtos.Device) { d.Protocols["other"]["Port"] = "300" }, patched: []string{"protocols"}},
		{name: "no protocols cannot mean clearing them", want: func(d *dtos.Device) { d.Protocols = nil }},
		{name: "unmanaged tags and properties are left alone", want: func(d *dtos.Device) { d.Tags, d.Properties = nil, nil }},
		{name: "empty tags clear EdgeX's", want: func(d *dtos.Device) { d.Tags = map[string]any{} }, patched: []string{"tags"}},
		{name: "empty tags match no tags", want: func(d *dtos.Device) { d.Tags = map[string]any{} }, have: func(d *dtos.Device) { d.Tags = nil }},
		{name: "a changed property", want: func(d *dtos.Device) { d.Properties["poll"] = json.Number("6") }, patched: []string{"properties"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, have := baseDevice(), baseDevice()
			if tc.want != nil {
				tc.want(&want)
			}
			if tc.have != nil {
				tc.have(&have)
			}
			patch, changed := DeviceUpdate(want, have)
			if changed != (len(tc.patched) > 0) {
				t.Fatalf("changed = %v, want %v (patch %s)", changed, !changed, dump(patch))
			}
			if patch.Name == nil || *patch.Name != "thermo-1" {
				t.Fatalf("the patch must name the device: %s", dump(patch))
			}
			assertPatchFields(t, patch, append([]string{"name"}, tc.patched...))
			if tc.check != nil {
				tc.check(t, patch)
			}
		})
	}
}

// assertPatchFields checks which fields a PATCH body carries: EdgeX
// changes exactly the fields that are not null.
func assertPatchFields(t *testing.T, patch any, want []string) {
	t.Helper()
	var fields map[string]any
	if err := json.Unmarshal([]byte(dump(patch)), &fields); err != nil {
		t.Fatal(err)
	}
	wanted := map[string]bool{}
	for _, f := range want {
		wanted[f] = true
	}
	for name, v := range fields {
		if (v != nil) != wanted[name] {
			t.Errorf("field %s = %v; want it set: %v", name, v, wanted[name])
		}
	}
}
