package messagebus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/fxamacker/cbor/v2"
)

// AddEventRequest is the body a device service publishes for each event.
type AddEventRequest struct {
	APIVersion string     `json:"apiVersion"`
	RequestID  string     `json:"requestId"`
	Event      dtos.Event `json:"event"`
}

// cborDecoder bounds nesting and sizes so that a hostile payload costs no
// more memory than its own bytes.
var cborDecoder = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxNestedLevels:  32,
		MaxArrayElements: 1 << 20,
		MaxMapPairs:      1 << 16,
		// EdgeX's CBOR comes from Go structs with json tags; field names are
		// matched the same way encoding/json does.
		DefaultMapType: nil,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// DecodeEvent extracts the device event from an envelope published on an
// events topic, whether the body is JSON or CBOR.
func DecodeEvent(env Envelope) (dtos.Event, error) {
	return decodeEvent(env, nil)
}

// decodeEvent decodes with what a decoder remembers of earlier events, if
// anything (see memo).
func decodeEvent(env Envelope, m *memo) (dtos.Event, error) {
	var req AddEventRequest
	if len(env.Payload) == 0 {
		return req.Event, fmt.Errorf("decode event: %w", errEmptyPayload)
	}
	switch env.ContentType {
	case ContentTypeCBOR:
		if err := cborDecoder.Unmarshal(env.Payload, &req); err != nil {
			return req.Event, fmt.Errorf("decode CBOR event: %w", err)
		}
	case ContentTypeJSON, "":
		if fast, ok := fastEventRequest(env.Payload, m); ok {
			req = fast
		} else if err := json.Unmarshal(env.Payload, &req); err != nil {
			return req.Event, fmt.Errorf("decode JSON event: %w", err)
		}
	default:
		return req.Event, fmt.Errorf("decode event: unsupported content type %q", env.ContentType)
	}
	if err := checkEvent(req.Event); err != nil {
		return req.Event, fmt.Errorf("decode event: %w", err)
	}
	return req.Event, nil
}

// checkEvent refuses events the bridge could not attribute: no device, or
// readings for another device.
func checkEvent(ev dtos.Event) error {
	if ev.DeviceName == "" {
		return errors.New("event has no deviceName")
	}
	for i, r := range ev.Readings {
		if r.ResourceName == "" {
			return fmt.Errorf("reading %d has no resourceName", i)
		}
		if r.DeviceName != "" && r.DeviceName != ev.DeviceName {
			return fmt.Errorf("reading %d is for device %q inside an event for %q", i, r.DeviceName, ev.DeviceName)
		}
	}
	return nil
}

// EncodeEvent renders an event as a device service publishes it: CBOR when
// a reading is of value type Binary, JSON otherwise.
func EncodeEvent(requestID string, ev dtos.Event) (contentType string, payload []byte, err error) {
	req := AddEventRequest{APIVersion: APIVersion, RequestID: requestID, Event: ev}
	for _, r := range ev.Readings {
		if r.ValueType == common.ValueTypeBinary {
			payload, err = cbor.Marshal(req)
			if err != nil {
				return "", nil, fmt.Errorf("encode CBOR event: %w", err)
			}
			return ContentTypeCBOR, payload, nil
		}
	}
	payload, err = json.Marshal(req)
	if err != nil {
		return "", nil, fmt.Errorf("encode JSON event: %w", err)
	}
	return ContentTypeJSON, payload, nil
}

