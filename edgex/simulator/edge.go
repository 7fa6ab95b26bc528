package simulator

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/requests"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"
	"github.com/google/uuid"
)

// The edge-side API makes the changes a device service, a provision watcher
// or the EdgeX UI would make behind the bridge's back. Each goes through the
// REST path's decoding and validation and announces the same system events.

// asBatchItem runs one request through the exact decoding a REST batch gets,
// so that validation and normalisation are go-mod-core-contracts' own.
func asBatchItem[T any](req any) (T, *apiError) {
	var zero T
	data, err := json.Marshal([]any{req})
	if err != nil {
		return zero, newAPIError(http.StatusBadRequest, "%s", err)
	}
	items, apiErr := decodeBatch[T](bytes.NewReader(data))
	if apiErr != nil {
		return zero, apiErr
	}
	return items[0], nil
}

// AddDeviceService adds a device service and returns its id.
func (s *Simulator) AddDeviceService(ds dtos.DeviceService) (string, error) {
	op := fmt.Sprintf("add device service %q", ds.Name)
	req, err := asBatchItem[requests.AddDeviceServiceRequest](requests.NewAddDeviceServiceRequest(ds))
	if err != nil {
		return "", err.asError(op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.addService(dtos.ToDeviceServiceModel(req.Service), uuid.NewString())
	return id, err.asError(op)
}

// AddDeviceProfile adds a device profile and returns its id.
func (s *Simulator) AddDeviceProfile(p dtos.DeviceProfile) (string, error) {
	op := fmt.Sprintf("add device profile %q", p.Name)
	req, err := asBatchItem[requests.DeviceProfileRequest](requests.NewDeviceProfileRequest(p))
	if err != nil {
		return "", err.asError(op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.addProfile(dtos.ToDeviceProfileModel(req.Profile), uuid.NewString())
	return id, err.asError(op)
}

// UpdateDeviceProfile replaces a device profile (core-metadata's PUT).
func (s *Simulator) UpdateDeviceProfile(p dtos.DeviceProfile) error {
	op := fmt.Sprintf("update device profile %q", p.Name)
	req, err := asBatchItem[requests.DeviceProfileRequest](requests.NewDeviceProfileRequest(p))
	if err != nil {
		return err.asError(op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateProfile(dtos.ToDeviceProfileModel(req.Profile), uuid.NewString()).asError(op)
}

// AddDevice adds a device and returns its id.
func (s *Simulator) AddDevice(d dtos.Device) (string, error) {
	op := fmt.Sprintf("add device %q", d.Name)
	req, err := asBatchItem[requests.AddDeviceRequest](requests.NewAddDeviceRequest(d))
	if err != nil {
		return "", err.asError(op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.addDevice(dtos.ToDeviceModel(req.Device), uuid.NewString())
	return id, err.asError(op)
}

// UpdateDevice patches a device as core-metadata's PATCH does.
func (s *Simulator) UpdateDevice(u dtos.UpdateDevice) error {
	op := fmt.Sprintf("update device %q", nameOrID(u.Name, u.Id))
	req, err := asBatchItem[requests.UpdateDeviceRequest](requests.NewUpdateDeviceRequest(u))
	if err != nil {
		return err.asError(op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.patchDevice(req.Device, uuid.NewString()).asError(op)
}

// UpdateDeviceService patches a device service (an admin state change, a
// new base address...).
func (s *Simulator) UpdateDeviceService(u dtos.UpdateDeviceService) error {
	op := fmt.Sprintf("update device service %q", nameOrID(u.Name, u.Id))
	req, err := asBatchItem[requests.UpdateDeviceServiceRequest](requests.NewUpdateDeviceServiceRequest(u))
	if err != nil {
		return err.asError(op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.patchService(req.Service, uuid.NewString()).asError(op)
}

func nameOrID(name, id *string) string {
	if name != nil {
		return *name
	}
	if id != nil {
		return *id
	}
	return ""
}

// DeleteDevice deletes a device.
func (s *Simulator) DeleteDevice(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteDevice(name, uuid.NewString()).asError(fmt.Sprintf("delete device %q", name))
}

// DeleteDeviceProfile deletes a profile no device uses.
func (s *Simulator) DeleteDeviceProfile(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteProfile(name, uuid.NewString()).asError(fmt.Sprintf("delete device profile %q", name))
}

// DeleteDeviceService deletes a service no device uses.
func (s *Simulator) DeleteDeviceService(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteService(name, uuid.NewString()).asError(fmt.Sprintf("delete device service %q", name))
}

// Device returns a device as core-metadata returns it. The result is a copy.
func (s *Simulator) Device(name string) (dtos.Device, bool) {
	s.mu.Lock()
	d, ok := s.db.devices[name]
	s.mu.Unlock()
	return deepCopy(dtos.FromDeviceModelToDTO(d)), ok
}

// Profile returns a device profile.
func (s *Simulator) Profile(name string) (dtos.DeviceProfile, bool) {
	s.mu.Lock()
	p, ok := s.db.profiles[name]
	s.mu.Unlock()
	return deepCopy(dtos.FromDeviceProfileModelToDTO(p)), ok
}

// Service returns a device service.
func (s *Simulator) Service(name string) (dtos.DeviceService, bool) {
	s.mu.Lock()
	ds, ok := s.db.services[name]
	s.mu.Unlock()
	return deepCopy(dtos.FromDeviceServiceModelToDTO(ds)), ok
}

// Devices returns every device, by name.
func (s *Simulator) Devices() []dtos.Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	return byName(s.db.devices, func(d models.Device) dtos.Device { return deepCopy(dtos.FromDeviceModelToDTO(d)) })
}

// Profiles returns every device profile, by name.
func (s *Simulator) Profiles() []dtos.DeviceProfile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return byName(s.db.profiles, func(p models.DeviceProfile) dtos.DeviceProfile {
		return deepCopy(dtos.FromDeviceProfileModelToDTO(p))
	})
}

// Services returns every device service, by name.
func (s *Simulator) Services() []dtos.DeviceService {
	s.mu.Lock()
	defer s.mu.Unlock()
	return byName(s.db.services, func(ds models.DeviceService) dtos.DeviceService {
		return deepCopy(dtos.FromDeviceServiceModelToDTO(ds))
	})
}

func byName[M, D any](m map[string]M, convert func(M) D) []D {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]D, len(names))
	for i, name := range names {
		out[i] = convert(m[name])
	}
	return out
}

// deepCopy keeps callers from reaching into the database through shared
// slices and maps. Numbers keep their exact text.
func deepCopy[T any](v T) T {
	data, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return v
	}
	return out
}

// Wipe loses the metadata database, as a Redis restarted without
// persistence does: every service, profile, device and value is gone, every
// list answers empty, and nothing is announced (a wiped Redis tells no one).
// The device services keep running unaware; RestartDeviceService makes one
// register again what it had.
func (s *Simulator) Wipe() {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.db.devices))
	for name := range s.db.devices {
		names = append(names, name)
	}
	s.provisioned = map[string]*database{}
	for name, ds := range s.db.services {
		had := newDatabase()
		had.services[name] = ds
		for _, d := range s.db.devices {
			if d.ServiceName == name {
				had.devices[d.Name] = d
				if p, ok := s.db.profiles[d.ProfileName]; ok {
					had.profiles[p.Name] = p
				}
			}
		}
		s.provisioned[name] = had
	}
	s.db = newDatabase()
	for _, name := range names {
		s.autoEvents.refresh(name)
	}
}

// RestartDeviceService restarts a device service after a wipe: like
// device-virtual, it registers its own record, then the profiles and devices
// it had, each that core-metadata lacks, with new ids and creation times,
// and each announced with an add system event. It returns how many objects
// it registered.
func (s *Simulator) RestartDeviceService(name string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	had, ok := s.provisioned[name]
	if !ok {
		return 0, fmt.Errorf("restart device service %q: it had nothing registered when the database was wiped", name)
	}
	added := 0
	if _, ok := s.db.services[name]; !ok {
		ds := had.services[name]
		ds.Id = ""
		if _, err := s.addService(ds, uuid.NewString()); err != nil {
			return added, err.asError("register device service " + name)
		}
		added++
	}
	for _, p := range inNameOrder(had.profiles) {
		if _, ok := s.db.profiles[p.Name]; ok {
			continue
		}
		p.Id = ""
		if _, err := s.addProfile(p, uuid.NewString()); err != nil {
			return added, err.asError("register device profile " + p.Name)
		}
		added++
	}
	for _, d := range inNameOrder(had.devices) {
		if _, ok := s.db.devices[d.Name]; ok {
			continue
		}
		d.Id = ""
		if _, err := s.addDevice(d, uuid.NewString()); err != nil {
			return added, err.asError("register device " + d.Name)
		}
		added++
	}
	return added, nil
}

func inNameOrder[M any](m map[string]M) []M {
	return byName(m, func(v M) M { return v })
}

// Value is a device resource's current value as a read returns it
// ("true", "2.150000e+01", base64 for binary).
func (s *Simulator) Value(device, resource string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dr, err := s.resourceOfDevice(device, resource)
	if err != nil {
		return "", false
	}
	return formatted(dr, *s.currentValue(device, dr)), true
}

// SetValue changes a device resource's value as the physical device would by
// itself: no range check, no event, no write notification. Binary values
// are given in base64.
func (s *Simulator) SetValue(device, resource, value string) error {
	op := fmt.Sprintf("set value of %s/%s", device, resource)
	s.mu.Lock()
	defer s.mu.Unlock()
	dr, err := s.resourceOfDevice(device, resource)
	if err != nil {
		return err.asError(op)
	}
	rv, err := valueOf(dr, value)
	if err != nil {
		return err.asError(op)
	}
	*s.currentValue(device, dr) = rv
	return nil
}

func valueOf(dr models.DeviceResource, text string) (resourceValue, *apiError) {
	vt := dr.Properties.ValueType
	if vt == common.ValueTypeBinary {
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return resourceValue{}, newAPIError(http.StatusBadRequest, "binary value is not base64: %s", err)
		}
		return resourceValue{valueType: vt, v: b}, nil
	}
	v, err := parseValue(vt, text)
	if err != nil {
		return resourceValue{}, err
	}
	return resourceValue{valueType: vt, v: v}, nil
}

// resourceOfDevice finds a device's resource. Callers hold s.mu.
func (s *Simulator) resourceOfDevice(device, resource string) (models.DeviceResource, *apiError) {
	d, ok := s.db.devices[device]
	if !ok {
		return models.DeviceResource{}, newAPIError(http.StatusNotFound, "device %s not found", device)
	}
	dr, ok := resourceOf(s.db.profiles[d.ProfileName], resource)
	if !ok {
		return models.DeviceResource{}, newAPIError(http.StatusNotFound, "DeviceResource %s not found", resource)
	}
	return dr, nil
}

// PublishEvent reads a source (a resource or a device command) now and
// publishes the event, as an autoEvent would, and waits until it is sent.
func (s *Simulator) PublishEvent(ctx context.Context, device, source string) error {
	op := fmt.Sprintf("publish event %s/%s", device, source)
	ev, service, err := s.readFromService(device, source, readOptions{regex: true})
	if err != nil {
		return err.asError(op)
	}
	return s.publishEvent(ctx, op, service, ev)
}

// PublishReadings publishes one event with these resource values, which also
// become the resources' current values. The event's source is the resource
// when there is one, else a device command reading exactly these resources,
// else the first of them in the profile's order.
func (s *Simulator) PublishReadings(ctx context.Context, device string, values map[string]string) error {
	op := fmt.Sprintf("publish readings of %s", device)
	ev, service, err := s.setReadings(device, values)
	if err != nil {
		return err.asError(op)
	}
	return s.publishEvent(ctx, op, service, ev)
}

func (s *Simulator) setReadings(device string, values map[string]string) (dtos.Event, string, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.serviceView(device)
	if !ok {
		return dtos.Event{}, "", newAPIError(http.StatusNotFound, "device %s not found", device)
	}
	p := s.db.profiles[t.device.ProfileName]
	for name := range values {
		if _, ok := resourceOf(p, name); !ok {
			return dtos.Event{}, "", newAPIError(http.StatusNotFound, "DeviceResource %s not found", name)
		}
	}
	if len(values) == 0 {
		return dtos.Event{}, "", newAPIError(http.StatusBadRequest, "no readings to publish")
	}
	ev := dtos.NewEvent(p.Name, device, sourceFor(p, values))
	ev.Origin = s.uniqueOrigin()
	for _, dr := range p.DeviceResources {
		text, ok := values[dr.Name]
		if !ok {
			continue
		}
		rv, err := valueOf(dr, text)
		if err != nil {
			return dtos.Event{}, "", err
		}
		*s.currentValue(device, dr) = rv
		r, err := reading(p.Name, device, dr, rv, ev.Origin)
		if err != nil {
			return dtos.Event{}, "", err
		}
		ev.Readings = append(ev.Readings, r)
	}
	return ev, t.service.Name, nil
}

func sourceFor(p models.DeviceProfile, values map[string]string) string {
	var first string
	for _, dr := range p.DeviceResources {
		if _, ok := values[dr.Name]; ok {
			first = dr.Name
			break
		}
	}
	if len(values) == 1 {
		return first
	}
	for _, dc := range p.DeviceCommands {
		if len(dc.ResourceOperations) != len(values) {
			continue
		}
		all := true
		for _, ro := range dc.ResourceOperations {
			if _, ok := values[ro.DeviceResource]; !ok {
				all = false
			}
		}
		if all {
			return dc.Name
		}
	}
	return first
}

func (s *Simulator) publishEvent(ctx context.Context, op, service string, ev dtos.Event) error {
	if s.opts.BrokerURL == "" {
		return fmt.Errorf("%s: %w", op, errNoBus)
	}
	m, err := s.eventMessage(service, ev, uuid.NewString())
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.bus.publishNow(ctx, m); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}
