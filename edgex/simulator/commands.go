package simulator

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"
)

// coreCommands lists a device's commands as core-command builds them: one
// per visible device command, then one per visible resource not shadowed by
// a command of the same name. (core-command's own order comes from a Go map
// and so varies; this one is stable.)
func coreCommands(d models.Device, p models.DeviceProfile, commandURL string) []dtos.CoreCommand {
	var out []dtos.CoreCommand
	named := map[string]bool{}
	for _, dc := range p.DeviceCommands {
		if dc.IsHidden {
			continue
		}
		params := make([]dtos.CoreCommandParameter, 0, len(dc.ResourceOperations))
		for _, ro := range dc.ResourceOperations {
			dr, _ := resourceOf(p, ro.DeviceResource)
			params = append(params, dtos.CoreCommandParameter{ResourceName: ro.DeviceResource, ValueType: dr.Properties.ValueType})
		}
		out = append(out, coreCommand(d.Name, commandURL, dc.Name, dc.ReadWrite, params))
		named[dc.Name] = true
	}
	for _, dr := range p.DeviceResources {
		if dr.IsHidden || named[dr.Name] {
			continue
		}
		params := []dtos.CoreCommandParameter{{ResourceName: dr.Name, ValueType: dr.Properties.ValueType}}
		out = append(out, coreCommand(d.Name, commandURL, dr.Name, dr.Properties.ReadWrite, params))
	}
	return out
}

func coreCommand(device, url, name, readWrite string, params []dtos.CoreCommandParameter) dtos.CoreCommand {
	return dtos.CoreCommand{
		Name:       name,
		Get:        strings.Contains(readWrite, common.ReadWrite_R),
		Set:        strings.Contains(readWrite, common.ReadWrite_W),
		Path:       fmt.Sprintf("%s/%s/%s/%s", common.ApiDeviceRoute, common.Name, device, name),
		Url:        url,
		Parameters: params,
	}
}

// deviceCoreCommand is core-command's GET device/name/{name}: the device and
// its profile come from core-metadata, whose errors core-command wraps.
func (s *Simulator) deviceCoreCommand(name string) (dtos.DeviceCoreCommand, *apiError) {
	d, ok := s.db.devices[name]
	if !ok {
		return dtos.DeviceCoreCommand{}, remoteFailure(deviceNotFound(name), true)
	}
	p, ok := s.db.profiles[d.ProfileName]
	if !ok {
		return dtos.DeviceCoreCommand{}, remoteFailure(profileNotFound(d.ProfileName), true)
	}
	return dtos.DeviceCoreCommand{DeviceName: d.Name, ProfileName: d.ProfileName,
		CoreCommands: coreCommands(d, p, s.commandURL)}, nil
}

