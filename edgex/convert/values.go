package convert

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// EdgeX carries every resource value as text: what a device reports (a
// reading's value) and what a command sets. The functions below read that
// text by the resource's value type, as the device service does: it parses
// set values with strconv (Bool, Int*, Uint*, Float*), JSON (Int, Float and
// Bool arrays) or a comma split (Uint arrays), and formats readings with
// fmt: "%v" for booleans and integers, "%e" for floats, "[a, b]" for arrays.

// kind is how a scalar value type reads.
type kind int

const (
	kindOther kind = iota // String, or a type the bridge does not know
	kindBool
	kindInt
	kindUint
	kindFloat
	kindBinary
	kindObject
)

type scalarType struct {
	name string
	kind kind
	bits int
}

var scalarTypes = map[string]scalarType{}

func init() {
	for _, t := range []scalarType{
		{common.ValueTypeBool, kindBool, 0},
		{common.ValueTypeString, kindOther, 0},
		{common.ValueTypeInt8, kindInt, 8}, {common.ValueTypeInt16, kindInt, 16},
		{common.ValueTypeInt32, kindInt, 32}, {common.ValueTypeInt64, kindInt, 64},
		{common.ValueTypeUint8, kindUint, 8}, {common.ValueTypeUint16, kindUint, 16},
		{common.ValueTypeUint32, kindUint, 32}, {common.ValueTypeUint64, kindUint, 64},
		{common.ValueTypeFloat32, kindFloat, 32}, {common.ValueTypeFloat64, kindFloat, 64},
		{common.ValueTypeBinary, kindBinary, 0},
		{common.ValueTypeObject, kindObject, 0},
	} {
		scalarTypes[strings.ToLower(t.name)] = t
	}
}

// typeOf resolves a profile's value type the way EdgeX normalises it
// (case-insensitively). Array types yield their element type.
func typeOf(name string) (t scalarType, array bool) {
	lower := strings.ToLower(name)
	if elem, ok := strings.CutSuffix(lower, "array"); ok {
		if t, known := scalarTypes[elem]; known && t.kind != kindBinary && t.kind != kindObject {
			return t, true
		}
	}
	if t, known := scalarTypes[lower]; known {
		return t, false
	}
	return scalarType{name: name, kind: kindOther}, false
}

// EqualValues reports whether two values of a resource are the same value
// of its type: Bool by truth ("true", "TRUE", "1"), integers by number
// ("042" and "42"), floats by their value as the type holds it ("66.66" and
// "6.666000e+01" as Float32), arrays element by element ("[1, 2]" and
// "[1,2]"), Object by JSON value; String, Binary and text the type cannot
// read compare exactly.
//
// A float also equals EdgeX's rendering of it: devices report floats with
// seven significant digits, so a desired 0.123456789 comes back as
// 1.234568e-01 and must count as reached, or commands would repeat forever.
func EqualValues(valueType, a, b string) bool {
	if a == b {
		return true
	}
	t, array := typeOf(valueType)
	if !array {
		return equalScalars(t, a, b)
	}
	ea, okA := arrayElements(a)
	eb, okB := arrayElements(b)
	if !okA || !okB || len(ea) != len(eb) {
		return false
	}
	for i := range ea {
		if ea[i] != eb[i] && !equalScalars(t, ea[i], eb[i]) {
			return false
		}
	}
	return true
}

func equalScalars(t scalarType, a, b string) bool {
	switch t.kind {
	case kindBool:
		x, errX := strconv.ParseBool(a)
		y, errY := strconv.ParseBool(b)
		return errX == nil && errY == nil && x == y
	case kindInt, kindUint:
		x, okX := canonicalInteger(a)
		y, okY := canonicalInteger(b)
		return okX && okY && x == y
	case kindFloat:
		return equalFloats(t.bits, a, b)
	case kindObject:
		x, errX := decodeObjectText(a)
		y, errY := decodeObjectText(b)
		return errX == nil && errY == nil && sameTree(x, y)
	default:
		return a == b
	}
}

