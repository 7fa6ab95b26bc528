package convert

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

func TestResourcePropertiesNumbers(t *testing.T) {
	cases := []struct {
		name      string
		in        v1alpha1.ResourceProperties
		wantEdge  dtos.ResourceProperties
		wantShown v1alpha1.ResourceProperties // the spec EdgeX's copy mirrors to
	}{
		{
			name:      "absent numbers stay absent",
			in:        v1alpha1.ResourceProperties{ValueType: "Bool", ReadWrite: "RW"},
			wantEdge:  dtos.ResourceProperties{ValueType: "Bool", ReadWrite: "RW"},
			wantShown: v1alpha1.ResourceProperties{ValueType: "Bool", ReadWrite: "RW"},
		},
		{
			name:      "a Modbus register keeps its digits",
			in:        v1alpha1.ResourceProperties{Minimum: "40001", Maximum: "49999"},
			wantEdge:  dtos.ResourceProperties{Minimum: ptr(40001.0), Maximum: ptr(49999.0)},
			wantShown: v1alpha1.ResourceProperties{Minimum: "40001", Maximum: "49999"},
		},
		{
			name:      "decimals stay decimal",
			in:        v1alpha1.ResourceProperties{Scale: "0.1", Offset: "-273.15", Base: "2"},
			wantEdge:  dtos.ResourceProperties{Scale: ptr(0.1), Offset: ptr(-273.15), Base: ptr(2.0)},
			wantShown: v1alpha1.ResourceProperties{Scale: "0.1", Offset: "-273.15", Base: "2"},
		},
		{
			name:      "other spellings keep the value, shown as EdgeX writes it",
			in:        v1alpha1.ResourceProperties{Minimum: "1e3", Maximum: "+5.", Scale: ".5", Offset: "1E21"},
			wantEdge:  dtos.ResourceProperties{Minimum: ptr(1000.0), Maximum: ptr(5.0), Scale: ptr(0.5), Offset: ptr(1e21)},
			wantShown: v1alpha1.ResourceProperties{Minimum: "1000", Maximum: "5", Scale: "0.5", Offset: "1e+21"},
		},
		{
			name:      "a hex mask, shown in decimal as EdgeX's API shows it",
			in:        v1alpha1.ResourceProperties{Mask: "0xFF00", Shift: "-8"},
			wantEdge:  dtos.ResourceProperties{Mask: ptr(uint64(0xFF00)), Shift: ptr(int64(-8))},
			wantShown: v1alpha1.ResourceProperties{Mask: "65280", Shift: "-8"},
		},
		{
			name:      "a leading zero is decimal, not octal",
			in:        v1alpha1.ResourceProperties{Mask: "010"},
			wantEdge:  dtos.ResourceProperties{Mask: ptr(uint64(10))},
			wantShown: v1alpha1.ResourceProperties{Mask: "10"},
		},
		{
			name:      "the widest mask and shift",
			in:        v1alpha1.ResourceProperties{Mask: "0xffffffffffffffff", Shift: "-9223372036854775808"},
			wantEdge:  dtos.ResourceProperties{Mask: ptr(uint64(1<<64 - 1)), Shift: ptr(int64(-1 << 63))},
			wantShown: v1alpha1.ResourceProperties{Mask: "18446744073709551615", Shift: "-9223372036854775808"},
		},
		{
			name:      "optional values keep their JSON types",
			in:        v1alpha1.ResourceProperties{Optional: map[string]apiextensionsv1.JSON{"precision": {Raw: []byte("3")}, "note": {Raw: []byte(`"x"`)}}},
			wantEdge:  dtos.ResourceProperties{Optional: map[string]any{"precision": json.Number("3"), "note": "x"}},
			wantShown: v1alpha1.ResourceProperties{Optional: map[string]apiextensionsv1.JSON{"precision": {Raw: []byte("3")}, "note": {Raw: []byte(`"x"`)}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResourcePropertiesToEdgeX(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !sameProperties(got, tc.wantEdge) {
				t.Errorf("EdgeX gets %s, want %s", dump(got), dump(tc.wantEdge))
			}
			if shown := ResourcePropertiesFromEdgeX(got); dump(shown) != dump(tc.wantShown) {
				t.Errorf("mirrored as %s, want %s", dump(shown), dump(tc.wantShown))
			}
		})
	}
}

func TestResourcePropertiesRefusesWhatEdgeXCannotHold(t *testing.T) {
	cases := []struct {
		name string
		in   v1alpha1.ResourceProperties
		want string
	}{
		{"not a number", v1alpha1.ResourceProperties{Minimum: "low"}, "minimum"},
		{"infinity by name", v1alpha1.ResourceProperties{Maximum: "Inf"}, "maximum"},
		{"beyond float64", v1alpha1.ResourceProperties{Scale: "1e400"}, "scale"},
		{"hex float", v1alpha1.ResourceProperties{Offset: "0x1p3"}, "offset"},
		{"mask wider than 64 bits", v1alpha1.ResourceProperties{Mask: "0x10000000000000000"}, "mask"},
		{"negative mask", v1alpha1.ResourceProperties{Mask: "-1"}, "mask"},
		{"fractional shift", v1alpha1.ResourceProperties{Shift: "1.5"}, "shift"},
		{"optional that is not JSON", v1alpha1.ResourceProperties{Optional: map[string]apiextensionsv1.JSON{"x": {Raw: []byte("{")}}}, "optional"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ResourcePropertiesToEdgeX(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}

func TestResourceTag(t *testing.T) {
	toEdge := func(r v1alpha1.DeviceResource) (dtos.DeviceResource, error) {
		p, err := ProfileToEdgeX(&v1alpha1.DeviceProfile{ObjectMeta: named("p"), Spec: v1alpha1.DeviceProfileSpec{DeviceResources: []v1alpha1.DeviceResource{r}}})
		if err != nil {
			return dtos.DeviceResource{}, err
		}
		return p.DeviceResources[0], nil
	}

	dr, err := toEdge(v1alpha1.DeviceResource{Name: "temp", Tag: "sensor", Tags: map[string]apiextensionsv1.JSON{"unit": {Raw: []byte(`"degC"`)}}})
	if err != nil {
		t.Fatal(err)
	}
	if dr.Tags[resourceTagKey] != "sensor" || dr.Tags["unit"] != "degC" {
		t.Errorf("EdgeX tags = %v, want tag kept under %q beside unit", dr.Tags, resourceTagKey)
	}
	back := resourceFromEdgeX(dr)
	if back.Tag != "sensor" || len(back.Tags) != 1 {
		t.Errorf("mirrored tag %q tags %v, want the tag lifted back out", back.Tag, back.Tags)
	}

	for _, v := range []any{json.Number("7"), "", map[string]any{"x": true}} {
		back := resourceFromEdgeX(dtos.DeviceResource{Name: "r", Tags: map[string]any{resourceTagKey: v}})
		if back.Tag != "" || !sameJSON(mustDecodeRaw(t, back.Tags[resourceTagKey].Raw), v) {
			t.Errorf("tag %#v: mirrored as tag %q tags %v; a value that is no v1 tag must stay in tags", v, back.Tag, back.Tags)
		}
	}

	_, err = toEdge(v1alpha1.DeviceResource{Name: "temp", Tag: "a", Tags: map[string]apiextensionsv1.JSON{resourceTagKey: {Raw: []byte(`"b"`)}}})
	if err == nil || !strings.Contains(err.Error(), "temp") {
		t.Errorf("tag given twice: got %v, want an error naming the resource", err)
	}
}

func mustDecodeRaw(t *testing.T, raw []byte) any {
	t.Helper()
	v, err := decodeRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAttributesAndHidden(t *testing.T) {
	edge := dtos.DeviceResource{
		Name: "hr", IsHidden: true,
		Attributes: map[string]any{"primaryTable": "HOLDING_REGISTERS", "startingAddress": json.Number("40001"), "rawType": "Int16"},
	}
	spec := resourceFromEdgeX(edge)
	if !spec.IsHidden {
		t.Error("isHidden lost")
	}
	if spec.Attributes["startingAddress"] != "40001" || string(spec.TypedAttributes["startingAddress"].Raw) != "40001" {
		t.Errorf("startingAddress shown %q typed %q, want 40001 and 40001", spec.Attributes["startingAddress"], spec.TypedAttributes["startingAddress"].Raw)
	}
	if len(spec.TypedAttributes) != 1 {
		t.Errorf("typed attributes %v: only the number needs a typed copy", spec.TypedAttributes)
	}
	back, err := resourceToEdgeX(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !sameResources([]dtos.DeviceResource{edge}, []dtos.DeviceResource{back}) || back.Attributes["startingAddress"] != json.Number("40001") {
		t.Errorf("sent back %s, want %s", dump(back), dump(edge))
	}
}

func baseProfile() dtos.DeviceProfile {
	return dtos.DeviceProfile{
		DeviceProfileBasicInfo: dtos.DeviceProfileBasicInfo{Name: "thermo", Manufacturer: "acme", Description: "thermometer", Model: "T1", Labels: []string{"hall"}},
		DeviceResources: []dtos.DeviceResource{{
			Name: "temperature", Properties: dtos.ResourceProperties{ValueType: "Float32", ReadWrite: "R", Minimum: ptr(-20.0), Maximum: ptr(60.0)},
			Attributes: map[string]any{"register": json.Number("3")},
		}},
		DeviceCommands: []dtos.DeviceCommand{{
			Name: "all", ReadWrite: "R", ResourceOperations: []dtos.ResourceOperation{{DeviceResource: "temperature"}},
		}},
	}
}

func TestProfileUpdate(t *testing.T) {
	cases := []struct {
		name        string
		want, have  func(*dtos.DeviceProfile)
		wantReplace bool
		wantBasic   []string // JSON fields of the basic-info PATCH besides name
	}{
		{name: "equal profiles need nothing"},
		{name: "database fields do not count", have: func(p *dtos.DeviceProfile) { p.Id, p.Created = "690e060d-4264-49f3-9902-f4beb4f7b33e", 5 }},
		{name: "a new description is a basic patch", want: func(p *dtos.DeviceProfile) { p.Description = "new" }, wantBasic: []string{"description"}},
		{name: "manufacturer and model", want: func(p *dtos.DeviceProfile) { p.Manufacturer, p.Model = "other", "T2" }, wantBasic: []string{"manufacturer", "model"}},
		{name: "removed labels", want: func(p *dtos.DeviceProfile) { p.Labels = nil }, wantBasic: []string{"labels"}},
		{name: "a changed maximum replaces the profile", want: func(p *dtos.DeviceProfile) { p.DeviceResources[0].Properties.Maximum = ptr(80.0) }, wantReplace: true},
		{name: "a removed minimum replaces the profile", want: func(p *dtos.DeviceProfile) { p.DeviceResources[0].Properties.Minimum = nil }, wantReplace: true},
		{name: "a new resource replaces the profile", want: func(p *dtos.DeviceProfile) {
			p.DeviceResources = append(p.DeviceResources, dtos.DeviceResource{Name: "humidity"})
		}, wantReplace: true},
		{name: "a changed command replaces the profile", want: func(p *dtos.DeviceProfile) { p.DeviceCommands[0].IsHidden = true }, wantReplace: true},
		{name: "a new mapping replaces the profile", want: func(p *dtos.DeviceProfile) {
			p.DeviceCommands[0].ResourceOperations[0].Mappings = map[string]string{"1": "ON"}
		}, wantReplace: true},
		{name: "resource and basic changes together replace", want: func(p *dtos.DeviceProfile) {
			p.Description = "x"
			p.DeviceResources[0].Description = "y"
		}, wantReplace: true},
		{name: "null and empty attributes are the same", want: func(p *dtos.DeviceProfile) { p.DeviceResources[0].Attributes = nil },
			have: func(p *dtos.DeviceProfile) { p.DeviceResources[0].Attributes = map[string]any{} }},
		{name: "null and empty mappings are the same", want: func(p *dtos.DeviceProfile) {
			p.DeviceCommands[0].ResourceOperations[0].Mappings = map[string]string{}
		}},
		{name: "an attribute number as float64 equals the json.Number", want: func(p *dtos.DeviceProfile) { p.DeviceResources[0].Attributes["register"] = 3.0 }},
		{name: "an attribute number turned string replaces", want: func(p *dtos.DeviceProfile) { p.DeviceResources[0].Attributes["register"] = "3" }, wantReplace: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, have := baseProfile(), baseProfile()
			if tc.want != nil {
				tc.want(&want)
			}
			if tc.have != nil {
				tc.have(&have)
			}
			basic, replace, changed := ProfileUpdate(want, have)
			if replace != tc.wantReplace || changed != (tc.wantReplace || len(tc.wantBasic) > 0) {
				t.Fatalf("replace %v changed %v, want replace %v", replace, changed, tc.wantReplace)
			}
			if (basic != nil) != (len(tc.wantBasic) > 0) {
				t.Fatalf("basic patch %s, want fields %v", dump(basic), tc.wantBasic)
			}
			if basic != nil {
				if basic.Name == nil || *basic.Name != "thermo" {
					t.Errorf("the patch must name the profile: %s", dump(basic))
				}
				assertPatchFields(t, basic, append([]string{"name"}, tc.wantBasic...))
			}
		})
	}
}

func TestServiceUpdate(t *testing.T) {
	base := dtos.DeviceService{Name: "device-virtual", BaseAddress: "http://127.0.0.1:59900", AdminState: "UNLOCKED", Labels: []string{"virtual"}}
	cases := []struct {
		name    string
		want    func(*dtos.DeviceService)
		patched []string
	}{
		{name: "equal services need no patch"},
		{name: "moved", want: func(s *dtos.DeviceService) { s.BaseAddress = "http://10.0.0.2:59900" }, patched: []string{"baseAddress"}},
		{name: "locked", want: func(s *dtos.DeviceService) { s.AdminState = "LOCKED" }, patched: []string{"adminState"}},
		{name: "described and relabelled", want: func(s *dtos.DeviceService) { s.Description, s.Labels = "x", []string{"a", "b"} }, patched: []string{"description", "labels"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := base
			want.Labels = append([]string(nil), base.Labels...)
			if tc.want != nil {
				tc.want(&want)
			}
			patch, changed := ServiceUpdate(want, base)
			if changed != (len(tc.patched) > 0) {
				t.Fatalf("changed = %v for %s", changed, dump(patch))
			}
			assertPatchFields(t, patch, append([]string{"name"}, tc.patched...))
		})
	}
}

func TestServiceToEdgeXDefaultsAdminState(t *testing.T) {
	s, err := ServiceToEdgeX(&v1alpha1.DeviceService{ObjectMeta: named("device-modbus"), Spec: v1alpha1.DeviceServiceSpec{BaseAddress: "http://m:59901"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "device-modbus" || s.AdminState != "UNLOCKED" || s.BaseAddress != "http://m:59901" {
		t.Errorf("got %s", dump(s))
	}
}