// allCoreCommands is core-command's GET device/all: a page of core-metadata's
// device list with each device's commands.
func (s *Simulator) allCoreCommands(offset, limit int) ([]dtos.DeviceCoreCommand, uint32, *apiError) {
	p, err := parsePage(pageQuery(offset, limit), s.opts.MaxResultCount)
	if err != nil {
		return nil, 0, remoteFailure(err, true)
	}
	all := s.db.listDevices(nil)
	devices, err := window(all, p)
	if err != nil {
		return nil, 0, remoteFailure(err, true)
	}
	out := make([]dtos.DeviceCoreCommand, 0, len(devices))
	for _, d := range devices {
		c, err := s.deviceCoreCommand(d.Name)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	return out, uint32(len(all)), nil
}

// commandTarget is what core-command resolves before calling the device
// service: the device and its service, from core-metadata.
type commandTarget struct {
	device  models.Device
	service models.DeviceService
}

func (s *Simulator) resolveTarget(device string) (commandTarget, *apiError) {
	d, ok := s.db.devices[device]
	if !ok {
		return commandTarget{}, remoteFailure(deviceNotFound(device), true)
	}
	ds, ok := s.db.services[d.ServiceName]
	if !ok {
		return commandTarget{}, remoteFailure(serviceNotFound(d.ServiceName), true)
	}
	return commandTarget{device: d, service: ds}, nil
}

// The methods below are the device service (device-sdk-go 3.1 with a
// virtual driver). Callers hold s.mu. Their errors are the device service's
// own answers; core-command wraps them.

// checkDeviceState refuses commands as device-sdk-go does: a locked service,
// a locked device, a device whose operating state is DOWN (all 423).
func (s *Simulator) checkDeviceState(t commandTarget) *apiError {
	if t.service.AdminState == models.Locked {
		return newAPIError(http.StatusLocked, "service locked")
	}
	if t.device.AdminState == models.Locked {
		return newAPIError(http.StatusLocked, "device %s locked", t.device.Name)
	}
	if t.device.OperatingState == models.Down {
		return newAPIError(http.StatusLocked, "device %s OperatingState is DOWN", t.device.Name)
	}
	return nil
}

// readOptions are device-sdk-go's reserved query parameters for a read.
type readOptions struct {
	regex bool // ds-regexcmd, default true
	drift bool // a scheduled read: sensor values move first
}

// read executes a get command: a device command, else resources matching
// the name as a POSIX regular expression (device-sdk-go's default for GET),
// else the resource of that name.
func (s *Simulator) read(t commandTarget, source string, opts readOptions) (dtos.Event, *apiError) {
	if err := s.checkDeviceState(t); err != nil {
		return dtos.Event{}, err
	}
	p := s.db.profiles[t.device.ProfileName]
	resources, err := readableResources(p, t.device.Name, source, opts.regex)
	if err != nil {
		return dtos.Event{}, err
	}
	ev := dtos.NewEvent(p.Name, t.device.Name, source)
	ev.Origin = s.uniqueOrigin()
	for _, dr := range resources {
		rv := s.currentValue(t.device.Name, dr)
		if opts.drift {
			drift(rv, dr.Properties)
		}
		if dr.Properties.ValueType == common.ValueTypeBinary {
			s.db.frame++
			rv.v = binaryFrame(dr.Properties.MediaType, s.db.frame)
		}
		r, err := reading(p.Name, t.device.Name, dr, *rv, ev.Origin)
		if err != nil {
			return dtos.Event{}, err
		}
		ev.Readings = append(ev.Readings, r)
	}
	return ev, nil
}

func readableResources(p models.DeviceProfile, device, source string, regex bool) ([]models.DeviceResource, *apiError) {
	if dc, ok := commandOf(p, source); ok {
		if dc.ReadWrite == common.ReadWrite_W {
			return nil, newAPIError(http.StatusMethodNotAllowed, "DeviceCommand %s is marked as write-only", dc.Name)
		}
		out := make([]models.DeviceResource, 0, len(dc.ResourceOperations))
		for _, ro := range dc.ResourceOperations {
			dr, ok := resourceOf(p, ro.DeviceResource)
			if !ok {
				return nil, newAPIError(http.StatusInternalServerError, "DeviceResource %s in GET commnd %s for %s not defined", ro.DeviceResource, dc.Name, device)
			}
			out = append(out, dr)
		}
		return out, nil
	}
	if !regex {
		dr, ok := resourceOf(p, source)
		if !ok {
			return nil, newAPIError(http.StatusNotFound, "DeviceResource %s not found", source)
		}
		if dr.Properties.ReadWrite == common.ReadWrite_W {
			return nil, newAPIError(http.StatusMethodNotAllowed, "DeviceResource %s is marked as write-only", dr.Name)
		}
		return []models.DeviceResource{dr}, nil
	}
	return resourcesMatching(p, source)
}

func resourcesMatching(p models.DeviceProfile, pattern string) ([]models.DeviceResource, *apiError) {
	re, err := regexp.CompilePOSIX(pattern)
	if err != nil {
		return nil, newAPIError(http.StatusBadRequest, "failed to CompilePOSIX resource name -> %s", err)
	}
	var matched, readable []models.DeviceResource
	for _, dr := range p.DeviceResources {
		if dr.Name == pattern || re.FindString(dr.Name) == dr.Name {
			matched = append(matched, dr)
		}
	}
	if len(matched) == 0 {
		return nil, newAPIError(http.StatusNotFound, "Regex DeviceResource %s not found", pattern)
	}
	for _, dr := range matched {
		if dr.Properties.ReadWrite != common.ReadWrite_W {
			readable = append(readable, dr)
		}
	}
	if len(readable) == 0 {
		return nil, newAPIError(http.StatusMethodNotAllowed, "no readable resources matched with %s", pattern)
	}
	return readable, nil
}

// currentValue returns the device resource's value, starting it from the
// profile the first time.
func (s *Simulator) currentValue(device string, dr models.DeviceResource) *resourceValue {
	values := s.db.values[device]
	if values == nil {
		values = map[string]*resourceValue{}
		s.db.values[device] = values
	}
	rv, ok := values[dr.Name]
	if !ok || rv.valueType != dr.Properties.ValueType {
		s.db.frame++
		v := initialValue(dr, s.db.frame)
		rv = &v
		values[dr.Name] = rv
	}
	return rv
}

// pendingWrite is one converted, range-checked value not yet applied.
type pendingWrite struct {
	resource models.DeviceResource
	value    resourceValue
}

// write executes a set command with the request body's parameters. Nothing
// is written unless every value converts; the event (nil for write-only
// targets) carries the written values.
func (s *Simulator) write(t commandTarget, command string, params map[string]any, via string) (*dtos.Event, []Write, *apiError) {
	if err := s.checkDeviceState(t); err != nil {
		return nil, nil, err
	}
	p := s.db.profiles[t.device.ProfileName]
	pending, readWrite, err := plannedWrites(p, t.device.Name, command, params)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	origin := s.uniqueOrigin()
	ev := dtos.NewEvent(p.Name, t.device.Name, command)
	ev.Origin = origin
	writes := make([]Write, 0, len(pending))
	for _, pw := range pending {
		rv := s.currentValue(t.device.Name, pw.resource)
		*rv = pw.value
		writes = append(writes, Write{Device: t.device.Name, Resource: pw.resource.Name,
			Value: formatted(pw.resource, pw.value), Via: via, At: now})
		r, err := reading(p.Name, t.device.Name, pw.resource, pw.value, origin)
		if err != nil {
			return nil, nil, err
		}
		ev.Readings = append(ev.Readings, r)
	}
	if readWrite == common.ReadWrite_W {
		return nil, writes, nil
	}
	return &ev, writes, nil
}

// plannedWrites resolves a set command to converted values, with
// device-sdk-go's checks and messages, and the target's readWrite.
func plannedWrites(p models.DeviceProfile, device, command string, params map[string]any) ([]pendingWrite, string, *apiError) {
	if dc, ok := commandOf(p, command); ok {
		if dc.ReadWrite == common.ReadWrite_R {
			return nil, "", newAPIError(http.StatusMethodNotAllowed, "DeviceCommand %s is marked as read-only", dc.Name)
		}
		out := make([]pendingWrite, 0, len(dc.ResourceOperations))
		for _, ro := range dc.ResourceOperations {
			dr, ok := resourceOf(p, ro.DeviceResource)
			if !ok {
				return nil, "", newAPIError(http.StatusInternalServerError, "DeviceResource %s in SET commnd %s for %s not defined", ro.DeviceResource, dc.Name, device)
			}
			pw, err := plannedWrite(dr, params, ro.DefaultValue)
			if err != nil {
				return nil, "", err
			}
			out = append(out, pw)
		}
		return out, dc.ReadWrite, nil
	}
	dr, ok := resourceOf(p, command)
	if !ok {
		return nil, "", newAPIError(http.StatusNotFound, "DeviceResource %s not found", command)
	}
	if dr.Properties.ReadWrite == common.ReadWrite_R {
		return nil, "", newAPIError(http.StatusMethodNotAllowed, "DeviceResource %s is marked as read-only", dr.Name)
	}
	pw, err := plannedWrite(dr, params, "")
	if err != nil {
		return nil, "", err
	}
	return []pendingWrite{pw}, dr.Properties.ReadWrite, nil
}

// plannedWrite takes the resource's parameter from the body, falling back to
// the resource operation's and then the resource's default value.
func plannedWrite(dr models.DeviceResource, params map[string]any, opDefault string) (pendingWrite, *apiError) {
	raw, ok := params[dr.Name]
	if !ok {
		switch {
		case opDefault != "":
			raw = opDefault
		case dr.Properties.DefaultValue != "":
			raw = dr.Properties.DefaultValue
		default:
			return pendingWrite{}, newAPIError(http.StatusInternalServerError,
				"DeviceResource %s not found in request body and no default value defined", dr.Name)
		}
	}
	text := fmt.Sprint(raw)
	if dr.Properties.ValueType == common.ValueTypeObject {
		if _, isString := raw.(string); !isString {
			return pendingWrite{resource: dr, value: resourceValue{valueType: common.ValueTypeObject, v: raw}}, nil
		}
	}
	v, err := parseValue(dr.Properties.ValueType, text)
	if err != nil {
		return pendingWrite{}, &apiError{status: err.status, message: "failed to create CommandValue -> " + err.message}
	}
	if err := checkRange(v, dr.Properties); err != nil {
		return pendingWrite{}, err
	}
	return pendingWrite{resource: dr, value: resourceValue{valueType: dr.Properties.ValueType, v: v}}, nil
}
