package simulator

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	commonDTO "github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/requests"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/responses"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"
)

func (s *Simulator) metadataHandler() http.Handler {
	mux := http.NewServeMux()
	commonRoutes(mux, serviceMetadata)

	mux.HandleFunc("POST "+common.ApiDeviceServiceRoute, s.handleAddServices)
	mux.HandleFunc("PATCH "+common.ApiDeviceServiceRoute, s.handlePatchServices)
	mux.HandleFunc("GET "+common.ApiAllDeviceServiceRoute, s.handleAllServices)
	mux.HandleFunc("GET "+common.ApiDeviceServiceRoute+"/name/{name}", s.handleServiceByName)
	mux.HandleFunc("DELETE "+common.ApiDeviceServiceRoute+"/name/{name}", s.handleDeleteService)

	mux.HandleFunc("POST "+common.ApiDeviceProfileRoute, s.handleAddProfiles)
	mux.HandleFunc("PUT "+common.ApiDeviceProfileRoute, s.handleUpdateProfiles)
	mux.HandleFunc("PATCH "+common.ApiDeviceProfileBasicInfoRoute, s.handlePatchProfileBasicInfo)
	mux.HandleFunc("GET "+common.ApiAllDeviceProfileRoute, s.handleAllProfiles)
	mux.HandleFunc("GET "+common.ApiDeviceProfileRoute+"/name/{name}", s.handleProfileByName)
	mux.HandleFunc("DELETE "+common.ApiDeviceProfileRoute+"/name/{name}", s.handleDeleteProfile)

	mux.HandleFunc("POST "+common.ApiDeviceRoute, s.handleAddDevices)
	mux.HandleFunc("PATCH "+common.ApiDeviceRoute, s.handlePatchDevices)
	mux.HandleFunc("GET "+common.ApiAllDeviceRoute, s.handleAllDevices)
	mux.HandleFunc("GET "+common.ApiDeviceRoute+"/name/{name}", s.handleDeviceByName)
	mux.HandleFunc("DELETE "+common.ApiDeviceRoute+"/name/{name}", s.handleDeleteDevice)
	mux.HandleFunc("GET "+common.ApiDeviceRoute+"/check/name/{name}", s.handleDeviceNameExists)
	mux.HandleFunc("GET "+common.ApiDeviceRoute+"/service/name/{name}", s.handleDevicesByService)
	mux.HandleFunc("GET "+common.ApiDeviceRoute+"/profile/name/{name}", s.handleDevicesByProfile)
	return s.serve(serviceMetadata, mux)
}

// decodeBatch reads a batch body as core-metadata does: the whole array in
// one go, each item validating itself while it is decoded, so that one
// invalid item fails the whole request (400), and a body that is not an
// array fails it with encoding/json's message (500).
func decodeBatch[T any](body io.Reader) ([]T, *apiError) {
	var items []T
	if err := json.NewDecoder(body).Decode(&items); err != nil {
		return nil, apiErrorOf(err)
	}
	return items, nil
}

// itemAnswer is one element of a 207 multi-status answer.
func itemAnswer(requestID string, err *apiError, success int, id string) any {
	switch {
	case err != nil:
		return commonDTO.NewBaseResponse(requestID, err.message, err.status)
	case id != "":
		return commonDTO.NewBaseWithIdResponse(requestID, "", success, id)
	default:
		return commonDTO.NewBaseResponse(requestID, "", success)
	}
}

// multiStatus writes the per-item answers. An empty batch answers JSON null,
// as core-metadata's nil slice does.
func multiStatus(w http.ResponseWriter, items []any) {
	writeJSON(w, http.StatusMultiStatus, items)
}

