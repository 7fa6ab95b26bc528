package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/responses"
	"github.com/google/uuid"

	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// commandRequest is an external MQTT request core-command accepted.
type commandRequest struct {
	requestID, correlationID string
	queryParams              map[string]string
	payload                  []byte
}

// parseRequest applies go-mod-messaging's checks on a request envelope:
// version v3, a UUID requestID, a UUID (or empty) correlationID, JSON content.
// core-command drops anything else without answering, because it cannot
// trust a request id to answer to.
func parseRequest(data []byte) (commandRequest, bool) {
	env, err := messagebus.DecodeEnvelope(data)
	if err != nil {
		return commandRequest{}, false
	}
	if _, err := uuid.Parse(env.RequestID); err != nil {
		return commandRequest{}, false
	}
	corr := env.CorrelationID
	if _, err := uuid.Parse(corr); err != nil {
		if corr != "" {
			return commandRequest{}, false
		}
		corr = uuid.NewString()
	}
	if env.ContentType != common.ContentTypeJSON {
		return commandRequest{}, false
	}
	return commandRequest{requestID: env.RequestID, correlationID: corr, queryParams: env.QueryParams, payload: env.Payload}, true
}

// serveExternal answers one message on core-command's external request
// topics.
func (s *Simulator) serveExternal(ctx context.Context, topic string, payload []byte) {
	if s.faults.coreCommandDown() {
		return // a stopped core-command answers nothing
	}
	req, ok := parseRequest(payload)
	if !ok {
		s.log.Debug("dropped external request", "topic", topic)
		return
	}
	queryPrefix := s.topics.CommandQueryRequest("")
	if strings.HasPrefix(topic, queryPrefix) {
		s.serveCommandQuery(topic, req)
		return
	}
	s.serveCommandRequest(ctx, topic, req)
}

// errorEnvelope is go-mod-messaging's error answer: errorCode 1, the text as
// payload, a fresh correlation id.
func errorEnvelope(requestID, receivedTopic, text string) []byte {
	return encodeEnvelope(wireEnvelope{ReceivedTopic: receivedTopic, CorrelationID: uuid.NewString(), RequestID: requestID,
		ErrorCode: 1, Payload: []byte(text), ContentType: common.ContentTypeText})
}

// respond publishes an answer; core-command's external answers are retained
// by default.
func (s *Simulator) respond(topic string, envelope []byte) {
	s.bus.enqueue(outMessage{topic: topic, payload: envelope, retain: true})
}

func (s *Simulator) serveCommandQuery(topic string, req commandRequest) {
	levels := strings.Split(topic, "/")
	device, err := url.PathUnescape(levels[len(levels)-1])
	if err != nil {
		return
	}
	responseTopic := s.topics.CommandQueryResponse()
	body, failure := s.commandQuery(device, req)
	if failure != "" {
		s.respond(responseTopic, errorEnvelope(req.requestID, responseTopic, failure))
		return
	}
	s.respond(responseTopic, encodeEnvelope(wireEnvelope{ReceivedTopic: responseTopic, CorrelationID: req.correlationID,
		RequestID: req.requestID, Payload: body, ContentType: common.ContentTypeJSON}))
}

// commandQuery builds the answer to a command query, or core-command's
// error text.
func (s *Simulator) commandQuery(device string, req commandRequest) ([]byte, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !strings.EqualFold(device, common.All) {
		cmd, err := s.deviceCoreCommand(device)
		if err != nil {
			return nil, fmt.Sprintf("failed to get commands by device name '%s': %s", device, err.message)
		}
		data, _ := json.Marshal(responses.NewDeviceCoreCommandResponse(req.requestID, "", http.StatusOK, cmd))
		return data, ""
	}
	offset, limit := common.DefaultOffset, common.DefaultLimit
	var err error
	if raw, ok := req.queryParams[common.Offset]; ok {
		if offset, err = strconv.Atoi(raw); err != nil {
			return nil, fmt.Sprintf("failed to convert 'offset' query parameter to intger: %s", err)
		}
	}
	if raw, ok := req.queryParams[common.Limit]; ok {
		if limit, err = strconv.Atoi(raw); err != nil {
			return nil, fmt.Sprintf("failed to convert 'limit' query parameter to integer: %s", err)
		}
	}
	cmds, total, failure := s.allCoreCommands(offset, limit)
	if failure != nil {
		return nil, "failed to get all commands: " + failure.message
	}
	data, _ := json.Marshal(responses.NewMultiDeviceCoreCommandsResponse(req.requestID, "", http.StatusOK, total, cmds))
	return data, ""
}

