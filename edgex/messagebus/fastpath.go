package messagebus

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
)

// Device events are most of what crosses the bus, and encoding/json spends
// most of a bridge's CPU on them: it validates the whole message before
// decoding it, and the envelope's payload is a long base64 string it reads
// three times. The readers here decode the shape device services actually
// publish (objects of known keys holding plain strings and integers) in
// one pass. They never judge input: at anything outside that shape (a
// backslash escape, a float, null, an unknown or repeated key, trailing
// bytes...) they give up, and encoding/json decodes the message instead,
// errors included. So they must agree with encoding/json wherever they
// answer; FuzzFastPathAgreesWithEncodingJSON holds them to it.

// reader walks JSON text; every method reports false when the text is not
// in the shape the fast path handles.
type reader struct {
	data []byte
	pos  int
	// memo, when not nil, is what one decoder keeps from event to event.
	memo *memo
}

// memo is what a decoder of a stream of events keeps between them: the
// texts that repeat from event to event (device, profile, source and
// resource names, value types, units), so that each is one string however
// many events carry it, and room to collect readings in. A bridge's
// devices and profiles are few enough to keep; names longer than
// maxNameLength, and new names past maxNames (a hostile or runaway stream
// of names), are only copied, so that the memo stays under 16 MB.
type memo struct {
	names    map[string]string
	readings []dtos.BaseReading
}

const (
	maxNames      = 1 << 16
	maxNameLength = 256
)

// intern returns b as a string, shared with earlier identical ones.
func (m *memo) intern(b []byte) string {
	if m == nil {
		return string(b)
	}
	if s, ok := m.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(s) > maxNameLength || len(m.names) >= maxNames {
		return s
	}
	if m.names == nil {
		m.names = map[string]string{}
	}
	m.names[s] = s
	return s
}