func (s *Simulator) handleAddServices(w http.ResponseWriter, r *http.Request) {
	reqs, err := decodeBatch[requests.AddDeviceServiceRequest](r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	corr := correlationID(r.Context())
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	for _, req := range reqs {
		id, err := s.addService(dtos.ToDeviceServiceModel(req.Service), corr)
		out = append(out, itemAnswer(req.RequestId, err, http.StatusCreated, id))
	}
	multiStatus(w, out)
}

func (s *Simulator) handlePatchServices(w http.ResponseWriter, r *http.Request) {
	reqs, err := decodeBatch[requests.UpdateDeviceServiceRequest](r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	corr := correlationID(r.Context())
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	for _, req := range reqs {
		out = append(out, itemAnswer(req.RequestId, s.patchService(req.Service, corr), http.StatusOK, ""))
	}
	multiStatus(w, out)
}

func (s *Simulator) handleAllServices(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r.URL.Query(), s.opts.MaxResultCount)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	all := s.db.listServices(p.labels)
	services, err := window(all, p)
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]dtos.DeviceService, len(services))
	for i, ds := range services {
		out[i] = dtos.FromDeviceServiceModelToDTO(ds)
	}
	writeJSON(w, http.StatusOK, responses.NewMultiDeviceServicesResponse("", "", http.StatusOK, uint32(len(all)), out))
}

func (s *Simulator) handleServiceByName(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	ds, ok := s.db.services[name]
	s.mu.Unlock()
	if !ok {
		writeError(w, serviceNotFound(name))
		return
	}
	writeJSON(w, http.StatusOK, responses.NewDeviceServiceResponse("", "", http.StatusOK, dtos.FromDeviceServiceModelToDTO(ds)))
}

func (s *Simulator) handleDeleteService(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	err := s.deleteService(r.PathValue("name"), correlationID(r.Context()))
	s.mu.Unlock()
	writeOK(w, err)
}

// writeOK answers a single-object change: EdgeX's base response, or its
// error.
func writeOK(w http.ResponseWriter, err *apiError) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, commonDTO.NewBaseResponse("", "", http.StatusOK))
}

func (s *Simulator) handleAddProfiles(w http.ResponseWriter, r *http.Request) {
	reqs, err := decodeBatch[requests.DeviceProfileRequest](r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	corr := correlationID(r.Context())
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	for _, req := range reqs {
		id, err := s.addProfile(dtos.ToDeviceProfileModel(req.Profile), corr)
		out = append(out, itemAnswer(req.RequestId, err, http.StatusCreated, id))
	}
	multiStatus(w, out)
}

func (s *Simulator) handleUpdateProfiles(w http.ResponseWriter, r *http.Request) {
	reqs, err := decodeBatch[requests.DeviceProfileRequest](r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	corr := correlationID(r.Context())
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	for _, req := range reqs {
		err := s.updateProfile(dtos.ToDeviceProfileModel(req.Profile), corr)
		out = append(out, itemAnswer(req.RequestId, err, http.StatusOK, ""))
	}
	multiStatus(w, out)
}

func (s *Simulator) handlePatchProfileBasicInfo(w http.ResponseWriter, r *http.Request) {
	reqs, err := decodeBatch[requests.DeviceProfileBasicInfoRequest](r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	corr := correlationID(r.Context())
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	for _, req := range reqs {
		err := s.patchProfileBasicInfo(req.BasicInfo, corr)
		out = append(out, itemAnswer(req.RequestId, err, http.StatusOK, ""))
	}
	multiStatus(w, out)
}

func (s *Simulator) handleAllProfiles(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r.URL.Query(), s.opts.MaxResultCount)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	all := s.db.listProfiles(p.labels)
	profiles, err := window(all, p)
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]dtos.DeviceProfile, len(profiles))
	for i, dp := range profiles {
		out[i] = dtos.FromDeviceProfileModelToDTO(dp)
	}
	writeJSON(w, http.StatusOK, responses.NewMultiDeviceProfilesResponse("", "", http.StatusOK, uint32(len(all)), out))
}

func (s *Simulator) handleProfileByName(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	p, ok := s.db.profiles[name]
	s.mu.Unlock()
	if !ok {
		writeError(w, profileNotFound(name))
		return
	}
	writeJSON(w, http.StatusOK, responses.NewDeviceProfileResponse("", "", http.StatusOK, dtos.FromDeviceProfileModelToDTO(p)))
}

func (s *Simulator) handleDeleteProfile(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	err := s.deleteProfile(r.PathValue("name"), correlationID(r.Context()))
	s.mu.Unlock()
	writeOK(w, err)
}

