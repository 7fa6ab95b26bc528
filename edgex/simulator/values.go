package simulator

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"
)

// resourceValue is the current value of one device resource, typed as
// device-sdk-go's CommandValue holds it (bool, int8, float32, []uint16...).
type resourceValue struct {
	valueType string
	v         any
}

// convertError is a failed conversion of a set parameter, with the status
// the device service answers for it and device-sdk-go's message chain.
func convertError(status int, format string, args ...any) *apiError {
	return newAPIError(status, format, args...)
}

func conversionFailed(raw, valueType string, cause error) *apiError {
	return convertError(http.StatusInternalServerError, "failed to convert set parameter %s to ValueType %s -> %s", raw, valueType, cause)
}

// parseValue converts a set parameter to a typed value the way device-sdk-go
// 3.1 does, with its error messages and status codes.
func parseValue(valueType, raw string) (any, *apiError) {
	if valueType != common.ValueTypeString && strings.TrimSpace(raw) == "" {
		return nil, convertError(http.StatusBadRequest, "empty string is invalid for %v value type", valueType)
	}
	switch valueType {
	case common.ValueTypeString:
		return raw, nil
	case common.ValueTypeBool:
		v, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, conversionFailed(raw, valueType, err)
		}
		return v, nil
	case common.ValueTypeUint8, common.ValueTypeUint16, common.ValueTypeUint32, common.ValueTypeUint64:
		return parseUint(valueType, raw)
	case common.ValueTypeInt8, common.ValueTypeInt16, common.ValueTypeInt32, common.ValueTypeInt64:
		return parseInt(valueType, raw)
	case common.ValueTypeFloat32:
		return parseFloat(raw, 32)
	case common.ValueTypeFloat64:
		return parseFloat(raw, 64)
	case common.ValueTypeUint8Array, common.ValueTypeUint16Array, common.ValueTypeUint32Array, common.ValueTypeUint64Array:
		return parseUintArray(valueType, raw)
	case common.ValueTypeBoolArray, common.ValueTypeStringArray, common.ValueTypeInt8Array, common.ValueTypeInt16Array,
		common.ValueTypeInt32Array, common.ValueTypeInt64Array, common.ValueTypeFloat32Array, common.ValueTypeFloat64Array:
		return parseJSONArray(valueType, raw)
	case common.ValueTypeObject:
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			// device-sdk-go takes an object as the JSON body gave it; a
			// string that is not JSON stays a string.
			return raw, nil
		}
		return v, nil
	default:
		return nil, convertError(http.StatusInternalServerError, "unrecognized value type")
	}
}

var bitSizes = map[string]int{
	common.ValueTypeUint8: 8, common.ValueTypeUint16: 16, common.ValueTypeUint32: 32, common.ValueTypeUint64: 64,
	common.ValueTypeInt8: 8, common.ValueTypeInt16: 16, common.ValueTypeInt32: 32, common.ValueTypeInt64: 64,
	common.ValueTypeUint8Array: 8, common.ValueTypeUint16Array: 16, common.ValueTypeUint32Array: 32, common.ValueTypeUint64Array: 64,
}

func parseUint(valueType, raw string) (any, *apiError) {
	n, err := strconv.ParseUint(raw, 10, bitSizes[valueType])
	if err != nil {
		return nil, conversionFailed(raw, valueType, err)
	}
	return typedUint(valueType, n), nil
}

func typedUint(valueType string, n uint64) any {
	switch valueType {
	case common.ValueTypeUint8, common.ValueTypeUint8Array:
		return uint8(n)
	case common.ValueTypeUint16, common.ValueTypeUint16Array:
		return uint16(n)
	case common.ValueTypeUint32, common.ValueTypeUint32Array:
		return uint32(n)
	default:
		return n
	}
}

func parseInt(valueType, raw string) (any, *apiError) {
	n, err := strconv.ParseInt(raw, 10, bitSizes[valueType])
	if err != nil {
		return nil, conversionFailed(raw, valueType, err)
	}
	switch valueType {
	case common.ValueTypeInt8:
		return int8(n), nil
	case common.ValueTypeInt16:
		return int16(n), nil
	case common.ValueTypeInt32:
		return int32(n), nil
	default:
		return n, nil
	}
}

// parseFloat accepts decimal text and, like device-sdk-go, base64 of the
// big-endian IEEE 754 bytes.
func parseFloat(raw string, bits int) (any, *apiError) {
	f, err := strconv.ParseFloat(raw, bits)
	if err == nil {
		if bits == 32 {
			return float32(f), nil
		}
		return f, nil
	}
	var numErr *strconv.NumError
	if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) {
		return nil, convertError(http.StatusInternalServerError, "NumError -> %s", err)
	}
	decoded, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, convertError(http.StatusInternalServerError, "%s", err)
	}
	reader := bytes.NewReader(decoded)
	if bits == 32 {
		var v float32
		if err := binary.Read(reader, binary.BigEndian, &v); err != nil {
			return nil, convertError(http.StatusInternalServerError, "%s", err)
		}
		if math.IsNaN(float64(v)) {
			return nil, convertError(http.StatusInternalServerError, "fail to parse %v to float32, unexpected result %v", raw, v)
		}
		return v, nil
	}
	var v float64
	if err := binary.Read(reader, binary.BigEndian, &v); err != nil {
		return nil, convertError(http.StatusInternalServerError, "%s", err)
	}
	if math.IsNaN(v) {
		return nil, convertError(http.StatusInternalServerError, "fail to parse %v to float64, unexpected result %v", raw, v)
	}
	return v, nil
}

