package convert

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// The CRD holds a resource's minimum, maximum, scale, offset, base, mask
// and shift as text, EdgeX as *float64, *uint64 and *int64. Empty text is
// nil. The patterns are the CRD's own, so that the conversion accepts
// exactly what admission accepts (strconv alone would also take "Inf",
// "0x1p3" or "1_000").
var (
	decimalPattern = regexp.MustCompile(`^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$`)
	maskPattern    = regexp.MustCompile(`^([0-9]+|0[xX][0-9a-fA-F]+)$`)
	shiftPattern   = regexp.MustCompile(`^[-+]?[0-9]+$`)
)

func parseFloatText(field, text string) (*float64, error) {
	if text == "" {
		return nil, nil
	}
	if !decimalPattern.MatchString(text) {
		return nil, fmt.Errorf("%s %q is not a decimal number", field, text)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%s %q does not fit a 64-bit float", field, text)
	}
	return &f, nil
}

// formatFloatText writes a float as EdgeX's own JSON shows it (40001, 0.1,
// -20, 1e+21): the shortest text that reads back as the same float64, so
// "40001" never becomes "40001.000000" and a spec mirrored from EdgeX
// reads like the EdgeX API.
func formatFloatText(f *float64) string {
	if f == nil {
		return ""
	}
	if b, err := json.Marshal(*f); err == nil {
		return string(b)
	}
	// NaN and infinities: EdgeX cannot send them, but a DTO built in Go can
	// hold them.
	return strconv.FormatFloat(*f, 'g', -1, 64)
}

// parseMaskText reads decimal or 0x hex. A leading zero means decimal, as
// the CRD documents, never octal (strconv's base 0 would read "010" as 8).
func parseMaskText(text string) (*uint64, error) {
	if text == "" {
		return nil, nil
	}
	if !maskPattern.MatchString(text) {
		return nil, fmt.Errorf("mask %q is neither decimal nor 0x hex", text)
	}
	var n uint64
	var err error
	if hex, ok := strings.CutPrefix(strings.ToLower(text), "0x"); ok {
		n, err = strconv.ParseUint(hex, 16, 64)
	} else {
		n, err = strconv.ParseUint(text, 10, 64)
	}
	if err != nil {
		return nil, fmt.Errorf("mask %q does not fit 64 bits", text)
	}
	return &n, nil
}

// formatMaskText writes decimal: it is what EdgeX's API shows and what
// yurt-iot-dock wrote into the objects it imported, so those mirror without
// a rewrite. A managed spec may keep its hex: specs and EdgeX are compared
// as numbers, never as text.
func formatMaskText(m *uint64) string {
	if m == nil {
		return ""
	}
	return strconv.FormatUint(*m, 10)
}

func parseShiftText(text string) (*int64, error) {
	if text == "" {
		return nil, nil
	}
	if !shiftPattern.MatchString(text) {
		return nil, fmt.Errorf("shift %q is not an integer", text)
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("shift %q does not fit 64 bits", text)
	}
	return &n, nil
}

func formatShiftText(s *int64) string {
	if s == nil {
		return ""
	}
	return strconv.FormatInt(*s, 10)
}

func sameFloatPtr(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b || (math.IsNaN(*a) && math.IsNaN(*b))
}

func samePtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
