package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// The fuzz targets feed outside input (EdgeX answers, CR fields, desired
// values) to the conversions. Their seeds are the captured objects and the
// table cases, so plain `go test` runs them all.

// decodeStrict decodes as the REST client does; inputs it would refuse
// are not the conversions' concern.
func decodeStrict(data []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v) == nil
}

func FuzzDeviceRoundTrip(f *testing.F) {
	for _, d := range loadCaptured(f).devices {
		f.Add([]byte(dump(d)))
	}
	f.Add([]byte(`{"name":"Cam_01","adminState":"LOCKED","operatingState":"DOWN","location":{"lat":52.5,"rooms":[1,"two",null,{}]},` +
		`"protocols":{"other":{"Port":300,"Secure":true,"Nested":{"a":[1.0]}},"empty":{},"null":null},"tags":{"x":null,"y":""},"properties":{}}`))
	f.Add([]byte(`{"name":"x","location":"","autoEvents":[],"labels":[]}`))
	f.Add([]byte(`{"name":"x","location":1e400}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var original dtos.Device
		if !decodeStrict(data, &original) || original.Name == "" {
			return
		}
		spec, ok := storedStable(t, DeviceFromEdgeX(original))
		if !ok {
			return
		}
		back, err := DeviceToEdgeX(&v1alpha1.Device{ObjectMeta: named(original.Name), Spec: spec})
		if err != nil {
			t.Fatalf("a spec mirrored from EdgeX must convert back: %v", err)
		}
		want := withoutDBFields(original, clearDevice)
		want.Tags, want.Properties = storedValues(t, want.Tags), storedValues(t, want.Properties)
		// Core-metadata refuses devices without states; the spec's defaults
		// fill them in.
		want.AdminState = orDefault(want.AdminState, "UNLOCKED")
		want.OperatingState = orDefault(want.OperatingState, "UP")
		if !equality.Semantic.DeepEqual(want, back) {
			t.Fatalf("EdgeX -> spec -> EdgeX changed\nwant %s\ngot  %s", dump(want), dump(back))
		}
		if again := DeviceFromEdgeX(back); !equality.Semantic.DeepEqual(DeviceFromEdgeX(want), again) {
			t.Fatalf("spec -> EdgeX -> spec changed\nwant %s\ngot  %s", dump(spec), dump(again))
		}
		if patch, changed := DeviceUpdate(back, want); changed {
			t.Fatalf("a round-tripped device still needs a patch: %s", dump(patch))
		}
	})
}

// storedStable passes a spec mirrored from EdgeX through the API server
// stand-in; it must come back unchanged, or mirrors would be rewritten on
// every resync. ok is false when the API server would refuse the spec.
func storedStable[T any](t *testing.T, spec T) (T, bool) {
	stored, ok := throughAPIServer(t, spec)
	if ok && !equality.Semantic.DeepEqual(spec, stored) {
		t.Fatalf("the API server changes a mirrored spec\nsent %s\nread %s", dump(spec), dump(stored))
	}
	return stored, ok
}

// storedValues is what EdgeX gets back for free-form values that have no
// string field beside them in the CRD: numbers as the API server stores
// them (an integer that fits int64, else a float64), which is also how
// EdgeX itself holds them.
func storedValues(t *testing.T, m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	stored, ok := throughAPIServer(t, m)
	if !ok {
		t.Fatalf("the API server refuses %s, yet accepted the spec holding it", dump(m))
	}
	out := map[string]any{}
	decodeUseNumber(t, []byte(dump(stored)), &out)
	return out
}

func FuzzProfileRoundTrip(f *testing.F) {
	for _, p := range loadCaptured(f).profiles {
		f.Add([]byte(dump(p)))
	}
	f.Add([]byte(`{"name":"p","labels":null,"deviceResources":[{"name":"r","isHidden":true,"tags":{"tag":"v1","unit":"C"},` +
		`"attributes":{"startingAddress":40001,"rawType":"Int16","nested":{"x":[]}},` +
		`"properties":{"valueType":"Int16","readWrite":"RW","minimum":-0.5,"maximum":1e21,"mask":18446744073709551615,"shift":-3,"scale":0.1,"optional":{"a":1}}}],` +
		`"deviceCommands":[{"name":"c","readWrite":"R","resourceOperations":[{"deviceResource":"r","mappings":{"1":"ON"}}],"tags":{}}]}`))
	f.Add([]byte(`{"name":"p","deviceResources":[{"name":"r","tags":{"tag":7},"properties":{"minimum":5e-324}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var original dtos.DeviceProfile
		if !decodeStrict(data, &original) || original.Name == "" {
			return
		}
		spec, ok := storedStable(t, ProfileFromEdgeX(original))
		if !ok {
			return
		}
		back, err := ProfileToEdgeX(&v1alpha1.DeviceProfile{ObjectMeta: named(original.Name), Spec: spec})
		if err != nil {
			t.Fatalf("a spec mirrored from EdgeX must convert back: %v\n%s", err, dump(spec))
		}
		want := withoutDBFields(original, clearProfile)
		for i := range want.DeviceResources {
			r := &want.DeviceResources[i]
			r.Properties.Optional, r.Tags = storedValues(t, r.Properties.Optional), storedValues(t, r.Tags)
		}
		for i := range want.DeviceCommands {
			want.DeviceCommands[i].Tags = storedValues(t, want.DeviceCommands[i].Tags)
		}
		if !equality.Semantic.DeepEqual(want, back) {
			t.Fatalf("EdgeX -> spec -> EdgeX changed\nwant %s\ngot  %s", dump(want), dump(back))
		}
		if again := ProfileFromEdgeX(back); !equality.Semantic.DeepEqual(spec, again) {
			t.Fatalf("spec -> EdgeX -> spec changed\nwant %s\ngot  %s", dump(spec), dump(again))
		}
		if basic, replace, changed := ProfileUpdate(back, want); changed {
			t.Fatalf("a round-tripped profile still needs an update (replace %v): %s", replace, dump(basic))
		}
	})
}

func FuzzLocation(f *testing.F) {
	for _, seed := range []string{
		``, `null`, `""`, `"hall"`, `42`, `-1.5e300`, `true`, `[]`, `{}`, `[1,"two",null,{"x":[{}]}]`,
		`{"lat":52.52,"lon":13.40,"floor":{"n":2,"names":["二階","second"]}}`, `not json at all`, `{"unclosed":`,
		`"\u2028<&>"`, `12345678901234567890123456789e-999999999999`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var location any
		if !decodeStrict(data, &location) {
			location = string(data) // text that is no JSON: a string location
		}
		spec := DeviceFromEdgeX(dtos.Device{Location: location})
		back := locationToEdgeX(spec.Location, spec.TypedLocation)
		if (back == nil) != (location == nil) || !sameJSON(back, location) {
			t.Fatalf("location %#v came back as %#v (shown %q)", location, back, spec.Location)
		}
		if s, isString := location.(string); isString && back != s {
			t.Fatalf("string location %q came back as %#v", s, back)
		}
		want := dtos.Device{Name: "d", Location: back}
		if patch, changed := DeviceUpdate(want, dtos.Device{Name: "d", Location: location}); changed {
			t.Fatalf("an unchanged location needs a patch: %s", dump(patch))
		}
	})
}

func FuzzKubeName(f *testing.F) {
	for _, seed := range [][3]string{
		{"pool-a", "cam-01", "Cam_01"}, {"pool-a", "CAM.01", "cam.01"}, {"pool-a", "~x", "x"},
		{"pool-a", "温度", "温度 "}, {"Pool_B", "", "-"}, {"edge.pool", strings.Repeat("a", 300), strings.Repeat("a", 301)},
		{strings.Repeat("p", 253), "x", "y"}, {"", "a", "A"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, pool, a, b string) {
		name := KubeName(pool, a)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Fatalf("KubeName(%q, %q) = %q: %v", pool, a, name, errs)
		}
		if KubeName(pool, a) != name {
			t.Fatal("KubeName is not stable")
		}
		if a != b && KubeName(pool, b) == name {
			t.Fatalf("%q and %q collide on %q", a, b, name)
		}
		avoided := KubeNameAvoiding(pool, a, func(c string) bool { return c == name })
		if avoided == name || len(validation.IsDNS1123Subdomain(avoided)) > 0 {
			t.Fatalf("KubeNameAvoiding gave %q while %q is taken", avoided, name)
		}
	})
}

var valueTypeSeeds = []string{
	"Bool", "String", "Int8", "Int16", "Int32", "Int64", "Uint8", "Uint16", "Uint32", "Uint64", "Float32", "Float64",
	"Binary", "Object", "BoolArray", "StringArray", "Int8Array", "Uint8Array", "Float32Array", "Float64Array", "int32", "Nope",
}

func FuzzEqualValues(f *testing.F) {
	pairs := [][2]string{
		{"true", "TRUE"}, {"66.66", "6.666000e+01"}, {"042", "42"}, {"[1, 2]", "[1,2]"}, {`{"a":1}`, `{"a":1.0}`},
		{"1e39", "Inf"}, {"NaN", "NaN"}, {"-0", "0"}, {"", " "}, {"[a, b]", `["a","b"]`}, {"1.677722e+07", "16777217"},
		{"18446744073709551616", "18446744073709551615"},
	}
	for i, p := range pairs {
		f.Add(valueTypeSeeds[i%len(valueTypeSeeds)], p[0], p[1])
		f.Add(valueTypeSeeds[(i*7+3)%len(valueTypeSeeds)], p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, valueType, a, b string) {
		if !EqualValues(valueType, a, a) {
			t.Fatalf("%s %q is not equal to itself", valueType, a)
		}
		if EqualValues(valueType, a, b) != EqualValues(valueType, b, a) {
			t.Fatalf("%s: not symmetric for %q and %q", valueType, a, b)
		}
		// What a device reports after the value was set must count as the
		// value, or commands would repeat forever.
		if formatted := FormatValue(valueType, a); !EqualValues(valueType, a, formatted) {
			t.Fatalf("%s %q is not equal to its EdgeX form %q", valueType, a, formatted)
		}
	})
}

func FuzzCheckValue(f *testing.F) {
	values := []string{"true", "300", "-1", "1e39", "42", "21.5", "[1, 300]", "[1,2]", `{"a":1}`, "abc", "", "9223372036854775808", "-0", "+5"}
	for i, v := range values {
		f.Add(valueTypeSeeds[i%len(valueTypeSeeds)], "", "", v)
		f.Add(valueTypeSeeds[(i*5+2)%len(valueTypeSeeds)], "0", "1000", v)
	}
	f.Add("Float32", "-20", "60", "60.5")
	f.Add("Int64", "", "9007199254740992", "9007199254740993")
	f.Fuzz(func(t *testing.T, valueType, minimum, maximum, value string) {
		props := v1alpha1.ResourceProperties{ValueType: valueType, Minimum: minimum, Maximum: maximum}
		err := CheckValue(props, value)
		if err == nil {
			assertAcceptedValueFits(t, props, value)
			return
		}
		var ve *ValueError
		if !errors.As(err, &ve) || ve.Message == "" ||
			(ve.Reason != v1alpha1.ReasonInvalidValue && ve.Reason != v1alpha1.ReasonValueOutOfRange) {
			t.Fatalf("%s %q: error %#v is not a *ValueError with a known reason", valueType, value, err)
		}
		limited := strings.Contains(ve.Message, "minimum") || strings.Contains(ve.Message, "maximum")
		if ve.Reason == v1alpha1.ReasonValueOutOfRange && limited {
			if unlimited := CheckValue(v1alpha1.ResourceProperties{ValueType: valueType}, value); unlimited != nil {
				t.Fatalf("%s %q refused for its limits, but also without them: %v", valueType, value, unlimited)
			}
		}
	})
}

// assertAcceptedValueFits checks an accepted scalar against the type and
// the limits with strconv, independently of the package's own parsing.
func assertAcceptedValueFits(t *testing.T, props v1alpha1.ResourceProperties, value string) {
	t.Helper()
	lo, errLo := strconv.ParseFloat(props.Minimum, 64)
	hi, errHi := strconv.ParseFloat(props.Maximum, 64)
	usable := func(err error, f float64) bool { return err == nil && !math.IsInf(f, 0) }
	var v float64
	switch strings.ToLower(props.ValueType) {
	case "int8", "int16", "int32", "int64":
		bits, _ := strconv.Atoi(props.ValueType[3:])
		n, err := strconv.ParseInt(value, 10, bits)
		if err != nil {
			t.Fatalf("%s accepted %q: %v", props.ValueType, value, err)
		}
		v = float64(n)
	case "uint8", "uint16", "uint32", "uint64":
		bits, _ := strconv.Atoi(props.ValueType[4:])
		n, err := strconv.ParseUint(value, 10, bits)
		if err != nil {
			t.Fatalf("%s accepted %q: %v", props.ValueType, value, err)
		}
		v = float64(n)
	case "float32", "float64":
		bits, _ := strconv.Atoi(props.ValueType[5:])
		f, err := strconv.ParseFloat(value, bits)
		if err != nil {
			t.Fatalf("%s accepted %q: %v", props.ValueType, value, err)
		}
		v = f
	case "bool":
		if _, err := strconv.ParseBool(value); err != nil {
			t.Fatalf("Bool accepted %q", value)
		}
		return
	default:
		return
	}
	// float64(n) may round an int64 by one unit; the exact comparison is
	// the package's table test. Here: no value far outside its limits.
	if decimalPattern.MatchString(props.Minimum) && usable(errLo, lo) && v < lo && !near(v, lo) {
		t.Fatalf("%s accepted %q below the minimum %s", props.ValueType, value, props.Minimum)
	}
	if decimalPattern.MatchString(props.Maximum) && usable(errHi, hi) && v > hi && !near(v, hi) {
		t.Fatalf("%s accepted %q above the maximum %s", props.ValueType, value, props.Maximum)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= math.Abs(b)*1e-15 }
