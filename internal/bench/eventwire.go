package bench

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"

	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// The generator writes device events itself rather than through the
// simulator and encoding/json: at 40,000 readings a second, reflection
// and a mutex shared with the simulator's REST API would cost the
// generator more CPU than the bridge it measures, on the same two cores.
// The bytes are those a device service publishes (encoding/json's field
// order and spelling, EdgeX's text for values); TestEventWireMatchesEdgeX
// holds the two to it.

// wireReading is one reading of an event to write.
type wireReading struct {
	resource, valueType, units, value string
}

// wireEvent is one event to write.
type wireEvent struct {
	device, profile, source string
	origin                  int64
	readings                []wireReading
}

// idSource hands out unique ids in UUID form: EdgeX's ids are random
// UUIDs, and nothing reads them but for their uniqueness.
type idSource struct {
	prefix string // 8-4-4-4- hex digits, fixed for the run
	next   atomic.Uint64
}

func newIDSource(seed uint64) *idSource {
	hex := strconv.FormatUint(seed|1<<63, 16)[:16]
	return &idSource{prefix: hex[:8] + "-" + hex[8:12] + "-4" + hex[13:16] + "-8000-"}
}

// appendID appends the next id.
func (s *idSource) appendID(dst []byte) []byte {
	n := s.next.Add(1)
	dst = append(dst, s.prefix...)
	const digits = "0123456789abcdef"
	for shift := 44; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(n>>shift)&0xf])
	}
	return dst
}

// originClock gives every event a distinct origin, as the simulator does,
// so that the bridge never sees two readings of a resource taken at once.
type originClock struct{ last atomic.Int64 }

func (c *originClock) now() int64 {
	for {
		now, last := time.Now().UnixNano(), c.last.Load()
		if now <= last {
			now = last + 1
		}
		if c.last.CompareAndSwap(last, now) {
			return now
		}
	}
}

// appendEventRequest appends the JSON body a device service publishes for
// ev: an AddEventRequest.
func appendEventRequest(dst []byte, ids *idSource, ev wireEvent) []byte {
	dst = append(dst, `{"apiVersion":"v3","requestId":"`...)
	dst = ids.appendID(dst)
	dst = append(dst, `","event":{"apiVersion":"v3","id":"`...)
	dst = ids.appendID(dst)
	dst = append(dst, `","deviceName":`...)
	dst = appendJSONString(dst, ev.device)
	dst = append(dst, `,"profileName":`...)
	dst = appendJSONString(dst, ev.profile)
	dst = append(dst, `,"sourceName":`...)
	dst = appendJSONString(dst, ev.source)
	dst = append(dst, `,"origin":`...)
	dst = strconv.AppendInt(dst, ev.origin, 10)
	dst = append(dst, `,"readings":[`...)
	for i, r := range ev.readings {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":"`...)
		dst = ids.appendID(dst)
		dst = append(dst, `","origin":`...)
		dst = strconv.AppendInt(dst, ev.origin, 10)
		dst = append(dst, `,"deviceName":`...)
		dst = appendJSONString(dst, ev.device)
		dst = append(dst, `,"resourceName":`...)
		dst = appendJSONString(dst, r.resource)
		dst = append(dst, `,"profileName":`...)
		dst = appendJSONString(dst, ev.profile)
		dst = append(dst, `,"valueType":`...)
		dst = appendJSONString(dst, r.valueType)
		if r.units != "" {
			dst = append(dst, `,"units":`...)
			dst = appendJSONString(dst, r.units)
		}
		dst = append(dst, `,"value":`...)
		dst = appendJSONString(dst, r.value)
		dst = append(dst, '}')
	}
	return append(dst, "]}}"...)
}

// appendEnvelope appends the message-bus envelope around a JSON payload.
func appendEnvelope(dst []byte, ids *idSource, payload []byte) []byte {
	dst = append(dst, `{"apiVersion":"v3","receivedTopic":"","correlationID":"`...)
	dst = ids.appendID(dst)
	dst = append(dst, `","requestID":"","errorCode":0,"payload":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, payload)
	dst = append(dst, `","contentType":"`...)
	dst = append(dst, messagebus.ContentTypeJSON...)
	return append(dst, `"}`...)
}

// appendJSONString appends s as encoding/json writes it: plain text
// directly, anything it would escape through encoding/json itself.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s)
			return append(dst, quoted...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// edgexValue is the text EdgeX puts in a reading for a value the benchmark
// writes in plain decimal: device-sdk-go formats floats with %e.
func edgexValue(valueType, text string) string {
	switch valueType {
	case common.ValueTypeFloat32:
		if f, err := strconv.ParseFloat(text, 32); err == nil {
			return strconv.FormatFloat(f, 'e', 6, 32)
		}
	case common.ValueTypeFloat64:
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return strconv.FormatFloat(f, 'e', 6, 64)
		}
	case common.ValueTypeBool:
		if b, err := strconv.ParseBool(text); err == nil {
			return strconv.FormatBool(b)
		}
	}
	return text
}
