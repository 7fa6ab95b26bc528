package simulator

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	commonDTO "github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/responses"
)

func (s *Simulator) commandHandler() http.Handler {
	mux := http.NewServeMux()
	commonRoutes(mux, serviceCommand)
	mux.HandleFunc("GET "+common.ApiAllDeviceRoute, s.handleAllCommands)
	mux.HandleFunc("GET "+common.ApiDeviceRoute+"/name/{name}", s.handleDeviceCommands)
	mux.HandleFunc("GET "+common.ApiDeviceRoute+"/name/{name}/{command}", s.handleGetCommand)
	mux.HandleFunc("PUT "+common.ApiDeviceRoute+"/name/{name}/{command}", s.handleSetCommand)
	return s.serve(serviceCommand, mux)
}

func (s *Simulator) handleAllCommands(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r.URL.Query(), s.opts.MaxResultCount)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	cmds, total, err := s.allCoreCommands(p.offset, p.limit)
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, responses.NewMultiDeviceCoreCommandsResponse("", "", http.StatusOK, total, cmds))
}

func (s *Simulator) handleDeviceCommands(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	cmd, err := s.deviceCoreCommand(r.PathValue("name"))
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, responses.NewDeviceCoreCommandResponse("", "", http.StatusOK, cmd))
}

// serviceUnreachable is core-command's answer when the device service does
// not accept the connection.
func serviceUnreachable() *apiError {
	return newAPIError(http.StatusServiceUnavailable, "failed to send a http request")
}

// reachDevice resolves a command's device through core-metadata and waits
// out the device's latency, as core-command and a slow device would.
func (s *Simulator) reachDevice(ctx context.Context, device string) *apiError {
	s.mu.Lock()
	t, err := s.resolveTarget(device)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if s.faults.serviceDown(t.service.Name) {
		return serviceUnreachable()
	}
	// The device service's driver call takes no context (device-sdk-go's
	// HandleWriteCommands and HandleReadCommands): once the request has
	// reached it, a slow device finishes its work even if the caller gave
	// up. Only the simulator's own end cuts the wait short.
	if !wait(s.lifetime, s.faults.deviceLatency(device)) {
		return newAPIError(http.StatusServiceUnavailable, "failed to send a http request -> %s", s.lifetime.Err())
	}
	return nil
}

// readFromService is the device service's read. It looks the device up in
// its own cache (which may have changed while the request waited), so its
// errors are the device service's, for core-command to wrap.
func (s *Simulator) readFromService(device, source string, opts readOptions) (dtos.Event, string, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.serviceView(device)
	if !ok {
		return dtos.Event{}, "", newAPIError(http.StatusNotFound, "device %s not found", device)
	}
	ev, err := s.read(t, source, opts)
	return ev, t.service.Name, err
}

// writeToService is the device service's write.
func (s *Simulator) writeToService(device, command string, params map[string]any, via string) (*dtos.Event, string, []Write, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.serviceView(device)
	if !ok {
		return nil, "", nil, newAPIError(http.StatusNotFound, "device %s not found", device)
	}
	ev, writes, err := s.write(t, command, params, via)
	return ev, t.service.Name, writes, err
}

// serviceView is a device with its service as the device service knows
// them. Callers hold s.mu.
func (s *Simulator) serviceView(device string) (commandTarget, bool) {
	d, ok := s.db.devices[device]
	if !ok {
		return commandTarget{}, false
	}
	ds, ok := s.db.services[d.ServiceName]
	return commandTarget{device: d, service: ds}, ok
}

// boolQuery is core-command's check of ds-returnevent and ds-pushevent.
// (Its message names the value, not the parameter, as core-command's does.)
func boolQuery(r *http.Request, key, def string) (string, *apiError) {
	v := def
	if values, ok := r.URL.Query()[key]; ok {
		v = values[0]
	}
	if v != common.ValueTrue && v != common.ValueFalse {
		return "", newAPIError(http.StatusBadRequest, "invalid query parameter, %s has to be %s or %s", v, common.ValueTrue, common.ValueFalse)
	}
	return v, nil
}

func (s *Simulator) handleGetCommand(w http.ResponseWriter, r *http.Request) {
	device, source := r.PathValue("name"), r.PathValue("command")
	returnEvent, err := boolQuery(r, common.ReturnEvent, common.ValueTrue)
	if err != nil {
		writeError(w, err)
		return
	}
	pushEvent, err := boolQuery(r, common.PushEvent, common.ValueFalse)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.reachDevice(r.Context(), device); err != nil {
		writeError(w, err)
		return
	}
	opts := readOptions{regex: r.URL.Query().Get(common.RegexCommand) != common.ValueFalse}
	ev, service, err := s.readFromService(device, source, opts)
	if err != nil {
		writeError(w, remoteFailure(err, false))
		return
	}
	if pushEvent == common.ValueTrue {
		s.sendEvent(service, ev, correlationID(r.Context()))
	}
	if returnEvent == common.ValueFalse {
		w.Header().Set(common.ContentType, common.ContentTypeJSON)
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, responses.NewEventResponse("", "", http.StatusOK, ev))
}

func (s *Simulator) handleSetCommand(w http.ResponseWriter, r *http.Request) {
	device, command := r.PathValue("name"), r.PathValue("command")
	params, err := settingsOf(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.reachDevice(r.Context(), device); err != nil {
		writeError(w, err)
		return
	}
	ev, service, writes, err := s.writeToService(device, command, params, "rest")
	if err != nil {
		writeError(w, remoteFailure(err, false))
		return
	}
	if ev != nil {
		s.sendEvent(service, *ev, correlationID(r.Context()))
	}
	s.notifyWrites(writes)
	writeJSON(w, http.StatusOK, commonDTO.NewBaseResponse("", "", http.StatusOK))
}

// settingsOf parses a set command's body as core-command does: any JSON
// object, values of any type (device-sdk-go formats them with fmt.Sprint).
func settingsOf(body io.Reader) (map[string]any, *apiError) {
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, newAPIError(http.StatusInternalServerError, "failed to read request body -> %s", err)
	}
	var params map[string]any
	if err := json.Unmarshal(data, &params); err != nil {
		return nil, newAPIError(http.StatusBadRequest, "failed to parse request body")
	}
	if params == nil {
		params = map[string]any{}
	}
	return params, nil
}
