package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// EdgeX keeps protocol properties, attributes, tags, properties and the
// device location as free-form JSON, and the bridge's REST client decodes
// them with UseNumber. The CRD shows such values as strings, so that people
// can read and edit them; a value that is not a string also goes to a typed
// field beside the string, which keeps its JSON type. The helpers below
// carry values across that split and compare JSON values the way EdgeX
// would see them.

// jsonText is the compact JSON text of v. HTML characters stay as they are:
// the text is shown to people and compared, never embedded in a page.
func jsonText(v any) (string, bool) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", false
	}
	return strings.TrimSuffix(buf.String(), "\n"), true
}

// decodeText decodes exactly one JSON value, keeping numbers as
// json.Number so that their text survives.
func decodeText(text string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// decodeRaw decodes a CRD JSON field. An empty Raw is JSON null:
// apiextensionsv1.JSON drops a null when it is unmarshalled.
func decodeRaw(raw []byte) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	return decodeText(string(raw))
}

// rawJSON encodes v for a CRD JSON field as the API server stores and
// returns it, so that a spec built here equals the same spec read back and
// a mirror does not rewrite it on every resync. The API server decodes
// numbers into int64 when they are integers that fit, else float64, and
// encodes with encoding/json's defaults (HTML characters escaped). EdgeX
// holds its free-form numbers as float64 too, so no value EdgeX keeps is
// lost; the exact text of a number is kept in the string fields. A number
// beyond float64 (which EdgeX cannot hold either) stays as it is, and the
// API server's refusal of it is the error the user sees.
func rawJSON(v any) (apiextensionsv1.JSON, bool) {
	tree, ok := normalizeJSON(v)
	if !ok {
		return apiextensionsv1.JSON{}, false
	}
	if tree == nil {
		// JSON null reads back from the API server as an empty Raw.
		return apiextensionsv1.JSON{}, true
	}
	if stored, ok := asStored(tree); ok {
		tree = stored
	}
	b, err := json.Marshal(tree)
	if err != nil {
		return apiextensionsv1.JSON{}, false
	}
	return apiextensionsv1.JSON{Raw: b}, true
}

// asStored turns json.Numbers into the int64 or float64 the API server
// would hold. A number beyond float64 cannot be stored at all.
func asStored(v any) (any, bool) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i, true
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			var ok bool
			if out[k], ok = asStored(e); !ok {
				return nil, false
			}
		}
		return out, true
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var ok bool
			if out[i], ok = asStored(e); !ok {
				return nil, false
			}
		}
		return out, true
	default:
		return v, true
	}
}

// splitValue is how one free-form EdgeX value shows in the CRD: a string
// as itself, anything else as its JSON text (numbers exactly as EdgeX sent
// them) plus the typed value. Values JSON cannot carry (EdgeX never sends
// them) show as Go prints them.
func splitValue(v any) (string, *apiextensionsv1.JSON) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	text, okText := jsonText(v)
	typed, okTyped := rawJSON(v)
	if !okText || !okTyped {
		return fmt.Sprint(v), nil
	}
	return text, &typed
}

// joinValue is the EdgeX value for a string field and its typed companion.
// The typed value counts only while the string field still shows it, so a
// person's edit of the string always wins. "Shows it" allows for the API
// server's number storage (1.0 held as 1, 12345678901234567890 as a
// float64), and the value is taken from the string field's own text, so a
// number keeps its digits exactly.
func joinValue(text string, typed *apiextensionsv1.JSON) any {
	if typed == nil {
		return text
	}
	want, err := decodeRaw(typed.Raw)
	if err != nil {
		return text
	}
	if _, isString := want.(string); isString {
		return text
	}
	shown, err := decodeText(text)
	if err != nil || !sameTreeBy(shown, want, sameStoredNumber) {
		return text
	}
	return shown
}

// splitMap splits free-form EdgeX values into the CRD's string map and its
// typed companion. Empty maps become nil: the CRD cannot tell them apart.
func splitMap(m map[string]any) (map[string]string, map[string]apiextensionsv1.JSON) {
	if len(m) == 0 {
		return nil, nil
	}
	strs := make(map[string]string, len(m))
	var typed map[string]apiextensionsv1.JSON
	for k, v := range m {
		text, t := splitValue(v)
		strs[k] = text
		if t != nil {
			if typed == nil {
				typed = map[string]apiextensionsv1.JSON{}
			}
			typed[k] = *t
		}
	}
	return strs, typed
}

