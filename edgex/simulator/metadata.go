package simulator

import (
	"net/http"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/requests"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"
	"github.com/google/uuid"

	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// database is what core-metadata keeps in Redis, plus each virtual device's
// current resource values (the device service's side).
type database struct {
	services map[string]models.DeviceService
	profiles map[string]models.DeviceProfile
	devices  map[string]models.Device
	values   map[string]map[string]*resourceValue
	frame    uint64
}

func newDatabase() *database {
	return &database{
		services: map[string]models.DeviceService{},
		profiles: map[string]models.DeviceProfile{},
		devices:  map[string]models.Device{},
		values:   map[string]map[string]*resourceValue{},
	}
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// The methods below are core-metadata's application layer. Callers hold
// s.mu; each returns the answer EdgeX gives for one item, and announces a
// successful change with the system event core-metadata publishes.

func (s *Simulator) addService(ds models.DeviceService, corr string) (string, *apiError) {
	db := s.db
	if ds.Id != "" && db.serviceIDExists(ds.Id) {
		return "", newAPIError(http.StatusConflict, "device service id %s already exists", ds.Id)
	}
	if _, ok := db.services[ds.Name]; ok {
		return "", newAPIError(http.StatusConflict, "device service name %s already exists", ds.Name)
	}
	// core-metadata announces the service as the request described it,
	// before the database gave it an id and timestamps.
	announced := dtos.FromDeviceServiceModelToDTO(ds)
	stored := ds
	if stored.Id == "" {
		stored.Id = uuid.NewString()
	}
	ts := nowMillis()
	stored.Created, stored.Modified = ts, ts
	db.services[stored.Name] = stored
	s.announce(messagebus.KindDeviceService, messagebus.ActionAdd, stored.Name, "", announced, corr)
	return stored.Id, nil
}

func (s *Simulator) patchService(u dtos.UpdateDeviceService, corr string) *apiError {
	ds, err := s.db.serviceByIDOrName(u.Id, u.Name)
	if err != nil {
		return err
	}
	requests.ReplaceDeviceServiceModelFieldsWithDTO(&ds, u)
	announced := dtos.FromDeviceServiceModelToDTO(ds)
	ds.Modified = nowMillis()
	s.db.services[ds.Name] = ds
	s.announce(messagebus.KindDeviceService, messagebus.ActionUpdate, ds.Name, "", announced, corr)
	return nil
}

func (s *Simulator) deleteService(name string, corr string) *apiError {
	ds, ok := s.db.services[name]
	if !ok {
		return serviceNotFound(name)
	}
	for _, d := range s.db.devices {
		if d.ServiceName == name {
			return newAPIError(http.StatusConflict, "fail to delete the device service with name %s", name)
		}
	}
	delete(s.db.services, name)
	s.announce(messagebus.KindDeviceService, messagebus.ActionDelete, name, "", dtos.FromDeviceServiceModelToDTO(ds), corr)
	return nil
}

func (s *Simulator) addProfile(p models.DeviceProfile, corr string) (string, *apiError) {
	db := s.db
	if p.Id != "" && db.profileIDExists(p.Id) {
		return "", newAPIError(http.StatusConflict, "device profile id %s exists", p.Id)
	}
	if _, ok := db.profiles[p.Name]; ok {
		return "", newAPIError(http.StatusConflict, "device profile name %s exists", p.Name)
	}
	if p.Id == "" {
		p.Id = uuid.NewString()
	}
	ts := nowMillis()
	p.Created, p.Modified = ts, ts
	db.profiles[p.Name] = p
	s.announce(messagebus.KindDeviceProfile, messagebus.ActionAdd, common.CoreMetaDataServiceKey, p.Name, dtos.FromDeviceProfileModelToDTO(p), corr)
	return p.Id, nil
}

// updateProfile is the full PUT: the profile is found by id, else by name,
// and keeps its id and creation time.
func (s *Simulator) updateProfile(p models.DeviceProfile, corr string) *apiError {
	old, found := s.db.profileByID(p.Id)
	if found && old.Name != p.Name {
		return newAPIError(http.StatusBadRequest, "device profile name '%s' not match the exsting '%s' ", p.Name, old.Name)
	}
	if !found {
		if old, found = s.db.profiles[p.Name]; !found {
			return profileNotFound(p.Name)
		}
	}
	p.Id, p.Created, p.Modified = old.Id, old.Created, nowMillis()
	s.db.profiles[p.Name] = p
	s.announceProfileUpdate(dtos.FromDeviceProfileModelToDTO(p), corr)
	s.forgetValuesOfProfile(p.Name)
	return nil
}

func (s *Simulator) patchProfileBasicInfo(u dtos.UpdateDeviceProfileBasicInfo, corr string) *apiError {
	p, err := s.db.profileByIDOrName(u.Id, u.Name)
	if err != nil {
		return err
	}
	requests.ReplaceDeviceProfileModelBasicInfoFieldsWithDTO(&p, u)
	announced := dtos.FromDeviceProfileModelToDTO(p)
	p.Modified = nowMillis()
	s.db.profiles[p.Name] = p
	s.announceProfileUpdate(announced, corr)
	return nil
}

// announceProfileUpdate publishes core-metadata's general profile update
// and one more for each device service that has devices of the profile.
func (s *Simulator) announceProfileUpdate(p dtos.DeviceProfile, corr string) {
	s.announce(messagebus.KindDeviceProfile, messagebus.ActionUpdate, common.CoreMetaDataServiceKey, p.Name, p, corr)
	seen := map[string]bool{}
	for _, d := range s.db.devicesWhere(func(d models.Device) bool { return d.ProfileName == p.Name }, byModifiedDesc) {
		if !seen[d.ServiceName] {
			seen[d.ServiceName] = true
			s.announce(messagebus.KindDeviceProfile, messagebus.ActionUpdate, d.ServiceName, p.Name, p, corr)
		}
	}
}

func (s *Simulator) deleteProfile(name string, corr string) *apiError {
	p, ok := s.db.profiles[name]
	if !ok {
		return profileNotFound(name)
	}
	for _, d := range s.db.devices {
		if d.ProfileName == name {
			return newAPIError(http.StatusConflict, "fail to delete the device profile with name %s", name)
		}
	}
	delete(s.db.profiles, name)
	s.announce(messagebus.KindDeviceProfile, messagebus.ActionDelete, common.CoreMetaDataServiceKey, name, dtos.FromDeviceProfileModelToDTO(p), corr)
	return nil
}

// addDevice follows core-metadata's order of checks: the service must exist,
// then the device service validates the device (over the bus; a service that
// is down makes the whole request time out), then the profile must exist,
// then id and name must be free.
func (s *Simulator) addDevice(d models.Device, corr string) (string, *apiError) {
	db := s.db
	if _, ok := db.services[d.ServiceName]; !ok {
		return "", newAPIError(http.StatusBadRequest, "device service '%s' does not exists", d.ServiceName)
	}
	if s.faults.serviceDown(d.ServiceName) {
		return "", validationTimeout()
	}
	if _, ok := db.profiles[d.ProfileName]; !ok {
		return "", newAPIError(http.StatusNotFound, "device profile '%s' does not exists", d.ProfileName)
	}
	if d.Id != "" && db.deviceIDExists(d.Id) {
		return "", newAPIError(http.StatusConflict, "device id %s already exists", d.Id)
	}
	if _, ok := db.devices[d.Name]; ok {
		return "", newAPIError(http.StatusConflict, "device name %s already exists", d.Name)
	}
	if d.Id == "" {
		d.Id = uuid.NewString()
	}
	ts := nowMillis()
	d.Created, d.Modified = ts, ts
	db.devices[d.Name] = d
	s.announce(messagebus.KindDevice, messagebus.ActionAdd, d.ServiceName, d.ProfileName, dtos.FromDeviceModelToDTO(d), corr)
	s.autoEvents.refresh(d.Name)
	return d.Id, nil
}

func (s *Simulator) patchDevice(u dtos.UpdateDevice, corr string) *apiError {
	db := s.db
	if u.ServiceName != nil {
		if _, ok := db.services[*u.ServiceName]; !ok {
			return newAPIError(http.StatusBadRequest, "device service '%s' does not exists", *u.ServiceName)
		}
	}
	d, err := db.deviceByIDOrName(u.Id, u.Name)
	if err != nil {
		return err
	}
	oldService := d.ServiceName
	requests.ReplaceDeviceModelFieldsWithDTO(&d, u)
	if s.faults.serviceDown(d.ServiceName) {
		return validationTimeout()
	}
	if _, ok := db.profiles[d.ProfileName]; !ok {
		return newAPIError(http.StatusNotFound, "device profile '%s' does not exists", d.ProfileName)
	}
	// The announcement carries the device as merged, with the modification
	// time it had before this update: core-metadata builds it before the
	// database stamps the new one.
	announced := dtos.FromDeviceModelToDTO(d)
	d.Modified = nowMillis()
	db.devices[d.Name] = d
	if oldService != d.ServiceName {
		s.announce(messagebus.KindDevice, messagebus.ActionUpdate, oldService, d.ProfileName, announced, corr)
	}
	s.announce(messagebus.KindDevice, messagebus.ActionUpdate, d.ServiceName, d.ProfileName, announced, corr)
	s.autoEvents.refresh(d.Name)
	return nil
}

func (s *Simulator) deleteDevice(name string, corr string) *apiError {
	d, ok := s.db.devices[name]
	if !ok {
		return deviceNotFound(name)
	}
	delete(s.db.devices, name)
	delete(s.db.values, name)
	s.announce(messagebus.KindDevice, messagebus.ActionDelete, d.ServiceName, d.ProfileName, dtos.FromDeviceModelToDTO(d), corr)
	s.autoEvents.refresh(name)
	return nil
}

// forgetValuesOfProfile drops current values of a profile's devices whose
// resource changed type, so reads start again from the new definition.
func (s *Simulator) forgetValuesOfProfile(profile string) {
	p := s.db.profiles[profile]
	for name, d := range s.db.devices {
		if d.ProfileName != profile {
			continue
		}
		for res, rv := range s.db.values[name] {
			dr, ok := resourceOf(p, res)
			if !ok || dr.Properties.ValueType != rv.valueType {
				delete(s.db.values[name], res)
			}
		}
	}
}

// Lookups.

func (db *database) serviceIDExists(id string) bool {
	for _, ds := range db.services {
		if ds.Id == id {
			return true
		}
	}
	return false
}

func (db *database) profileIDExists(id string) bool {
	_, ok := db.profileByID(id)
	return ok
}

func (db *database) profileByID(id string) (models.DeviceProfile, bool) {
	if id == "" {
		return models.DeviceProfile{}, false
	}
	for _, p := range db.profiles {
		if p.Id == id {
			return p, true
		}
	}
	return models.DeviceProfile{}, false
}

func (db *database) deviceIDExists(id string) bool {
	for _, d := range db.devices {
		if d.Id == id {
			return true
		}
	}
	return false
}

// The *ByIDOrName lookups serve PATCH: an id wins when given, and a name
// given alongside must match the stored object's.

func (db *database) serviceByIDOrName(id, name *string) (models.DeviceService, *apiError) {
	var ds models.DeviceService
	if id != nil && *id != "" {
		found := false
		for _, cand := range db.services {
			if cand.Id == *id {
				ds, found = cand, true
			}
		}
		if !found {
			return ds, newAPIError(http.StatusNotFound, "fail to query device service by id %s", *id)
		}
	} else {
		var ok bool
		if ds, ok = db.services[*name]; !ok {
			return ds, serviceNotFound(*name)
		}
	}
	if name != nil && *name != ds.Name {
		return ds, newAPIError(http.StatusBadRequest, "device service name '%s' not match the exsting '%s' ", *name, ds.Name)
	}
	return ds, nil
}

func (db *database) profileByIDOrName(id, name *string) (models.DeviceProfile, *apiError) {
	var p models.DeviceProfile
	if id != nil && *id != "" {
		var ok bool
		if p, ok = db.profileByID(*id); !ok {
			return p, newAPIError(http.StatusNotFound, "fail to query device profile by id %s", *id)
		}
	} else {
		var ok bool
		if p, ok = db.profiles[*name]; !ok {
			return p, profileNotFound(*name)
		}
	}
	if name != nil && *name != p.Name {
		return p, newAPIError(http.StatusBadRequest, "device profile name '%s' not match the exsting '%s' ", *name, p.Name)
	}
	return p, nil
}

func (db *database) deviceByIDOrName(id, name *string) (models.Device, *apiError) {
	var d models.Device
	if id != nil && *id != "" {
		found := false
		for _, cand := range db.devices {
			if cand.Id == *id {
				d, found = cand, true
			}
		}
		if !found {
			return d, newAPIError(http.StatusNotFound, "fail to query device by id %s", *id)
		}
	} else {
		var ok bool
		if d, ok = db.devices[*name]; !ok {
			return d, deviceNotFound(*name)
		}
	}
	if name != nil && *name != d.Name {
		return d, newAPIError(http.StatusBadRequest, "device name '%s' not match the exsting '%s' ", *name, d.Name)
	}
	return d, nil
}

func resourceOf(p models.DeviceProfile, name string) (models.DeviceResource, bool) {
	for _, dr := range p.DeviceResources {
		if dr.Name == name {
			return dr, true
		}
	}
	return models.DeviceResource{}, false
}

func commandOf(p models.DeviceProfile, name string) (models.DeviceCommand, bool) {
	for _, dc := range p.DeviceCommands {
		if dc.Name == name {
			return dc, true
		}
	}
	return models.DeviceCommand{}, false
}
