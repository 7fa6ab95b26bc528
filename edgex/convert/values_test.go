package convert

import (
	"errors"
	"strings"
	"testing"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

func TestEqualValues(t *testing.T) {
	cases := []struct {
		valueType, a, b string
		want            bool
	}{
		{"Bool", "true", "TRUE", true},
		{"Bool", "true", "True", true},
		{"Bool", "1", "true", true},
		{"Bool", "false", "0", true},
		{"Bool", "true", "false", false},
		{"Bool", "yes", "true", false},
		{"bool", "T", "true", true}, // EdgeX reads value types case-insensitively
		{"Float32", "66.66", "6.666000e+01", true},
		{"Float32", "21.5", "2.150000e+01", true},
		{"Float32", "21.5", "2.150001e+01", false},
		{"Float32", "0.1", "1.000000e-01", true},
		{"Float32", "16777217", "1.677722e+07", true},
		{"Float32", "1e39", "1e39", true},
		{"Float32", "1e39", "1e40", false},
		{"Float64", "1.004875e+308", "1.004875e+308", true},
		{"Float64", "0.123456789", "1.234568e-01", true}, // EdgeX reports seven digits
		{"Float64", "0.1", "0.10000000000000001", true},
		{"Float64", "0.1", "0.2", false},
		{"Float64", "0", "-0", true},
		{"Float64", "abc", "abc", true},
		{"Float64", "abc", "ABC", false},
		{"Int32", "042", "42", true},
		{"Int32", "+42", "42", true},
		{"Int32", "42", "43", false},
		{"Int8", "300", "0300", true}, // both unreadable as Int8 but the same number
		{"Int64", "9223372036854775807", "09223372036854775807", true},
		{"Uint64", "18446744073709551615", "18446744073709551614", false},
		{"Int32", "4.2e1", "42", false},
		{"Int32Array", "[1, 2]", "[1,2]", true},
		{"Int32Array", "[1, 2]", "[2, 1]", false},
		{"Int32Array", "[1, 2]", "[1, 2, 3]", false},
		{"Uint8Array", "[01, 2]", "[1,2]", true},
		{"Float32Array", "[66.66, 1]", "[6.666000e+01, 1.000000e+00]", true},
		{"BoolArray", "[true, false]", "[TRUE,0]", true},
		{"StringArray", `["a","b"]`, "[a, b]", true},
		{"StringArray", `["a","b"]`, "[a, c]", false},
		{"Int32Array", "[]", "[ ]", true},
		{"Object", `{"a":1,"b":[true,null]}`, `{ "b": [true, null], "a": 1.0 }`, true},
		{"Object", `{"a":1}`, `{"a":"1"}`, false},
		// device-mqtt reports objectValue as a JSON string of the object.
		{"Object", `{"pan":10,"tilt":-5}`, `"{\"tilt\":-5,\"pan\":10}"`, true},
		{"Object", `{"pan":10}`, `"{\"pan\":11}"`, false},
		{"Object", `"plain text"`, `"plain text"`, true},
		{"Object", `"{}"`, `{}`, true},
		{"Object", `"5"`, `5`, false},
		{"String", "On", "on", false},
		{"String", " x", "x", false},
		{"Binary", "AAEC", "AAEC", true},
		{"Binary", "AAEC", "AAED", false},
		{"NoSuchType", "1", "1.0", false},
		{"", "a", "a", true},
	}
	for _, tc := range cases {
		got := EqualValues(tc.valueType, tc.a, tc.b)
		if got != tc.want {
			t.Errorf("EqualValues(%s, %q, %q) = %v, want %v", tc.valueType, tc.a, tc.b, got, tc.want)
		}
		if back := EqualValues(tc.valueType, tc.b, tc.a); back != got {
			t.Errorf("EqualValues(%s) is not symmetric for %q and %q", tc.valueType, tc.a, tc.b)
		}
	}
}

func TestFormatValue(t *testing.T) {
	cases := []struct{ valueType, in, want string }{
		{"Bool", "TRUE", "true"},
		{"Bool", "0", "false"},
		{"Bool", "maybe", "maybe"},
		{"Float32", "66.66", "6.666000e+01"},
		{"Float32", "40.4232", "4.042320e+01"},
		{"Float32", "-0.5", "-5.000000e-01"},
		{"Float32", "1e39", "1e39"},
		{"Float64", "1.004875e308", "1.004875e+308"},
		{"Float64", "21.5", "2.150000e+01"},
		{"Int32", "042", "42"},
		{"Int32", "+7", "7"},
		{"Int8", "300", "300"},
		{"Uint16", "65535", "65535"},
		{"Int32Array", "[1,2,3]", "[1, 2, 3]"},
		{"Float32Array", "[1,2.5]", "[1.000000e+00, 2.500000e+00]"},
		{"BoolArray", "[TRUE, 0]", "[true, false]"},
		{"StringArray", `["a","b"]`, "[a, b]"},
		{"Object", `{ "b": 1, "a": "<x>" }`, `{"a":"<x>","b":1}`},
		{"String", " as is ", " as is "},
		{"Binary", "AAEC", "AAEC"},
	}
	for _, tc := range cases {
		if got := FormatValue(tc.valueType, tc.in); got != tc.want {
			t.Errorf("FormatValue(%s, %q) = %q, want %q", tc.valueType, tc.in, got, tc.want)
		}
		if !EqualValues(tc.valueType, tc.in, FormatValue(tc.valueType, tc.in)) {
			t.Errorf("FormatValue(%s, %q) is not equal to the value it formats", tc.valueType, tc.in)
		}
	}
}

func TestCheckValue(t *testing.T) {
	counter := v1alpha1.ResourceProperties{ValueType: "Int32", ReadWrite: "RW", Minimum: "0", Maximum: "1000"}
	temperature := v1alpha1.ResourceProperties{ValueType: "Float32", Minimum: "-20", Maximum: "60"}
	cases := []struct {
		name       string
		props      v1alpha1.ResourceProperties
		value      string
		wantReason string // "" for accepted
		wantInMsg  []string
	}{
		{"a boolean", v1alpha1.ResourceProperties{ValueType: "Bool"}, "true", "", nil},
		{"a boolean in capitals", v1alpha1.ResourceProperties{ValueType: "Bool"}, "TRUE", "", nil},
		{"not a boolean", v1alpha1.ResourceProperties{ValueType: "Bool"}, "notabool", v1alpha1.ReasonInvalidValue, []string{`"notabool"`, "Bool"}},
		{"in range", counter, "42", "", nil},
		{"at the maximum", counter, "1000", "", nil},
		{"above the maximum", counter, "1001", v1alpha1.ReasonValueOutOfRange, []string{`"1001"`, "maximum 1000"}},
		{"below the minimum", counter, "-1", v1alpha1.ReasonValueOutOfRange, []string{`"-1"`, "minimum 0"}},
		{"not an integer", counter, "4.2", v1alpha1.ReasonInvalidValue, []string{`"4.2"`}},
		{"Int8 overflow", v1alpha1.ResourceProperties{ValueType: "Int8"}, "300", v1alpha1.ReasonValueOutOfRange, []string{`"300"`, "-128 to 127"}},
		{"Int8 underflow", v1alpha1.ResourceProperties{ValueType: "Int8"}, "-129", v1alpha1.ReasonValueOutOfRange, []string{"-128 to 127"}},
		{"Uint8 negative", v1alpha1.ResourceProperties{ValueType: "Uint8"}, "-1", v1alpha1.ReasonValueOutOfRange, []string{`"-1"`, "0 to 255"}},
		{"Uint8 overflow", v1alpha1.ResourceProperties{ValueType: "Uint8"}, "256", v1alpha1.ReasonValueOutOfRange, []string{"0 to 255"}},
		{"Uint64 at the top", v1alpha1.ResourceProperties{ValueType: "Uint64"}, "18446744073709551615", "", nil},
		{"Int64 just above a float64 maximum", v1alpha1.ResourceProperties{ValueType: "Int64", Maximum: "9007199254740992"}, "9007199254740993", v1alpha1.ReasonValueOutOfRange, []string{"maximum"}},
		{"a float in range", temperature, "21.5", "", nil},
		{"a float in EdgeX's own form", temperature, "2.150000e+01", "", nil},
		{"a float too hot", temperature, "60.5", v1alpha1.ReasonValueOutOfRange, []string{`"60.5"`, "maximum 60"}},
		{"a float too cold", temperature, "-21", v1alpha1.ReasonValueOutOfRange, []string{"minimum -20"}},
		{"Float32 overflow", v1alpha1.ResourceProperties{ValueType: "Float32"}, "1e39", v1alpha1.ReasonValueOutOfRange, []string{`"1e39"`, "Float32"}},
		{"Float64 takes 1e39", v1alpha1.ResourceProperties{ValueType: "Float64"}, "1e39", "", nil},
		{"Float64 overflow", v1alpha1.ResourceProperties{ValueType: "Float64"}, "1e309", v1alpha1.ReasonValueOutOfRange, nil},
		{"not a float", temperature, "warm", v1alpha1.ReasonInvalidValue, []string{`"warm"`, "Float32"}},
		{"any string", v1alpha1.ResourceProperties{ValueType: "String", Maximum: "1"}, "anything at all", "", nil},
		{"an object", v1alpha1.ResourceProperties{ValueType: "Object"}, `{"mode":"eco"}`, "", nil},
		{"not an object", v1alpha1.ResourceProperties{ValueType: "Object"}, `{mode}`, v1alpha1.ReasonInvalidValue, nil},
		{"binary cannot be set", v1alpha1.ResourceProperties{ValueType: "Binary"}, "AAEC", v1alpha1.ReasonInvalidValue, []string{"Binary"}},
		{"an int array", v1alpha1.ResourceProperties{ValueType: "Int16Array", Maximum: "10"}, "[1, 2, 10]", "", nil},
		{"an int array element out of range", v1alpha1.ResourceProperties{ValueType: "Int8Array"}, "[1, 300]", v1alpha1.ReasonValueOutOfRange, []string{"Int8"}},
		{"an int array element above the maximum", v1alpha1.ResourceProperties{ValueType: "Int16Array", Maximum: "10"}, "[1, 11]", v1alpha1.ReasonValueOutOfRange, []string{"maximum 10"}},
		{"an int array that is no JSON", v1alpha1.ResourceProperties{ValueType: "Int16Array"}, "1, 2", v1alpha1.ReasonInvalidValue, []string{"JSON array"}},
		{"a uint array as a comma list", v1alpha1.ResourceProperties{ValueType: "Uint8Array"}, "[1, 2, 255]", "", nil},
		{"a uint array with a negative", v1alpha1.ResourceProperties{ValueType: "Uint8Array"}, "[1, -2]", v1alpha1.ReasonValueOutOfRange, nil},
		{"a bool array", v1alpha1.ResourceProperties{ValueType: "BoolArray"}, "[true,false]", "", nil},
		{"a bool array of strings", v1alpha1.ResourceProperties{ValueType: "BoolArray"}, `["true"]`, v1alpha1.ReasonInvalidValue, nil},
		{"a float array overflow", v1alpha1.ResourceProperties{ValueType: "Float32Array"}, "[1, 1e39]", v1alpha1.ReasonValueOutOfRange, nil},
		{"an unknown value type is left to EdgeX", v1alpha1.ResourceProperties{ValueType: "Quaternion"}, "1+2i", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckValue(tc.props, tc.value)
			if tc.wantReason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *ValueError", err)
			}
			if ve.Reason != tc.wantReason {
				t.Errorf("reason %s (%s), want %s", ve.Reason, ve.Message, tc.wantReason)
			}
			for _, part := range tc.wantInMsg {
				if !strings.Contains(ve.Error(), part) {
					t.Errorf("message %q does not mention %s", ve.Error(), part)
				}
			}
		})
	}
}

func TestCheckValueShortensHugeValues(t *testing.T) {
	err := CheckValue(v1alpha1.ResourceProperties{ValueType: "Int32"}, strings.Repeat("9", 1<<20))
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("message of %d bytes; a megabyte value must not be copied into it", len(err.Error()))
	}
}
