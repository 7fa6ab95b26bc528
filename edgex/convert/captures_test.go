package convert

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// capturedObjects are the objects a real EdgeX 3.1.1 answered or was sent,
// decoded as the bridge's REST client decodes them (UseNumber).
type capturedObjects struct {
	devices  map[string]dtos.Device
	profiles map[string]dtos.DeviceProfile
	services map[string]dtos.DeviceService
}

func decodeUseNumber(t testing.TB, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %.200s: %v", data, err)
	}
}

func loadCaptured(t testing.TB) capturedObjects {
	t.Helper()
	exchanges, err := captures.Exchanges()
	if err != nil {
		t.Fatal(err)
	}
	objs := capturedObjects{map[string]dtos.Device{}, map[string]dtos.DeviceProfile{}, map[string]dtos.DeviceService{}}
	for _, ex := range exchanges {
		var body struct {
			Devices  []dtos.Device        `json:"devices"`
			Profiles []dtos.DeviceProfile `json:"profiles"`
			Profile  *dtos.DeviceProfile  `json:"profile"`
			Services []dtos.DeviceService `json:"services"`
		}
		switch {
		case strings.HasPrefix(ex.File, "01-"), strings.HasPrefix(ex.File, "02-"),
			strings.HasPrefix(ex.File, "03-"), strings.HasPrefix(ex.File, "13-"):
			decodeUseNumber(t, []byte(ex.ResponseBody), &body)
		default:
			continue
		}
		for _, d := range body.Devices {
			objs.devices[ex.File+"/"+d.Name] = d
		}
		for _, p := range body.Profiles {
			objs.profiles[ex.File+"/"+p.Name] = p
		}
		if body.Profile != nil {
			objs.profiles[ex.File+"/"+body.Profile.Name] = *body.Profile
		}
		for _, s := range body.Services {
			objs.services[ex.File+"/"+s.Name] = s
		}
	}
	var profileAdd []struct{ Profile dtos.DeviceProfile }
	var deviceAdd []struct{ Device dtos.Device }
	decodeUseNumber(t, readCapture(t, "exchanges/profile-add.json"), &profileAdd)
	decodeUseNumber(t, readCapture(t, "exchanges/device-add.json"), &deviceAdd)
	for _, r := range profileAdd {
		objs.profiles["profile-add.json/"+r.Profile.Name] = r.Profile
	}
	for _, r := range deviceAdd {
		objs.devices["device-add.json/"+r.Device.Name] = r.Device
	}
	if len(objs.devices) < 6 || len(objs.profiles) < 4 || len(objs.services) < 1 {
		t.Fatalf("captures hold %d devices, %d profiles, %d services; expected the full set",
			len(objs.devices), len(objs.profiles), len(objs.services))
	}
	return objs
}

func readCapture(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := captures.File(rel)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The real objects must come back exactly: same Go values (reflect, not
// the semantic comparison) and the same bytes on the wire.
func TestCapturedObjectsRoundTrip(t *testing.T) {
	objs := loadCaptured(t)
	for name, original := range objs.devices {
		t.Run("device/"+name, func(t *testing.T) {
			back, err := DeviceToEdgeX(&v1alpha1.Device{ObjectMeta: named(original.Name), Spec: DeviceFromEdgeX(original)})
			if err != nil {
				t.Fatal(err)
			}
			assertIdentical(t, withoutDBFields(original, clearDevice), back)
		})
	}
	for name, original := range objs.profiles {
		t.Run("profile/"+name, func(t *testing.T) {
			back, err := ProfileToEdgeX(&v1alpha1.DeviceProfile{ObjectMeta: named(original.Name), Spec: ProfileFromEdgeX(original)})
			if err != nil {
				t.Fatal(err)
			}
			assertIdentical(t, withoutDBFields(original, clearProfile), back)
		})
	}
	for name, original := range objs.services {
		t.Run("service/"+name, func(t *testing.T) {
			back, err := ServiceToEdgeX(&v1alpha1.DeviceService{ObjectMeta: named(original.Name), Spec: ServiceFromEdgeX(original)})
			if err != nil {
				t.Fatal(err)
			}
			assertIdentical(t, withoutDBFields(original, clearService), back)
		})
	}
}

func assertIdentical(t *testing.T, want, got any) {
	t.Helper()
	wantJSON, gotJSON := dump(want), dump(got)
	if wantJSON != gotJSON {
		t.Fatalf("wire form changed\nwant %s\ngot  %s", wantJSON, gotJSON)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("values changed\nwant %#v\ngot  %#v", want, got)
	}
}

// What a person sees of the captured mixed profile and device.
func TestCapturedObjectsAsSpecs(t *testing.T) {
	objs := loadCaptured(t)
	profile := ProfileFromEdgeX(objs.profiles["13-deviceprofile-get.txt/Test-GPIO-Sensor-Camera"])
	byName := map[string]v1alpha1.ResourceProperties{}
	for _, r := range profile.DeviceResources {
		byName[r.Name] = r.Properties
	}
	if p := byName["counter"]; p.Minimum != "0" || p.Maximum != "1000" || p.ValueType != "Int32" || p.ReadWrite != "RW" {
		t.Errorf("counter = %+v, want Int32 RW 0..1000", p)
	}
	if p := byName["temperature"]; p.Minimum != "-20" || p.Maximum != "60" || p.Units != "degC" {
		t.Errorf("temperature = %+v, want -20..60 degC", p)
	}
	if p := byName["snapshot"]; p.MediaType != "image/jpeg" || p.ValueType != "Binary" {
		t.Errorf("snapshot = %+v, want Binary image/jpeg", p)
	}
	if ops := profile.DeviceCommands[0].ResourceOperations; len(ops) != 2 || ops[0].Mappings != nil {
		t.Errorf("sensors command operations = %+v, want two without mappings", ops)
	}

	device := DeviceFromEdgeX(objs.devices["03-device-all.txt/Random-Boolean-Device"])
	if got := device.Protocols["other"]["Port"]; got != "300" {
		t.Errorf("protocol Port shows %q, want 300", got)
	}
	if got := string(device.TypedProtocols["other"]["Port"].Raw); got != "300" {
		t.Errorf("protocol Port typed as %q, want the number 300", got)
	}
	if _, typed := device.TypedProtocols["other"]["Address"]; typed {
		t.Error("a string protocol property must not get a typed copy")
	}
}