// decodeObjectText decodes an Object value. Some device services report
// an Object reading as a JSON string holding the object's JSON text
// (device-mqtt's objectValue "{\"pan\":10}" in the EdgeX captures), others
// as the object itself; both mean the object, so that a desired value set
// as JSON is not sent again forever because of how the device echoes it.
func decodeObjectText(text string) (any, error) {
	v, err := decodeText(text)
	if err != nil {
		return nil, err
	}
	if s, ok := v.(string); ok {
		if inner, err := decodeText(s); err == nil {
			switch inner.(type) {
			case map[string]any, []any:
				return inner, nil
			}
		}
	}
	return v, nil
}

// canonicalInteger is an integer's text without '+' and leading zeros
// ("-0" is "0"), so equal integers of any size have equal text. Parsing
// into a big.Int instead would take seconds for a megabyte of digits.
func canonicalInteger(s string) (string, bool) {
	sign := ""
	switch {
	case strings.HasPrefix(s, "-"):
		sign, s = "-", s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	if s == "" || !allDigits(s) {
		return "", false
	}
	if s = strings.TrimLeft(s, "0"); s == "" {
		return "0", true
	}
	return sign + s, true
}

func equalFloats(bits int, a, b string) bool {
	x, errX := strconv.ParseFloat(a, bits)
	y, errY := strconv.ParseFloat(b, bits)
	if errX != nil || errY != nil {
		return false
	}
	fa, fb := formatFloat(bits, x), formatFloat(bits, y)
	return x == y || fa == fb || fa == b || fb == a
}

// formatFloat is the device service's "%e" of a value held at the given
// precision.
func formatFloat(bits int, f float64) string {
	if bits == 32 {
		return fmt.Sprintf("%e", float32(f))
	}
	return fmt.Sprintf("%e", f)
}

// FormatValue is EdgeX's own text for a value of the type, as a device
// would report it once set: Bool "true"/"false", integers in plain decimal,
// floats in "%e" form (Float32 66.66 is "6.666000e+01"), arrays as
// "[a, b]", Object as compact JSON. Text the type cannot read comes back
// unchanged.
func FormatValue(valueType, value string) string {
	t, array := typeOf(valueType)
	if !array {
		return formatScalar(t, value)
	}
	elems, ok := arrayElements(value)
	if !ok {
		return value
	}
	for i, e := range elems {
		elems[i] = formatScalar(t, e)
	}
	return "[" + strings.Join(elems, ", ") + "]"
}

func formatScalar(t scalarType, value string) string {
	switch t.kind {
	case kindBool:
		if b, err := strconv.ParseBool(value); err == nil {
			return strconv.FormatBool(b)
		}
	case kindInt:
		if n, err := strconv.ParseInt(value, 10, t.bits); err == nil {
			return strconv.FormatInt(n, 10)
		}
	case kindUint:
		if n, err := strconv.ParseUint(value, 10, t.bits); err == nil {
			return strconv.FormatUint(n, 10)
		}
	case kindFloat:
		if f, err := strconv.ParseFloat(value, t.bits); err == nil {
			return formatFloat(t.bits, f)
		}
	case kindObject:
		if v, err := decodeText(value); err == nil {
			if text, ok := jsonText(v); ok {
				return text
			}
		}
	}
	return value
}

// arrayElements reads an array value as element texts: JSON ("[1,2]",
// `["a","b"]`) or EdgeX's reading form ("[1, 2]", "[a, b]").
func arrayElements(value string) ([]string, bool) {
	if elems, ok := jsonArrayElements(value); ok {
		return elems, true
	}
	inner, ok := strings.CutPrefix(strings.TrimSpace(value), "[")
	if !ok {
		return nil, false
	}
	if inner, ok = strings.CutSuffix(inner, "]"); !ok {
		return nil, false
	}
	if strings.TrimSpace(inner) == "" {
		return []string{}, true
	}
	elems := strings.Split(inner, ",")
	for i := range elems {
		elems[i] = strings.TrimSpace(elems[i])
	}
	return elems, true
}

// jsonArrayElements reads a JSON array; strings give their content, other
// elements their JSON text.
func jsonArrayElements(value string) ([]string, bool) {
	v, err := decodeText(value)
	if err != nil {
		return nil, false
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false
	}
	elems := make([]string, len(arr))
	for i, e := range arr {
		if s, isString := e.(string); isString {
			elems[i] = s
			continue
		}
		if elems[i], ok = jsonText(e); !ok {
			return nil, false
		}
	}
	return elems, true
}

// ValueError says why EdgeX would refuse a value for a resource.
type ValueError struct {
	// Reason is v1alpha1.ReasonInvalidValue or v1alpha1.ReasonValueOutOfRange.
	Reason string
	// Message names the value and the type or limit it breaks.
	Message string
}

func (e *ValueError) Error() string { return e.Message }

// quoted shows a value in a message; desired values may be a megabyte.
func quoted(value string) string {
	const shown = 64
	if len(value) > shown {
		return strconv.Quote(value[:shown]) + "..."
	}
	return strconv.Quote(value)
}

func invalid(format string, args ...any) *ValueError {
	return &ValueError{Reason: v1alpha1.ReasonInvalidValue, Message: fmt.Sprintf(format, args...)}
}

func outOfRange(format string, args ...any) *ValueError {
	return &ValueError{Reason: v1alpha1.ReasonValueOutOfRange, Message: fmt.Sprintf(format, args...)}
}

// CheckValue reports whether EdgeX would accept value in a set of a
// resource with these properties: a *ValueError with ReasonInvalidValue
// when the text is not of the type (or the type cannot be set, as Binary),
// and ReasonValueOutOfRange when it overflows the type (Int8 "300", Uint8
// "-1", Float32 "1e39") or lies below the resource's minimum or above its
// maximum. Arrays are checked element by element. A value type the bridge
// does not know is left to EdgeX.
func CheckValue(props v1alpha1.ResourceProperties, value string) error {
	t, array := typeOf(props.ValueType)
	lim := limitsOf(props)
	if !array {
		return checkScalar(t, lim, value)
	}
	elems, err := elementsForSet(t, props.ValueType, value)
	if err != nil {
		return err
	}
	for _, e := range elems {
		if err := checkScalar(t, lim, e); err != nil {
			return err
		}
	}
	return nil
}

// elementsForSet reads an array the way the device service does for a set:
// JSON, with elements of the right JSON type; unsigned arrays may also be a
// plain comma list.
func elementsForSet(t scalarType, typeName, value string) ([]string, error) {
	v, jsonErr := decodeText(value)
	arr, isArray := v.([]any)
	if jsonErr != nil || !isArray {
		if t.kind == kindUint {
			elems := strings.Split(strings.Trim(value, "[]"), ",")
			for i := range elems {
				elems[i] = strings.Trim(elems[i], " ")
			}
			return elems, nil
		}
		return nil, invalid("value %s is not a JSON array for %s", quoted(value), typeName)
	}
	elems := make([]string, len(arr))
	for i, e := range arr {
		text, ok := elementText(t, e)
		if !ok {
			return nil, invalid("element %d of value %s is not a %s", i, quoted(value), t.name)
		}
		elems[i] = text
	}
	return elems, nil
}

func elementText(t scalarType, e any) (string, bool) {
	switch v := e.(type) {
	case string:
		return v, t.kind == kindOther
	case bool:
		return strconv.FormatBool(v), t.kind == kindBool
	case fmt.Stringer: // json.Number
		return v.String(), t.kind == kindInt || t.kind == kindUint || t.kind == kindFloat
	}
	return "", false
}

// limits are a resource's minimum and maximum, as EdgeX holds them.
type limits struct {
	min, max         *float64
	minText, maxText string
}

func limitsOf(p v1alpha1.ResourceProperties) limits {
	// A limit EdgeX could not hold cannot be applied; admission refuses it.
	lo, _ := parseFloatText("minimum", p.Minimum)
	hi, _ := parseFloatText("maximum", p.Maximum)
	return limits{min: lo, max: hi, minText: p.Minimum, maxText: p.Maximum}
}

func checkScalar(t scalarType, lim limits, value string) error {
	switch t.kind {
	case kindBool:
		if _, err := strconv.ParseBool(value); err != nil {
			return invalid("value %s is not a Bool (true or false)", quoted(value))
		}
	case kindInt:
		n, err := strconv.ParseInt(value, 10, t.bits)
		if err != nil {
			return intError(t, value, err)
		}
		return lim.check(value, new(big.Rat).SetInt64(n))
	case kindUint:
		n, err := strconv.ParseUint(value, 10, t.bits)
		if err != nil {
			return intError(t, value, err)
		}
		return lim.check(value, new(big.Rat).SetUint64(n))
	case kindFloat:
		f, err := strconv.ParseFloat(value, t.bits)
		if errors.Is(err, strconv.ErrRange) {
			return outOfRange("value %s is out of range for %s (largest magnitude %s)", quoted(value), t.name, largestFloat(t.bits))
		}
		if err != nil {
			return invalid("value %s is not a %s", quoted(value), t.name)
		}
		return lim.checkFloat(value, f)
	case kindBinary:
		return invalid("value %s cannot be set: EdgeX does not write %s resources", quoted(value), t.name)
	case kindObject:
		if _, err := decodeText(value); err != nil {
			return invalid("value %s is not a JSON value for %s", quoted(value), t.name)
		}
	}
	return nil
}

// intError tells a number too big for the type (including a negative one
// for an unsigned type) from text that is no integer at all.
func intError(t scalarType, value string, err error) error {
	n, isInt := canonicalInteger(value)
	if errors.Is(err, strconv.ErrRange) || (isInt && strings.HasPrefix(n, "-") && t.kind == kindUint) {
		lo, hi := intRange(t)
		return outOfRange("value %s is out of range for %s (%s to %s)", quoted(value), t.name, lo, hi)
	}
	return invalid("value %s is not an integer (%s)", quoted(value), t.name)
}

func intRange(t scalarType) (string, string) {
	if t.kind == kindUint {
		return "0", strconv.FormatUint(math.MaxUint64>>(64-t.bits), 10)
	}
	return strconv.FormatInt(math.MinInt64>>(64-t.bits), 10), strconv.FormatInt(math.MaxInt64>>(64-t.bits), 10)
}

func largestFloat(bits int) string {
	if bits == 32 {
		return strconv.FormatFloat(math.MaxFloat32, 'g', -1, 32)
	}
	return strconv.FormatFloat(math.MaxFloat64, 'g', -1, 64)
}

// check compares an integer exactly: a float64 limit near 2^63 must not
// round the value into range.
func (l limits) check(value string, v *big.Rat) error {
	if l.min != nil && v.Cmp(new(big.Rat).SetFloat64(*l.min)) < 0 {
		return outOfRange("value %s is below the minimum %s", quoted(value), l.minText)
	}
	if l.max != nil && v.Cmp(new(big.Rat).SetFloat64(*l.max)) > 0 {
		return outOfRange("value %s is above the maximum %s", quoted(value), l.maxText)
	}
	return nil
}

func (l limits) checkFloat(value string, f float64) error {
	if l.min != nil && f < *l.min {
		return outOfRange("value %s is below the minimum %s", quoted(value), l.minText)
	}
	if l.max != nil && f > *l.max {
		return outOfRange("value %s is above the maximum %s", quoted(value), l.maxText)
	}
	return nil
}