// joinMap is the inverse of splitMap. Typed values whose string field was
// removed are dropped with it.
func joinMap(strs map[string]string, typed map[string]apiextensionsv1.JSON) map[string]any {
	if strs == nil {
		return nil
	}
	out := make(map[string]any, len(strs))
	for k, text := range strs {
		var t *apiextensionsv1.JSON
		if v, ok := typed[k]; ok {
			t = &v
		}
		out[k] = joinValue(text, t)
	}
	return out
}

// jsonMapToEdgeX decodes a CRD map of JSON values. nil stays nil and empty
// stays empty, because for device tags and properties nil means "leave
// EdgeX's as they are" and empty means "clear them".
func jsonMapToEdgeX(m map[string]apiextensionsv1.JSON) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]any, len(m))
	for k, raw := range m {
		v, err := decodeRaw(raw.Raw)
		if err != nil {
			return nil, fmt.Errorf("%q is not JSON: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// jsonMapFromEdgeX encodes EdgeX's free-form map for the CRD; empty is nil.
func jsonMapFromEdgeX(m map[string]any) map[string]apiextensionsv1.JSON {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]apiextensionsv1.JSON, len(m))
	for k, v := range m {
		raw, ok := rawJSON(v)
		if !ok {
			raw, _ = rawJSON(fmt.Sprint(v))
		}
		out[k] = raw
	}
	return out
}

// sameJSON reports whether two values are the same JSON value: numbers
// by value (json.Number "300" equals float64 300), everything else exactly.
func sameJSON(a, b any) bool {
	na, okA := normalizeJSON(a)
	nb, okB := normalizeJSON(b)
	if !okA || !okB {
		return okA == okB && fmt.Sprint(a) == fmt.Sprint(b)
	}
	return sameTree(na, nb)
}

// normalizeJSON turns any JSON-encodable value into the shapes decodeText
// produces (map[string]any, []any, json.Number, string, bool, nil).
func normalizeJSON(v any) (any, bool) {
	text, ok := jsonText(v)
	if !ok {
		return nil, false
	}
	n, err := decodeText(text)
	return n, err == nil
}

// sameTree compares values in decodeText's shapes, numbers by exact value.
func sameTree(a, b any) bool { return sameTreeBy(a, b, sameNumber) }

func sameTreeBy(a, b any, sameNum func(x, y json.Number) bool) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		return ok && sameNum(x, y)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, found := y[k]
			if !found || !sameTreeBy(xv, yv, sameNum) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameTreeBy(x[i], y[i], sameNum) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

func sameJSONMap(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, found := b[k]
		if !found || !sameJSON(av, bv) {
			return false
		}
	}
	return true
}

// sameNumber compares JSON numbers by exact decimal value.
func sameNumber(x, y json.Number) bool {
	if x == y {
		return true
	}
	cx, okX := canonicalDecimal(string(x))
	cy, okY := canonicalDecimal(string(y))
	return okX && okY && cx == cy
}

// sameStoredNumber also takes numbers the API server would store as the same
// float64 as equal.
func sameStoredNumber(x, y json.Number) bool {
	if sameNumber(x, y) {
		return true
	}
	fx, errX := strconv.ParseFloat(string(x), 64)
	fy, errY := strconv.ParseFloat(string(y), 64)
	return errX == nil && errY == nil && fx == fy
}

// canonicalDecimal reduces a JSON number to "<sign><digits>e<exponent>"
// with no leading or trailing zeros in the digits, so equal values have
// equal text, without converting to a float (which would round) or a
// rational (1e999999999 would be ruinous). Exponents beyond int64 are not
// reduced; such numbers only equal their own text.
func canonicalDecimal(s string) (string, bool) {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	mantissa, expText, hasExp := strings.Cut(strings.ToLower(s), "e")
	intPart, frac, _ := strings.Cut(mantissa, ".")
	digits := intPart + frac
	if digits == "" || !allDigits(digits) {
		return "", false
	}
	var exp int64
	if hasExp {
		var err error
		if exp, err = strconv.ParseInt(expText, 10, 64); err != nil || exp > math.MaxInt64/2 || exp < math.MinInt64/2 {
			return "", false
		}
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return "0", true
	}
	significant := strings.TrimRight(digits, "0")
	// Both adjustments are bounded by the text's length, so they cannot
	// overflow an exponent limited to half the int64 range.
	exp += int64(len(digits)-len(significant)) - int64(len(frac))
	return sign + significant + "e" + strconv.FormatInt(exp, 10), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