func (s *Simulator) handleAddDevices(w http.ResponseWriter, r *http.Request) {
	reqs, err := decodeBatch[requests.AddDeviceRequest](r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	corr := correlationID(r.Context())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.validationWouldTimeOut(addTargets(reqs)); err != nil {
		writeError(w, err)
		return
	}
	var out []any
	for _, req := range reqs {
		id, err := s.addDevice(dtos.ToDeviceModel(req.Device), corr)
		out = append(out, itemAnswer(req.RequestId, err, http.StatusCreated, id))
	}
	multiStatus(w, out)
}

func (s *Simulator) handlePatchDevices(w http.ResponseWriter, r *http.Request) {
	reqs, err := decodeBatch[requests.UpdateDeviceRequest](r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	corr := correlationID(r.Context())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.validationWouldTimeOut(s.patchTargets(reqs)); err != nil {
		writeError(w, err)
		return
	}
	var out []any
	for _, req := range reqs {
		out = append(out, itemAnswer(req.RequestId, s.patchDevice(req.Device, corr), http.StatusOK, ""))
	}
	multiStatus(w, out)
}

func addTargets(reqs []requests.AddDeviceRequest) []string {
	out := make([]string, len(reqs))
	for i, req := range reqs {
		out[i] = req.Device.ServiceName
	}
	return out
}

// patchTargets are the services that would validate each patched device.
func (s *Simulator) patchTargets(reqs []requests.UpdateDeviceRequest) []string {
	var out []string
	for _, req := range reqs {
		if req.Device.ServiceName != nil {
			out = append(out, *req.Device.ServiceName)
		} else if d, err := s.db.deviceByIDOrName(req.Device.Id, req.Device.Name); err == nil {
			out = append(out, d.ServiceName)
		}
	}
	return out
}

// validationWouldTimeOut answers a batch that asks a down device service to
// validate a device: the real request blocks until core-metadata's request
// timeout. Here it answers at once and, unlike the real one (which carries
// on in the background), changes nothing.
func (s *Simulator) validationWouldTimeOut(services []string) *apiError {
	for _, name := range services {
		if _, exists := s.db.services[name]; exists && s.faults.serviceDown(name) {
			return validationTimeout()
		}
	}
	return nil
}

func (s *Simulator) handleAllDevices(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r.URL.Query(), s.opts.MaxResultCount)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	all := s.db.listDevices(p.labels)
	s.mu.Unlock()
	s.writeDevicePage(w, all, p)
}

func (s *Simulator) handleDevicesByService(w http.ResponseWriter, r *http.Request) {
	s.handleDevicesWhere(w, r, func(d models.Device) bool { return d.ServiceName == r.PathValue("name") })
}

func (s *Simulator) handleDevicesByProfile(w http.ResponseWriter, r *http.Request) {
	s.handleDevicesWhere(w, r, func(d models.Device) bool { return d.ProfileName == r.PathValue("name") })
}

func (s *Simulator) handleDevicesWhere(w http.ResponseWriter, r *http.Request, keep func(models.Device) bool) {
	p, err := parsePage(r.URL.Query(), s.opts.MaxResultCount)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	all := s.db.devicesWhere(keep, byModifiedDesc)
	s.mu.Unlock()
	s.writeDevicePage(w, all, p)
}

func (s *Simulator) writeDevicePage(w http.ResponseWriter, all []models.Device, p page) {
	devices, err := window(all, p)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]dtos.Device, len(devices))
	for i, d := range devices {
		out[i] = dtos.FromDeviceModelToDTO(d)
	}
	writeJSON(w, http.StatusOK, responses.NewMultiDevicesResponse("", "", http.StatusOK, uint32(len(all)), out))
}

func (s *Simulator) handleDeviceByName(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	d, ok := s.db.devices[name]
	s.mu.Unlock()
	if !ok {
		writeError(w, deviceNotFound(name))
		return
	}
	writeJSON(w, http.StatusOK, responses.NewDeviceResponse("", "", http.StatusOK, dtos.FromDeviceModelToDTO(d)))
}

func (s *Simulator) handleDeleteDevice(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	err := s.deleteDevice(r.PathValue("name"), correlationID(r.Context()))
	s.mu.Unlock()
	writeOK(w, err)
}

func (s *Simulator) handleDeviceNameExists(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, ok := s.db.devices[r.PathValue("name")]
	s.mu.Unlock()
	status := http.StatusOK
	if !ok {
		status = http.StatusNotFound
	}
	writeJSON(w, status, commonDTO.NewBaseResponse("", "", status))
}
