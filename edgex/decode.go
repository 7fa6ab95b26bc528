package edgex

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// The decoders below read what EdgeX answers. They are strict on purpose: an
// answer that is not what the v3 API promises becomes KindMalformed, never
// an empty result, because the bridge treats "EdgeX listed no such object"
// as evidence that the object is gone.

// envelope is what every EdgeX v3 answer, success or error, carries.
type envelope struct {
	APIVersion string `json:"apiVersion"`
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
}

// itemStatus is one element of a 207 multi-status answer.
type itemStatus struct {
	envelope
	ID string `json:"id"`
}

// decodeJSON keeps numbers as json.Number so that values inside free-form
// maps (protocols, attributes, tags) keep their exact text, and refuses
// anything after the value.
func decodeJSON(data []byte, v any) error {
	if n := longestNumber(data); n > maxNumberLength {
		// encoding/json would copy such a literal several times over
		// before refusing it; no EdgeX field needs it.
		return fmt.Errorf("a JSON number of %d characters", n)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		// encoding/json quotes whole literals in its errors: a hostile
		// number of megabytes would otherwise reach every log line.
		return errors.New(shorten(err.Error()))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

func malformed(cause error, format string, args ...any) *Error {
	return &Error{Kind: KindMalformed, Message: fmt.Sprintf(format, args...), Err: cause}
}

func isSuccess(code int) bool { return code >= 200 && code < 300 }

// decodeSuccessObject decodes a 2xx answer that must be a JSON object with a
// success statusCode, and returns its top-level fields.
func decodeSuccessObject(body []byte) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := decodeJSON(body, &fields); err != nil || fields == nil {
		return nil, malformed(err, "answer is not a JSON object: %s", excerpt(body))
	}
	var env envelope
	if err := decodeJSON(body, &env); err != nil {
		return nil, malformed(err, "answer has an unreadable envelope")
	}
	if !isSuccess(env.StatusCode) {
		return nil, malformed(nil, "success status with an EdgeX error body (statusCode %d): %s", env.StatusCode, env.Message)
	}
	return fields, nil
}

// decodeField decodes a required, non-null field of an answer object.
func decodeField(fields map[string]json.RawMessage, name string, out any) error {
	raw, ok := fields[name]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return malformed(nil, "answer has no %q", name)
	}
	if err := decodeJSON(raw, out); err != nil {
		return malformed(err, "answer has an unreadable %q", name)
	}
	return nil
}

// decodeAck checks a body-less success such as {"apiVersion":"v3","statusCode":200}.
func decodeAck(body []byte) error {
	_, err := decodeSuccessObject(body)
	return err
}

// decodeOne decodes a single-object answer such as {"device":{...}}.
func decodeOne[T any](body []byte, field string) (T, error) {
	var out T
	fields, err := decodeSuccessObject(body)
	if err != nil {
		return out, err
	}
	err = decodeField(fields, field, &out)
	return out, err
}

// decodePage decodes a list answer such as {"totalCount":5,"devices":[...]}.
// A missing totalCount or item array is malformed, not an empty page.
func decodePage[T any](body []byte, field string) (Page[T], error) {
	fields, err := decodeSuccessObject(body)
	if err != nil {
		return Page[T]{}, err
	}
	var total int
	if err := decodeField(fields, "totalCount", &total); err != nil {
		return Page[T]{}, err
	}
	if total < 0 {
		return Page[T]{}, malformed(nil, "negative totalCount %d", total)
	}
	items := []T{}
	if raw, ok := fields[field]; !ok {
		return Page[T]{}, malformed(nil, "answer has no %q", field)
	} else if err := decodeJSON(raw, &items); err != nil {
		return Page[T]{}, malformed(err, "answer has an unreadable %q", field)
	}
	if items == nil { // "null" decodes to nil; EdgeX sends [] but both mean no items
		items = []T{}
	}
	return Page[T]{Items: items, TotalCount: total}, nil
}