func (r *reader) skipSpace() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// next consumes c, after any whitespace.
func (r *reader) next(c byte) bool {
	r.skipSpace()
	if r.pos < len(r.data) && r.data[r.pos] == c {
		r.pos++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (r *reader) end() bool {
	r.skipSpace()
	return r.pos == len(r.data)
}

// rawString returns a string's bytes without the quotes. Strings with
// escapes or control characters, or that are not valid UTF-8 (which
// encoding/json would replace), are left to encoding/json.
func (r *reader) rawString() ([]byte, bool) {
	if !r.next('"') {
		return nil, false
	}
	n := bytes.IndexByte(r.data[r.pos:], '"')
	if n < 0 {
		return nil, false
	}
	s := r.data[r.pos : r.pos+n]
	ascii := true
	for _, c := range s {
		if c < ' ' || c == '\\' {
			return nil, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(s) {
		return nil, false
	}
	r.pos += n + 1
	return s, true
}

// str reads the string value of key number i into dst.
func (r *reader) str(seen *uint64, i int, dst *string) bool {
	if !once(seen, i) {
		return false
	}
	s, ok := r.rawString()
	*dst = string(s)
	return ok
}

// usual reads the string value of key number i into dst, as the constant
// usual when it holds that text: an envelope's version and content type
// are the same in every message.
func (r *reader) usual(seen *uint64, i int, dst *string, usual ...string) bool {
	if !once(seen, i) {
		return false
	}
	s, ok := r.rawString()
	for _, u := range usual {
		if string(s) == u {
			*dst = u
			return ok
		}
	}
	*dst = string(s)
	return ok
}

// name reads the string value of key number i into dst, interned (see
// names): a string per name and event is most of what an event would
// allocate.
func (r *reader) name(seen *uint64, i int, dst *string) bool {
	if !once(seen, i) {
		return false
	}
	s, ok := r.rawString()
	if ok {
		*dst = r.memo.intern(s)
	}
	return ok
}

// integer reads the integer value of key number i into dst.
func (r *reader) integer(seen *uint64, i int, dst *int64) bool {
	if !once(seen, i) {
		return false
	}
	v, ok := r.int64()
	*dst = v
	return ok
}

// base64 decodes a string as encoding/json decodes one into a []byte,
// into buf when it is large enough.
func (r *reader) base64(buf []byte) ([]byte, bool) {
	s, ok := r.rawString()
	if !ok {
		return nil, false
	}
	size := base64.StdEncoding.DecodedLen(len(s))
	out := buf[:0]
	if out == nil || cap(out) < size {
		out = make([]byte, size)
	}
	out = out[:size]
	n, err := base64.StdEncoding.Decode(out, s)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

// int64 reads an integer in JSON's own spelling: no leading zeros, no
// fraction or exponent, within int64.
func (r *reader) int64() (int64, bool) {
	r.skipSpace()
	start := r.pos
	if r.pos < len(r.data) && r.data[r.pos] == '-' {
		r.pos++
	}
	digits := r.pos
	for r.pos < len(r.data) && r.data[r.pos] >= '0' && r.data[r.pos] <= '9' {
		r.pos++
	}
	switch {
	case r.pos == digits:
		return 0, false
	case r.data[digits] == '0' && r.pos-digits > 1:
		return 0, false
	case r.pos < len(r.data) && (r.data[r.pos] == '.' || r.data[r.pos] == 'e' || r.data[r.pos] == 'E'):
		return 0, false
	}
	v, err := strconv.ParseInt(string(r.data[start:r.pos]), 10, 64)
	return v, err == nil
}

// object reads an object whose keys field knows, each at most once; field
// reads the value and reports false for a key it does not know. seen has
// room for 64 keys, more than any object here has.
func (r *reader) object(field func(key []byte, seen *uint64) bool) bool {
	if !r.next('{') {
		return false
	}
	var seen uint64
	if r.next('}') {
		return true
	}
	for {
		key, ok := r.rawString()
		if !ok || !r.next(':') || !field(key, &seen) {
			return false
		}
		if r.next('}') {
			return true
		}
		if !r.next(',') {
			return false
		}
	}
}

// once marks key number i seen, and reports false if it already was:
// encoding/json lets the last of repeated keys win, and repeated keys are
// rare enough to leave to it.
func once(seen *uint64, i int) bool {
	bit := uint64(1) << i
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// fastEnvelope decodes an envelope without query parameters. The payload
// is decoded into buf when it fits, so that a caller done with one payload
// before the next can keep reusing the memory.
func fastEnvelope(data, buf []byte) (Envelope, bool) {
	var env Envelope
	r := &reader{data: data}
	ok := r.object(func(key []byte, seen *uint64) bool {
		switch string(key) {
		case "apiVersion":
			return r.usual(seen, 0, &env.APIVersion, APIVersion)
		case "receivedTopic":
			return r.str(seen, 1, &env.ReceivedTopic)
		case "correlationID":
			return r.str(seen, 2, &env.CorrelationID)
		case "requestID":
			return r.str(seen, 3, &env.RequestID)
		case "errorCode":
			var code int64
			ok := r.integer(seen, 4, &code)
			env.ErrorCode = int(code)
			return ok && int64(env.ErrorCode) == code
		case "payload":
			if !once(seen, 5) {
				return false
			}
			var ok bool
			env.Payload, ok = r.base64(buf)
			return ok
		case "contentType":
			return r.usual(seen, 6, &env.ContentType, ContentTypeJSON, ContentTypeCBOR)
		}
		return false
	})
	return env, ok && r.end()
}

// fastEventRequest decodes an event request whose event and readings
// carry no tags and whose readings are simple values (no binary or object
// values).
func fastEventRequest(data []byte, m *memo) (AddEventRequest, bool) {
	var req AddEventRequest
	r := &reader{data: data, memo: m}
	ok := r.object(func(key []byte, seen *uint64) bool {
		switch string(key) {
		case "apiVersion":
			return r.name(seen, 0, &req.APIVersion)
		case "requestId":
			return r.str(seen, 1, &req.RequestID)
		case "event":
			return once(seen, 2) && r.event(&req.Event)
		}
		return false
	})
	return req, ok && r.end()
}

func (r *reader) event(ev *dtos.Event) bool {
	return r.object(func(key []byte, seen *uint64) bool {
		switch string(key) {
		case "apiVersion":
			return r.name(seen, 0, &ev.ApiVersion)
		case "id":
			return r.str(seen, 1, &ev.Id)
		case "deviceName":
			return r.name(seen, 2, &ev.DeviceName)
		case "profileName":
			return r.name(seen, 3, &ev.ProfileName)
		case "sourceName":
			return r.name(seen, 4, &ev.SourceName)
		case "origin":
			return r.integer(seen, 5, &ev.Origin)
		case "readings":
			return once(seen, 6) && r.readings(ev)
		}
		return false
	})
}

func (r *reader) readings(ev *dtos.Event) bool {
	if !r.next('[') {
		return false
	}
	var readings []dtos.BaseReading
	if r.memo != nil {
		readings = r.memo.readings[:0]
	}
	if !r.next(']') {
		for {
			var reading dtos.BaseReading
			if !r.reading(&reading) {
				return false
			}
			readings = append(readings, reading)
			if r.next(']') {
				break
			}
			if !r.next(',') {
				return false
			}
		}
	}
	// The event owns an array of its own, of the right length; as
	// encoding/json, an empty array is an empty slice, not nil.
	ev.Readings = append(make([]dtos.BaseReading, 0, len(readings)), readings...)
	if r.memo != nil {
		clear(readings) // so that the memo holds on to no event's text
		r.memo.readings = readings
	}
	return true
}

func (r *reader) reading(rd *dtos.BaseReading) bool {
	return r.object(func(key []byte, seen *uint64) bool {
		switch string(key) {
		case "id":
			return r.str(seen, 0, &rd.Id)
		case "origin":
			return r.integer(seen, 1, &rd.Origin)
		case "deviceName":
			return r.name(seen, 2, &rd.DeviceName)
		case "resourceName":
			return r.name(seen, 3, &rd.ResourceName)
		case "profileName":
			return r.name(seen, 4, &rd.ProfileName)
		case "valueType":
			return r.name(seen, 5, &rd.ValueType)
		case "units":
			return r.name(seen, 6, &rd.Units)
		case "value":
			return r.str(seen, 7, &rd.Value)
		case "mediaType":
			return r.name(seen, 8, &rd.MediaType)
		}
		return false
	})
}