// parseUintArray splits on commas as device-sdk-go does for unsigned arrays
// (it does not use JSON there, so "[1, 2]" and "1,2" both work).
func parseUintArray(valueType, raw string) (any, *apiError) {
	parts := strings.Split(strings.Trim(raw, "[]"), ",")
	var u8 []uint8
	var u16 []uint16
	var u32 []uint32
	var u64 []uint64
	for _, p := range parts {
		n, err := strconv.ParseUint(strings.Trim(p, " "), 10, bitSizes[valueType])
		if err != nil {
			return nil, conversionFailed(raw, valueType, err)
		}
		switch v := typedUint(valueType, n).(type) {
		case uint8:
			u8 = append(u8, v)
		case uint16:
			u16 = append(u16, v)
		case uint32:
			u32 = append(u32, v)
		case uint64:
			u64 = append(u64, v)
		}
	}
	switch valueType {
	case common.ValueTypeUint8Array:
		return u8, nil
	case common.ValueTypeUint16Array:
		return u16, nil
	case common.ValueTypeUint32Array:
		return u32, nil
	default:
		return u64, nil
	}
}

func parseJSONArray(valueType, raw string) (any, *apiError) {
	var target any
	switch valueType {
	case common.ValueTypeBoolArray:
		target = &[]bool{}
	case common.ValueTypeStringArray:
		target = &[]string{}
	case common.ValueTypeInt8Array:
		target = &[]int8{}
	case common.ValueTypeInt16Array:
		target = &[]int16{}
	case common.ValueTypeInt32Array:
		target = &[]int32{}
	case common.ValueTypeInt64Array:
		target = &[]int64{}
	case common.ValueTypeFloat32Array:
		target = &[]float32{}
	default:
		target = &[]float64{}
	}
	if err := json.Unmarshal([]byte(raw), target); err != nil {
		return nil, conversionFailed(raw, valueType, err)
	}
	return derefSlice(target), nil
}

func derefSlice(p any) any {
	switch v := p.(type) {
	case *[]bool:
		return *v
	case *[]string:
		return *v
	case *[]int8:
		return *v
	case *[]int16:
		return *v
	case *[]int32:
		return *v
	case *[]int64:
		return *v
	case *[]float32:
		return *v
	case *[]float64:
		return *v
	}
	return p
}

// checkRange is device-sdk-go's write check against the resource's minimum
// and maximum, comparing in the value's own type as it does.
func checkRange(v any, props models.ResourceProperties) *apiError {
	if props.Maximum != nil && exceeds(v, *props.Maximum, true) {
		return newAPIError(http.StatusBadRequest, "failed to transform set parameter -> set command parameter out of maximum value %v", *props.Maximum)
	}
	if props.Minimum != nil && exceeds(v, *props.Minimum, false) {
		return newAPIError(http.StatusBadRequest, "failed to transform set parameter -> set command parameter out of minimum value %v", *props.Minimum)
	}
	return nil
}

// exceeds reports v > limit (above) or v < limit (!above), with the limit
// converted to v's type first.
func exceeds(v any, limit float64, above bool) bool {
	cmp := func(a, b float64) bool {
		if above {
			return a > b
		}
		return a < b
	}
	switch x := v.(type) {
	case uint8:
		return cmp(float64(x), float64(uint8(limit)))
	case uint16:
		return cmp(float64(x), float64(uint16(limit)))
	case uint32:
		return cmp(float64(x), float64(uint32(limit)))
	case uint64:
		if above {
			return x > uint64(limit)
		}
		return x < uint64(limit)
	case int8:
		return cmp(float64(x), float64(int8(limit)))
	case int16:
		return cmp(float64(x), float64(int16(limit)))
	case int32:
		return cmp(float64(x), float64(int32(limit)))
	case int64:
		if above {
			return x > int64(limit)
		}
		return x < int64(limit)
	case float32:
		return cmp(float64(x), float64(float32(limit)))
	case float64:
		return cmp(x, limit)
	}
	return false
}