// decodeResults decodes a multi-status answer (a JSON array with one
// envelope per item sent) into per-item results.
func decodeResults(body []byte, sent int) ([]Result, error) {
	var items []itemStatus
	if err := decodeJSON(body, &items); err != nil || items == nil {
		var env envelope
		if decodeJSON(body, &env) == nil && env.Message != "" {
			return nil, malformed(nil, "an EdgeX error instead of per-item results (statusCode %d): %s", env.StatusCode, env.Message)
		}
		return nil, malformed(err, "per-item results are not a JSON array: %s", excerpt(body))
	}
	if len(items) != sent {
		return nil, malformed(nil, "%d per-item results for %d items sent", len(items), sent)
	}
	results := make([]Result, len(items))
	for i, it := range items {
		results[i] = resultOf(it)
	}
	return results, nil
}

func resultOf(it itemStatus) Result {
	switch {
	case isSuccess(it.StatusCode):
		return Result{ID: it.ID}
	case it.StatusCode == 0:
		return Result{Err: malformed(nil, "per-item result without statusCode")}
	default:
		return Result{Err: &Error{Kind: KindForStatus(it.StatusCode), StatusCode: it.StatusCode, Message: it.Message}}
	}
}

// decodePing checks the ping answer, which unlike the others carries no
// statusCode; its apiVersion tells EdgeX v3 apart from anything else
// listening on the port.
func decodePing(body []byte) error {
	var env envelope
	if err := decodeJSON(body, &env); err != nil {
		return malformed(err, "ping answer is not JSON: %s", excerpt(body))
	}
	if env.StatusCode != 0 && !isSuccess(env.StatusCode) {
		return malformed(nil, "success status with an EdgeX error body (statusCode %d): %s", env.StatusCode, env.Message)
	}
	if env.APIVersion != "v3" {
		return malformed(nil, "ping answered apiVersion %q, want v3", env.APIVersion)
	}
	return nil
}

// errorFromAnswer types a non-2xx answer by its HTTP status. The message is
// EdgeX's own when the body is its JSON error envelope, otherwise a readable
// excerpt (a proxy's or a timeout handler's HTML page).
func errorFromAnswer(status int, body []byte) *Error {
	e := &Error{Kind: KindForStatus(status), StatusCode: status}
	var env envelope
	if decodeJSON(body, &env) == nil && (env.Message != "" || env.StatusCode != 0) {
		e.Message = shorten(env.Message)
		return e
	}
	e.Message = http.StatusText(status)
	if text := excerpt(body); text != "" {
		e.Message += "; answer was not EdgeX JSON: " + text
	}
	return e
}

// maxMessage bounds what an answer may put into an error: enough for any
// message EdgeX writes, and a broken EdgeX cannot flood logs and conditions.
const maxMessage = 1024

// shorten caps a message at maxMessage bytes, saying how long it was.
func shorten(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	return fmt.Sprintf("%s… (%d bytes in all)", strings.ToValidUTF8(msg[:maxMessage], ""), len(msg))
}

const maxExcerpt = 160

// excerpt turns a body into one short line a person can read in a status
// condition: markup removed, whitespace collapsed, length capped.
func excerpt(body []byte) string {
	body = body[:min(len(body), 4096)] // enough for the text of an error page
	var b strings.Builder
	inTag := false
	for _, r := range strings.ToValidUTF8(string(body), "\uFFFD") {
		switch {
		case r == '<':
			inTag = true
			b.WriteByte(' ')
		case r == '>' && inTag:
			inTag = false
		case !inTag:
			b.WriteRune(r)
		}
	}
	text := strings.Join(strings.Fields(b.String()), " ")
	if utf8.RuneCountInString(text) > maxExcerpt {
		text = string([]rune(text)[:maxExcerpt]) + "…"
	}
	return text
}

// maxNumberLength is far beyond any number EdgeX writes (a float64 in full
// takes 24 characters).
const maxNumberLength = 400

// longestNumber returns the length of the longest run of number characters
// outside JSON strings, in one pass without allocating.
func longestNumber(data []byte) int {
	longest, run := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString, run = true, 0
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			run++
			longest = max(longest, run)
		default:
			run = 0
		}
	}
	return longest
}
