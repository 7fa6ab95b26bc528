package simulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The shape comparison checks what a client can rely on in EdgeX's answers:
// the same structure and field names, the same messages, codes and counts,
// values in the same format. It ignores what differs between any two runs
// of EdgeX: ids, timestamps, correlation and request ids.

// runDependent are fields whose values change from run to run; only their
// JSON type is compared.
var runDependent = map[string]bool{
	"id": true, "created": true, "modified": true, "origin": true, "timestamp": true,
	"correlationID": true, "requestId": true,
}

var (
	exponentFloat = regexp.MustCompile(`^-?\d\.\d{6}e[+-]\d{2,3}$`)
	integer       = regexp.MustCompile(`^-?\d+$`)
)

// valueFormat classifies a reading's value: device values are random on a
// real device-virtual, their format is not.
func valueFormat(v string) string {
	switch {
	case v == "true" || v == "false":
		return "bool"
	case exponentFloat.MatchString(v):
		return "float in exponent form"
	case integer.MatchString(v):
		return "integer"
	}
	return "text " + v
}

// sameShape reports every difference between want and got (decoded JSON).
func sameShape(path string, want, got any) []string {
	key := path[strings.LastIndex(path, ".")+1:]
	switch {
	case runDependent[key]:
		if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
			return []string{fmt.Sprintf("%s: %T, want %T", path, got, want)}
		}
		return nil
	case key == "value":
		ws, _ := want.(string)
		gs, _ := got.(string)
		if valueFormat(ws) != valueFormat(gs) {
			return []string{fmt.Sprintf("%s: %q (%s), want %s like %q", path, gs, valueFormat(gs), valueFormat(ws), ws)}
		}
		return nil
	case key == "binaryValue":
		ws, _ := want.(string)
		gs, _ := got.(string)
		if _, err := base64.StdEncoding.DecodeString(gs); err != nil || (ws == "") != (gs == "") {
			return []string{fmt.Sprintf("%s: not base64 data like the real one", path)}
		}
		return nil
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want an object", path, got)}
		}
		return sameObject(path, w, g)
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want an array", path, got)}
		}
		if len(w) != len(g) {
			return []string{fmt.Sprintf("%s: %d items, want %d", path, len(g), len(w))}
		}
		if key == "coreCommands" {
			// core-command builds this list from a Go map: its order is
			// not part of the API.
			w, g = byNameField(w), byNameField(g)
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, sameShape(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) || fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
			return []string{fmt.Sprintf("%s: %v, want %v", path, got, want)}
		}
		return nil
	}
}

func sameObject(path string, want, got map[string]any) []string {
	var diffs []string
	for k := range want {
		if _, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s.%s: missing", path, k))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s.%s: not in the real answer", path, k))
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if g, ok := got[k]; ok {
			diffs = append(diffs, sameShape(path+"."+k, want[k], g)...)
		}
	}
	return diffs
}

func byNameField(items []any) []any {
	out := slices.Clone(items)
	slices.SortFunc(out, func(a, b any) int {
		return strings.Compare(fmt.Sprint(nameField(a)), fmt.Sprint(nameField(b)))
	})
	return out
}

func nameField(v any) any {
	if m, ok := v.(map[string]any); ok {
		return m["name"]
	}
	return nil
}

func decodeJSON(t testing.TB, what string, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s is not JSON (%v): %q", what, err, data)
	}
	return v
}

// assertSameShape fails the test with every difference.
func assertSameShape(t testing.TB, what string, want, got []byte) {
	t.Helper()
	diffs := sameShape("$", decodeJSON(t, what+" (real)", want), decodeJSON(t, what+" (simulator)", got))
	if len(diffs) > 0 {
		t.Errorf("%s differs from the real EdgeX:\n  %s\nsimulator: %s", what, strings.Join(diffs, "\n  "), got)
	}
}

// The comparison itself must catch what it claims to catch.
func TestSameShapeCatchesDifferences(t *testing.T) {
	real := `{"apiVersion":"v3","statusCode":200,"id":"a","event":{"origin":1,"readings":[{"value":"4.042320e+01","valueType":"Float32"}]}}`
	cases := []struct {
		name string
		got  string
		same bool
	}{
		{"other ids and timestamps", `{"apiVersion":"v3","statusCode":200,"id":"b","event":{"origin":2,"readings":[{"value":"2.100000e+01","valueType":"Float32"}]}}`, true},
		{"float not in exponent form", `{"apiVersion":"v3","statusCode":200,"id":"b","event":{"origin":2,"readings":[{"value":"21.5","valueType":"Float32"}]}}`, false},
		{"other status code", `{"apiVersion":"v3","statusCode":201,"id":"b","event":{"origin":2,"readings":[{"value":"2.100000e+01","valueType":"Float32"}]}}`, false},
		{"extra field", `{"apiVersion":"v3","statusCode":200,"id":"b","totalCount":1,"event":{"origin":2,"readings":[{"value":"2.100000e+01","valueType":"Float32"}]}}`, false},
		{"missing field", `{"apiVersion":"v3","statusCode":200,"id":"b","event":{"origin":2,"readings":[{"value":"2.100000e+01"}]}}`, false},
		{"id of another type", `{"apiVersion":"v3","statusCode":200,"id":7,"event":{"origin":2,"readings":[{"value":"2.100000e+01","valueType":"Float32"}]}}`, false},
		{"one reading too many", `{"apiVersion":"v3","statusCode":200,"id":"b","event":{"origin":2,"readings":[{"value":"2.100000e+01","valueType":"Float32"},{"value":"2.100000e+01","valueType":"Float32"}]}}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			diffs := sameShape("$", decodeJSON(t, "real", []byte(real)), decodeJSON(t, "got", []byte(tc.got)))
			if (len(diffs) == 0) != tc.same {
				t.Errorf("same shape = %v (%v), want %v", len(diffs) == 0, diffs, tc.same)
			}
		})
	}
}