// initialValue is what a resource reads before anything wrote it: the
// profile's defaultValue, else a value of its type inside its range.
func initialValue(dr models.DeviceResource, frame uint64) resourceValue {
	vt := dr.Properties.ValueType
	if vt == common.ValueTypeBinary {
		return resourceValue{valueType: vt, v: binaryFrame(dr.Properties.MediaType, frame)}
	}
	if dr.Properties.DefaultValue != "" {
		if v, err := parseValue(vt, dr.Properties.DefaultValue); err == nil {
			return resourceValue{valueType: vt, v: v}
		}
	}
	if n, ok := numberAs(vt, startingNumber(dr.Properties)); ok {
		return resourceValue{valueType: vt, v: n}
	}
	switch vt {
	case common.ValueTypeBool:
		return resourceValue{valueType: vt, v: false}
	case common.ValueTypeString:
		return resourceValue{valueType: vt, v: ""}
	case common.ValueTypeObject:
		return resourceValue{valueType: vt, v: map[string]any{}}
	}
	empty, _ := parseJSONArray(vt, "[]")
	if strings.HasPrefix(vt, "Uint") {
		empty, _ = parseUintArray(vt, "0")
	}
	return resourceValue{valueType: vt, v: empty}
}

// startingNumber is mid-range when the profile gives a range, else zero
// pulled inside whichever bound exists.
func startingNumber(p models.ResourceProperties) float64 {
	switch {
	case p.Minimum != nil && p.Maximum != nil:
		return (*p.Minimum + *p.Maximum) / 2
	case p.Minimum != nil && *p.Minimum > 0:
		return *p.Minimum
	case p.Maximum != nil && *p.Maximum < 0:
		return *p.Maximum
	}
	return 0
}

// numberAs converts f to a scalar numeric value type; ok is false for
// other value types.
func numberAs(valueType string, f float64) (any, bool) {
	switch valueType {
	case common.ValueTypeUint8:
		return uint8(math.Round(f)), true
	case common.ValueTypeUint16:
		return uint16(math.Round(f)), true
	case common.ValueTypeUint32:
		return uint32(math.Round(f)), true
	case common.ValueTypeUint64:
		return uint64(math.Round(f)), true
	case common.ValueTypeInt8:
		return int8(math.Round(f)), true
	case common.ValueTypeInt16:
		return int16(math.Round(f)), true
	case common.ValueTypeInt32:
		return int32(math.Round(f)), true
	case common.ValueTypeInt64:
		return int64(math.Round(f)), true
	case common.ValueTypeFloat32:
		return float32(f), true
	case common.ValueTypeFloat64:
		return f, true
	}
	return nil, false
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// drift moves a read-only sensor value a small random step inside its
// range: a physical quantity changing over time. Values without both bounds,
// and writable ones (actuators, set points), hold still.
func drift(rv *resourceValue, props models.ResourceProperties) {
	if props.ReadWrite != common.ReadWrite_R || props.Minimum == nil || props.Maximum == nil {
		return
	}
	cur, ok := asFloat(rv.v)
	if !ok {
		return
	}
	lo, hi := *props.Minimum, *props.Maximum
	next := cur + (hi-lo)/40*(rand.Float64()*2-1)
	next = math.Max(lo, math.Min(hi, next))
	if n, ok := numberAs(rv.valueType, next); ok {
		rv.v = n
	}
}

// binaryFrame is a camera-like picture for image/jpeg resources (a small
// generated JPEG that changes with every frame) and random bytes otherwise.
func binaryFrame(mediaType string, frame uint64) []byte {
	if mediaType != "image/jpeg" {
		b := make([]byte, 64)
		for i := range b {
			b[i] = byte(rand.IntN(256))
		}
		return b
	}
	const w, h = 64, 48
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	bar := int(frame % w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{R: uint8(x * 4), G: uint8(y * 5), B: uint8(frame * 16), A: 255}
			if x == bar {
				c = color.RGBA{R: 255, G: 255, B: 255, A: 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 60})
	return buf.Bytes()
}

// reading renders a value as device-sdk-go puts it in an event: EdgeX's own
// value formatting (floats in exponent form), units, one origin for all.
func reading(profile, device string, dr models.DeviceResource, rv resourceValue, origin int64) (dtos.BaseReading, *apiError) {
	var r dtos.BaseReading
	switch rv.valueType {
	case common.ValueTypeBinary:
		r = dtos.NewBinaryReading(profile, device, dr.Name, rv.v.([]byte), dr.Properties.MediaType)
	case common.ValueTypeObject:
		r = dtos.NewObjectReading(profile, device, dr.Name, rv.v)
	default:
		var err error
		r, err = dtos.NewSimpleReading(profile, device, dr.Name, rv.valueType, rv.v)
		if err != nil {
			return r, newAPIError(http.StatusInternalServerError, "failed to transform CommandValue (DeviceResource: %s, %s: %v) to Reading -> %s",
				dr.Name, rv.valueType, rv.v, err)
		}
	}
	r.Origin = origin
	r.Units = dr.Properties.Units
	return r, nil
}

// formatted is the value as a reading carries it: text for simple values,
// base64 for binary, JSON for objects.
func formatted(dr models.DeviceResource, rv resourceValue) string {
	switch rv.valueType {
	case common.ValueTypeBinary:
		return base64.StdEncoding.EncodeToString(rv.v.([]byte))
	case common.ValueTypeObject:
		data, _ := json.Marshal(rv.v)
		return string(data)
	}
	r, err := dtos.NewSimpleReading("", "", dr.Name, rv.valueType, rv.v)
	if err != nil {
		return fmt.Sprint(rv.v)
	}
	return r.Value
}
