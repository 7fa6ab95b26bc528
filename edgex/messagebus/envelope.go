package messagebus

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Content types EdgeX puts in an envelope.
const (
	ContentTypeJSON = "application/json"
	ContentTypeCBOR = "application/cbor"
	ContentTypeText = "text/plain"
)

// APIVersion is the only envelope version EdgeX 3 sends and accepts.
const APIVersion = "v3"

// MaxMessageSize bounds an MQTT message the codecs accept. EdgeX's own
// default broker limit is far below it; a larger message is refused, never
// buffered.
const MaxMessageSize = 16 << 20

// Envelope is EdgeX's MQTT message wrapper. Payload travels as base64 in the
// JSON text.
type Envelope struct {
	APIVersion    string            `json:"apiVersion"`
	ReceivedTopic string            `json:"receivedTopic"`
	CorrelationID string            `json:"correlationID"`
	RequestID     string            `json:"requestID"`
	ErrorCode     int               `json:"errorCode"`
	Payload       []byte            `json:"payload"`
	ContentType   string            `json:"contentType"`
	QueryParams   map[string]string `json:"queryParams,omitempty"`
}

// ErrMessageTooLarge is returned for messages over MaxMessageSize.
var ErrMessageTooLarge = fmt.Errorf("message larger than %d bytes", MaxMessageSize)

// DecodeEnvelope parses an envelope as it arrives on the bus.
func DecodeEnvelope(data []byte) (Envelope, error) {
	return decodeEnvelope(data, nil)
}

// decodeEnvelope decodes the payload into buf when it can (see
// fastEnvelope).
func decodeEnvelope(data, buf []byte) (Envelope, error) {
	var env Envelope
	if len(data) > MaxMessageSize {
		return env, ErrMessageTooLarge
	}
	if fast, ok := fastEnvelope(data, buf); ok {
		env = fast
	} else if err := json.Unmarshal(data, &env); err != nil {
		return env, fmt.Errorf("decode message envelope: %w", err)
	}
	if env.APIVersion != APIVersion {
		return env, fmt.Errorf("decode message envelope: apiVersion %q, want %q", env.APIVersion, APIVersion)
	}
	return env, nil
}

// Encode renders the envelope as EdgeX publishes it.
func (e Envelope) Encode() ([]byte, error) {
	if e.APIVersion == "" {
		e.APIVersion = APIVersion
	}
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode message envelope: %w", err)
	}
	return data, nil
}

// IsError reports whether the envelope carries an error (errorCode 1 and a
// text payload), as core-command answers failed commands.
func (e Envelope) IsError() bool { return e.ErrorCode != 0 }

var errEmptyPayload = errors.New("envelope has no payload")