// System event kinds and actions, as core-metadata names them.
const (
	KindDevice        = "device"
	KindDeviceProfile = "deviceprofile"
	KindDeviceService = "deviceservice"

	ActionAdd    = "add"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// SystemEvent is core-metadata's announcement of an add, update or delete,
// carrying the whole object in Details.
type SystemEvent struct {
	APIVersion string            `json:"apiVersion"`
	Type       string            `json:"type"`
	Action     string            `json:"action"`
	Source     string            `json:"source"`
	Owner      string            `json:"owner"`
	Tags       map[string]string `json:"tags"`
	Details    json.RawMessage   `json:"details"`
	// Timestamp in nanoseconds since the epoch.
	Timestamp int64 `json:"timestamp"`
}

// DecodeSystemEvent extracts a core-metadata system event from an envelope.
func DecodeSystemEvent(env Envelope) (SystemEvent, error) {
	var se SystemEvent
	if len(env.Payload) == 0 {
		return se, fmt.Errorf("decode system event: %w", errEmptyPayload)
	}
	if err := json.Unmarshal(env.Payload, &se); err != nil {
		return se, fmt.Errorf("decode system event: %w", err)
	}
	switch se.Type {
	case KindDevice, KindDeviceProfile, KindDeviceService:
	default:
		return se, fmt.Errorf("decode system event: unknown type %q", se.Type)
	}
	switch se.Action {
	case ActionAdd, ActionUpdate, ActionDelete:
	default:
		return se, fmt.Errorf("decode system event: unknown action %q", se.Action)
	}
	return se, nil
}

// Device returns the device a device system event is about.
func (se SystemEvent) Device() (dtos.Device, error) {
	var d dtos.Device
	return d, se.details(KindDevice, &d, func() string { return d.Name })
}

// Profile returns the profile a deviceprofile system event is about.
func (se SystemEvent) Profile() (dtos.DeviceProfile, error) {
	var p dtos.DeviceProfile
	return p, se.details(KindDeviceProfile, &p, func() string { return p.Name })
}

// Service returns the service a deviceservice system event is about.
func (se SystemEvent) Service() (dtos.DeviceService, error) {
	var s dtos.DeviceService
	return s, se.details(KindDeviceService, &s, func() string { return s.Name })
}

func (se SystemEvent) details(kind string, into any, name func() string) error {
	if se.Type != kind {
		return fmt.Errorf("system event is about a %s, not a %s", se.Type, kind)
	}
	// Numbers inside free-form maps (protocol properties, attributes, tags)
	// keep their exact text rather than passing through float64.
	dec := json.NewDecoder(bytes.NewReader(se.Details))
	dec.UseNumber()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("decode %s in system event: %w", kind, err)
	}
	if name() == "" {
		return fmt.Errorf("%s in system event has no name", kind)
	}
	return nil
}

// EncodeSystemEvent renders a system event as core-metadata publishes it.
func EncodeSystemEvent(kind, action, owner string, details any, timestampNanos int64) ([]byte, error) {
	raw, err := json.Marshal(details)
	if err != nil {
		return nil, fmt.Errorf("encode system event details: %w", err)
	}
	se := SystemEvent{APIVersion: APIVersion, Type: kind, Action: action, Source: "core-metadata",
		Owner: owner, Details: raw, Timestamp: timestampNanos}
	data, err := json.Marshal(se)
	if err != nil {
		return nil, fmt.Errorf("encode system event: %w", err)
	}
	return data, nil
}

// EventDecoder decodes device events as they arrive on an events topic,
// envelope and body, keeping its decoding buffer from one message to the
// next. It is for one goroutine, as a subscription delivers.
type EventDecoder struct {
	// A JSON event is copied out of its payload while decoding, so one
	// buffer serves every JSON payload. CBOR may share the payload's
	// memory (binary values), so a CBOR payload is never reused; nor is a
	// rare large one kept for the decoder's whole life.
	scratch []byte
	memo    memo
}

// Decode decodes one bus message holding a device event.
func (d *EventDecoder) Decode(message []byte) (dtos.Event, error) {
	env, err := decodeEnvelope(message, d.scratch)
	if err != nil {
		return dtos.Event{}, err
	}
	if env.ContentType != ContentTypeCBOR && cap(env.Payload) <= maxReusedPayload {
		d.scratch = env.Payload
	}
	return decodeEvent(env, &d.memo)
}