// commandTopic splits #/<device>/<command>/<method> as core-command does.
func commandTopic(topic string) (device, command, method string, ok bool) {
	levels := strings.Split(topic, "/")
	n := len(levels)
	if n < 3 {
		return "", "", "", false
	}
	var err error
	if device, err = url.PathUnescape(levels[n-3]); err != nil {
		return "", "", "", false
	}
	if command, err = url.PathUnescape(levels[n-2]); err != nil {
		return "", "", "", false
	}
	method = levels[n-1]
	if !strings.EqualFold(method, messagebus.MethodGet) && !strings.EqualFold(method, messagebus.MethodSet) {
		return "", "", "", false
	}
	return device, command, method, true
}

func (s *Simulator) serveCommandRequest(ctx context.Context, topic string, req commandRequest) {
	device, command, method, ok := commandTopic(topic)
	if !ok {
		return
	}
	responseTopic := s.topics.CommandResponse(device, command, method)
	service, failure := s.serviceOfDevice(device)
	if failure == "" {
		failure = checkReserved(req.queryParams)
	}
	if failure == "" && s.faults.serviceDown(service) {
		failure = fmt.Sprintf("Failed to send DeviceCommand request with internal MessageBus: timed out waiting for response on %s topic",
			s.topics.Prefix+"/response/"+service+"/"+req.requestID)
	}
	if failure != "" {
		// core-command's own errors: no receivedTopic.
		s.respond(responseTopic, errorEnvelope(req.requestID, "", failure))
		return
	}
	if !wait(ctx, s.faults.deviceLatency(device)) {
		return
	}
	if strings.EqualFold(method, messagebus.MethodGet) {
		s.externalGet(responseTopic, device, command, req)
		return
	}
	s.externalSet(responseTopic, device, command, req)
}

func (s *Simulator) serviceOfDevice(device string) (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.resolveTarget(device)
	if err != nil {
		return "", fmt.Sprintf("failed to get Device by name %s: %s", device, err.message)
	}
	return t.service.Name, ""
}

func checkReserved(params map[string]string) string {
	for _, key := range []string{common.ReturnEvent, common.PushEvent} {
		if v, ok := params[key]; ok && v != common.ValueTrue && v != common.ValueFalse {
			return fmt.Sprintf("invalid query parameter, %s has to be '%s' or '%s'", key, common.ValueTrue, common.ValueFalse)
		}
	}
	return ""
}

// externalGet is the device service's read for an external request; its
// answer is forwarded by core-command with the external receivedTopic.
func (s *Simulator) externalGet(responseTopic, device, source string, req commandRequest) {
	opts := readOptions{regex: req.queryParams[common.RegexCommand] != common.ValueFalse}
	ev, service, err := s.readFromService(device, source, opts)
	if err != nil {
		s.respond(responseTopic, errorEnvelope(req.requestID, responseTopic, err.message))
		return
	}
	var payload []byte
	contentType := common.ContentTypeJSON
	if req.queryParams[common.ReturnEvent] != common.ValueFalse {
		answer := responses.NewEventResponse(req.requestID, "", http.StatusOK, ev)
		var encErr error
		if payload, contentType, encErr = answer.Encode(); encErr != nil {
			s.respond(responseTopic, errorEnvelope(req.requestID, responseTopic, encErr.Error()))
			return
		}
	}
	s.respond(responseTopic, encodeEnvelope(wireEnvelope{ReceivedTopic: responseTopic, CorrelationID: req.correlationID,
		RequestID: req.requestID, Payload: payload, ContentType: contentType}))
	if req.queryParams[common.PushEvent] == common.ValueTrue {
		s.sendEvent(service, ev, req.correlationID)
	}
}

// externalSet is the device service's write for an external request.
func (s *Simulator) externalSet(responseTopic, device, command string, req commandRequest) {
	params := map[string]any{}
	if err := json.Unmarshal(req.payload, &params); err != nil {
		s.respond(responseTopic, errorEnvelope(req.requestID, responseTopic, err.Error()))
		return
	}
	ev, service, writes, err := s.writeToService(device, command, params, "mqtt")
	if err != nil {
		s.respond(responseTopic, errorEnvelope(req.requestID, responseTopic, err.message))
		return
	}
	s.respond(responseTopic, encodeEnvelope(wireEnvelope{ReceivedTopic: responseTopic, CorrelationID: req.correlationID,
		RequestID: req.requestID, ContentType: common.ContentTypeJSON}))
	if ev != nil {
		s.sendEvent(service, *ev, req.correlationID)
	}
	s.notifyWrites(writes)
}
