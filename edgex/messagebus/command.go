package messagebus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/go-logr/logr"
	"github.com/google/uuid"

	"github.com/edgebridge/edgebridge/edgex"
)

// CommandResponse is core-command's answer to a Command.
type CommandResponse struct {
	// Event is what a get read; nil for a set, and for a get that asked
	// for no event (ds-returnevent=false).
	Event *dtos.Event
	// Envelope is the response as it arrived.
	Envelope Envelope
}

// Publish sends payload on topic (QoS 0, not retained) and waits, within
// ctx and CommandTimeout, until it was handed to the network.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte) error {
	return c.publishChecked(ctx, topic, payload, false)
}

// PublishRetained is Publish with the broker keeping the message as the
// topic's last word, which it hands to every later subscriber, until a
// newer retained message replaces it.
func (c *Client) PublishRetained(ctx context.Context, topic string, payload []byte) error {
	return c.publishChecked(ctx, topic, payload, true)
}

func (c *Client) publishChecked(ctx context.Context, topic string, payload []byte, retained bool) error {
	op := "publish to " + topic
	if err := checkTopic(topic); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(payload) > MaxMessageSize {
		return fmt.Errorf("%s: %w", op, ErrMessageTooLarge)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	if err := c.publishMessage(ctx, topic, payload, retained); err != nil {
		return &edgex.Error{Kind: edgex.KindUnavailable, Op: op, Err: err}
	}
	return nil
}

func (c *Client) publish(ctx context.Context, topic string, payload []byte) error {
	return c.publishMessage(ctx, topic, payload, false)
}

func (c *Client) publishMessage(ctx context.Context, topic string, payload []byte, retained bool) error {
	if c.life.Err() != nil {
		return ErrClosed
	}
	// paho would accept a QoS 0 message while disconnected and silently
	// drop it; failing now lets the caller retry.
	if !c.Connected() {
		return ErrNotConnected
	}
	tok := c.mqtt.Publish(topic, 0, retained, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-c.life.Done():
		return ErrClosed
	}
}

// Command runs a device command through core-command's external MQTT API:
// method is MethodGet (query may carry ds-returnevent, ds-pushevent) or
// MethodSet (values maps each resource to its new value). It waits for the
// response within ctx and CommandTimeout; many commands may be in flight.
//
// Errors are *edgex.Error: KindUnavailable when no answer came in time, the
// client is not connected or was closed; the status core-command reported
// (KindNotFound, KindNotAllowed, KindLocked...) when it refused; and
// KindMalformed when the answer could not be read.
func (c *Client) Command(ctx context.Context, device, command, method string, values, query map[string]string) (CommandResponse, error) {
	op := fmt.Sprintf("%s command %q of device %q", method, command, device)
	req, err := newCommandRequest(device, command, method, values, query)
	if err != nil {
		return CommandResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	data, err := req.Encode()
	if err != nil {
		return CommandResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	answer := c.commands.expect(req.RequestID)
	defer c.commands.forget(req.RequestID)
	if err := c.publish(ctx, c.topics.CommandRequest(device, command, method), data); err != nil {
		return CommandResponse{}, &edgex.Error{Kind: edgex.KindUnavailable, Op: op, Err: err}
	}
	select {
	case env := <-answer:
		return commandResult(op, device, env)
	case <-ctx.Done():
		return CommandResponse{}, &edgex.Error{Kind: edgex.KindUnavailable, Op: op, Message: "no response from core-command", Err: ctx.Err()}
	case <-c.life.Done():
		return CommandResponse{}, &edgex.Error{Kind: edgex.KindUnavailable, Op: op, Err: ErrClosed}
	}
}

// PingCoreCommand reports whether core-command answers on its external
// MQTT API, within ctx and CommandTimeout. It asks for one entry of the
// command query of all devices: the cheapest request core-command serves,
// and one whose error answer (core-metadata away, say) still proves that
// core-command itself is there to take commands.
func (c *Client) PingCoreCommand(ctx context.Context) error {
	const op = "ask core-command for one device's commands"
	req := Envelope{
		APIVersion:    APIVersion,
		RequestID:     uuid.NewString(),
		CorrelationID: uuid.NewString(),
		ContentType:   ContentTypeJSON,
		QueryParams:   map[string]string{"offset": "0", "limit": "1"},
	}
	data, err := req.Encode()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.CommandTimeout)
	defer cancel()
	answer := c.commands.expect(req.RequestID)
	defer c.commands.forget(req.RequestID)
	if err := c.publish(ctx, c.topics.CommandQueryRequest("all"), data); err != nil {
		return &edgex.Error{Kind: edgex.KindUnavailable, Op: op, Err: err}
	}
	select {
	case <-answer:
		return nil
	case <-ctx.Done():
		return &edgex.Error{Kind: edgex.KindUnavailable, Op: op, Message: "no response from core-command", Err: ctx.Err()}
	case <-c.life.Done():
		return &edgex.Error{Kind: edgex.KindUnavailable, Op: op, Err: ErrClosed}
	}
}

// newCommandRequest builds the envelope core-command accepts: it drops,
// without a word, any request whose apiVersion is not v3, whose requestID
// is not a UUID, or whose content type is not JSON.
func newCommandRequest(device, command, method string, values, query map[string]string) (Envelope, error) {
	for _, name := range []string{device, command} {
		if name == "" || strings.ContainsAny(name, "/#+") {
			return Envelope{}, fmt.Errorf("%q cannot be a topic level", name)
		}
	}
	req := Envelope{
		APIVersion:    APIVersion,
		RequestID:     uuid.NewString(),
		CorrelationID: uuid.NewString(),
		ContentType:   ContentTypeJSON,
		QueryParams:   query,
	}
	switch method {
	case MethodGet:
		if len(values) != 0 {
			return Envelope{}, errors.New("a get carries no values")
		}
	case MethodSet:
		if len(values) == 0 {
			return Envelope{}, errors.New("a set needs at least one value")
		}
		body, err := json.Marshal(values)
		if err != nil {
			return Envelope{}, fmt.Errorf("encode values: %w", err)
		}
		req.Payload = body
	default:
		return Envelope{}, fmt.Errorf("method %q, want %q or %q", method, MethodGet, MethodSet)
	}
	return req, nil
}

// commandResult turns core-command's response envelope into the caller's
// result or a typed error.
func commandResult(op, device string, env Envelope) (CommandResponse, error) {
	res := CommandResponse{Envelope: env}
	if env.IsError() {
		return res, commandError(op, env.Payload)
	}
	if len(env.Payload) == 0 {
		return res, nil // a successful set answers with no body
	}
	body, err := decodeCommandBody(env)
	if err != nil {
		return res, &edgex.Error{Kind: edgex.KindMalformed, Op: op, Err: err}
	}
	if body.StatusCode >= 400 {
		return res, &edgex.Error{Kind: edgex.KindForStatus(body.StatusCode), StatusCode: body.StatusCode, Op: op, Message: body.Message}
	}
	if body.Event != nil {
		if body.Event.DeviceName != device {
			return res, &edgex.Error{Kind: edgex.KindMalformed, Op: op, Message: fmt.Sprintf("answer carries an event of device %q", body.Event.DeviceName)}
		}
		res.Event = body.Event
	}
	return res, nil
}

// commandBody is what a device service answers to a command, forwarded by
// core-command: for a get, the event it read.
type commandBody struct {
	APIVersion string      `json:"apiVersion"`
	RequestID  string      `json:"requestId"`
	StatusCode int         `json:"statusCode"`
	Message    string      `json:"message"`
	Event      *dtos.Event `json:"event"`
}

func decodeCommandBody(env Envelope) (commandBody, error) {
	var body commandBody
	switch env.ContentType {
	case ContentTypeCBOR:
		if err := cborDecoder.Unmarshal(env.Payload, &body); err != nil {
			return body, fmt.Errorf("decode CBOR command response: %w", err)
		}
	case ContentTypeJSON, "":
		if err := json.Unmarshal(env.Payload, &body); err != nil {
			return body, fmt.Errorf("decode JSON command response: %w", err)
		}
	default:
		return body, fmt.Errorf("decode command response: unsupported content type %q", env.ContentType)
	}
	if body.Event != nil {
		if err := checkEvent(*body.Event); err != nil {
			return body, fmt.Errorf("decode command response: %w", err)
		}
	}
	return body, nil
}

// Bounds on core-command's error text: the message kept, and the tail
// searched for an embedded EdgeX error envelope (which is short; searching
// all of a hostile megabyte would cost quadratic time).
const (
	maxErrorMessage    = 2 << 10
	maxErrorScan       = 4 << 10
	maxErrorCandidates = 64
)

// commandError types core-command's error answer. Its text wraps the
// failing service's own error envelope, as in `failed to get Device by name
// x: request failed, status code: 404, err: {"apiVersion":"v3",
// "message":"...","statusCode":404}`; the kind comes from that envelope's
// statusCode, never from the words around it.
func commandError(op string, text []byte) *edgex.Error {
	msg := errorMessage(text)
	if status, ok := embeddedStatus(text); ok {
		return &edgex.Error{Kind: edgex.KindForStatus(status), StatusCode: status, Op: op, Message: msg}
	}
	return &edgex.Error{Kind: edgex.KindInternal, Op: op, Message: msg}
}

func errorMessage(text []byte) string {
	text = bytes.TrimSpace(text)
	if len(text) > maxErrorMessage {
		cut := maxErrorMessage
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = append(text[:cut:cut], "..."...)
	}
	if len(text) == 0 {
		return "core-command reported an error without text"
	}
	return strings.ToValidUTF8(string(text), "\uFFFD")
}

// embeddedStatus finds the first (outermost) EdgeX error envelope in the
// tail of text and returns its status code.
func embeddedStatus(text []byte) (int, bool) {
	if len(text) > maxErrorScan {
		text = text[len(text)-maxErrorScan:]
	}
	candidates := 0
	for i := bytes.IndexByte(text, '{'); i >= 0 && candidates < maxErrorCandidates; i = nextBrace(text, i) {
		candidates++
		var e struct {
			APIVersion string `json:"apiVersion"`
			StatusCode int    `json:"statusCode"`
		}
		if err := json.NewDecoder(bytes.NewReader(text[i:])).Decode(&e); err != nil {
			continue
		}
		if e.APIVersion != "" && e.StatusCode >= 400 && e.StatusCode <= 599 {
			return e.StatusCode, true
		}
	}
	return 0, false
}

func nextBrace(text []byte, i int) int {
	j := bytes.IndexByte(text[i+1:], '{')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// pendingCommands correlates responses with the commands waiting for them,
// by requestID. Responses are retained by the broker, so a subscriber also
// receives old answers to other requests; those find no waiter.
type pendingCommands struct {
	mu      sync.Mutex
	waiting map[string]chan Envelope
}

func (p *pendingCommands) expect(requestID string) <-chan Envelope {
	ch := make(chan Envelope, 1)
	p.mu.Lock()
	p.waiting[requestID] = ch
	p.mu.Unlock()
	return ch
}

func (p *pendingCommands) forget(requestID string) {
	p.mu.Lock()
	delete(p.waiting, requestID)
	p.mu.Unlock()
}

func (p *pendingCommands) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}

// resolve runs on paho's router: it must never block.
func (p *pendingCommands) resolve(log logr.Logger) func(topic string, payload []byte) {
	return func(topic string, payload []byte) {
		env, err := DecodeEnvelope(payload)
		if err != nil {
			log.Error(err, "ignoring an unreadable command response", "topic", topic)
			return
		}
		p.mu.Lock()
		ch, ok := p.waiting[env.RequestID]
		delete(p.waiting, env.RequestID)
		p.mu.Unlock()
		if !ok {
			log.V(1).Info("ignoring a response to no command in flight (retained, or late)", "topic", topic, "requestID", env.RequestID)
			return
		}
		ch <- env // buffered, and this is its only sender
	}
}
