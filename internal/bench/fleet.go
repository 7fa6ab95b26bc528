package bench

import (
	"fmt"
	"strconv"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"

	"github.com/edgebridge/edgebridge/edgex/simulator"
)

// The benchmark's edge: three device services and three profiles, each
// profile with three readable resources (one of them writable, for
// commands) and a device command that reads all three, so that one event
// carries three readings.

const (
	servicesInFleet = 3
	// maxReadingsPerEvent is how many readable resources each profile has,
	// so the most readings one event carries (the "all" command's).
	maxReadingsPerEvent = 3
	// allSource is the device command every profile has that reads its
	// three resources.
	allSource = "all"
)

// resourceSpec is one device resource of a benchmark profile.
type resourceSpec struct {
	name, valueType, readWrite, units string
	min, max                          float64
}

// profileSpec is one benchmark profile; writable names the resource
// commands set.
type profileSpec struct {
	name      string
	resources [maxReadingsPerEvent]resourceSpec
	writable  string
}

var fleetProfileSpecs = []profileSpec{
	{
		name: "bench-switch", writable: "relay",
		resources: [maxReadingsPerEvent]resourceSpec{
			{name: "relay", valueType: common.ValueTypeBool, readWrite: common.ReadWrite_RW},
			{name: "contact", valueType: common.ValueTypeBool, readWrite: common.ReadWrite_R},
			{name: "cycles", valueType: common.ValueTypeInt32, readWrite: common.ReadWrite_R, min: 0, max: 1e9},
		},
	},
	{
		name: "bench-sensor", writable: "sample_rate",
		resources: [maxReadingsPerEvent]resourceSpec{
			{name: "temperature", valueType: common.ValueTypeFloat32, readWrite: common.ReadWrite_R, units: "degC", min: -40, max: 85},
			{name: "humidity", valueType: common.ValueTypeFloat32, readWrite: common.ReadWrite_R, units: "%", min: 0, max: 100},
			{name: "sample_rate", valueType: common.ValueTypeInt32, readWrite: common.ReadWrite_RW, min: 1, max: 1000},
		},
	},
	{
		name: "bench-meter", writable: "enabled",
		resources: [maxReadingsPerEvent]resourceSpec{
			{name: "power", valueType: common.ValueTypeFloat64, readWrite: common.ReadWrite_R, units: "W", min: 0, max: 1e6},
			{name: "energy", valueType: common.ValueTypeFloat64, readWrite: common.ReadWrite_R, units: "kWh", min: 0, max: 1e12},
			{name: "enabled", valueType: common.ValueTypeBool, readWrite: common.ReadWrite_RW},
		},
	},
}

func serviceName(i int) string { return fmt.Sprintf("bench-svc-%d", i%servicesInFleet) }

func fleetServices() []dtos.DeviceService {
	out := make([]dtos.DeviceService, servicesInFleet)
	for i := range out {
		out[i] = dtos.DeviceService{
			Name:        serviceName(i),
			Description: "benchmark device service",
			BaseAddress: fmt.Sprintf("http://127.0.0.1:%d", 59900+i),
			AdminState:  string(models.Unlocked),
		}
	}
	return out
}

func fleetProfiles() []dtos.DeviceProfile {
	out := make([]dtos.DeviceProfile, len(fleetProfileSpecs))
	for i, spec := range fleetProfileSpecs {
		p := dtos.DeviceProfile{DeviceProfileBasicInfo: dtos.DeviceProfileBasicInfo{
			Name: spec.name, Manufacturer: "edgebridge", Model: spec.name + "-1",
			Description: "benchmark profile", Labels: []string{"bench"},
		}}
		all := dtos.DeviceCommand{Name: allSource, ReadWrite: common.ReadWrite_R}
		for _, r := range spec.resources {
			p.DeviceResources = append(p.DeviceResources, dtos.DeviceResource{
				Name: r.name, Description: "benchmark resource " + r.name,
				Properties: resourceProperties(r),
			})
			all.ResourceOperations = append(all.ResourceOperations, dtos.ResourceOperation{DeviceResource: r.name})
		}
		p.DeviceCommands = []dtos.DeviceCommand{all}
		out[i] = p
	}
	return out
}

func resourceProperties(r resourceSpec) dtos.ResourceProperties {
	props := dtos.ResourceProperties{ValueType: r.valueType, ReadWrite: r.readWrite, Units: r.units}
	switch r.valueType {
	case common.ValueTypeBool:
		props.DefaultValue = "false"
	default:
		lo, hi := r.min, r.max
		props.Minimum, props.Maximum = &lo, &hi
		props.DefaultValue = strconv.FormatFloat(max(lo, 1), 'f', -1, 64)
	}
	return props
}

// fleetDevice is the i-th device of a fleet: services and profiles are
// mixed so that every combination occurs.
func fleetDevice(name string, i int) dtos.Device {
	return dtos.Device{
		Name:           name,
		Description:    "benchmark device",
		AdminState:     string(models.Unlocked),
		OperatingState: string(models.Up),
		Labels:         []string{"bench"},
		ServiceName:    serviceName(i),
		ProfileName:    fleetProfileSpecs[(i/servicesInFleet)%len(fleetProfileSpecs)].name,
		AutoEvents:     []dtos.AutoEvent{{Interval: "10s", SourceName: allSource}},
		Protocols:      map[string]dtos.ProtocolProperties{"other": {"Address": name, "Port": strconv.Itoa(10000 + i%50000)}},
	}
}

// fleetDeviceName names the i-th device of the imported fleet.
func fleetDeviceName(i int) string { return fmt.Sprintf("dev-%05d", i) }

// seedFleet loads the services, profiles and n devices into the simulator,
// as device services would have registered them before the bridge starts.
func seedFleet(sim *simulator.Simulator, n int) error {
	for _, s := range fleetServices() {
		if _, err := sim.AddDeviceService(s); err != nil {
			return err
		}
	}
	for _, p := range fleetProfiles() {
		if _, err := sim.AddDeviceProfile(p); err != nil {
			return err
		}
	}
	for i := range n {
		if _, err := sim.AddDevice(fleetDevice(fleetDeviceName(i), i)); err != nil {
			return err
		}
	}
	return nil
}

func profileSpecNamed(name string) (profileSpec, bool) {
	for _, p := range fleetProfileSpecs {
		if p.name == name {
			return p, true
		}
	}
	return profileSpec{}, false
}

// readings are the values a device reports in one event. A changing device
// reports new values every round, a steady one the same values each time
// (a switch nobody touches), so that the benchmark can tell coalesced
// writes from writes that should not happen at all.
func readings(profile string, round int, changing bool) map[string]string {
	if !changing {
		round = 0
	}
	switch profile {
	case "bench-switch":
		return map[string]string{"relay": "false", "contact": strconv.FormatBool(round%2 == 1), "cycles": strconv.Itoa(round)}
	case "bench-sensor":
		return map[string]string{
			"temperature": strconv.FormatFloat(20+float64(round%500)/10, 'f', 1, 64),
			"humidity":    strconv.FormatFloat(40+float64(round%400)/10, 'f', 1, 64),
			"sample_rate": "10",
		}
	default:
		return map[string]string{
			"power":   strconv.FormatFloat(100+float64(round%997), 'f', 1, 64),
			"energy":  strconv.FormatFloat(float64(round)/100, 'f', 2, 64),
			"enabled": "true",
		}
	}
}

// nextCommandValue is a value for a writable resource that differs from
// what the device holds, so that every patched desired value needs a
// command.
func nextCommandValue(valueType, current string) string {
	if valueType == common.ValueTypeBool {
		b, _ := strconv.ParseBool(current)
		return strconv.FormatBool(!b)
	}
	n, _ := strconv.ParseFloat(current, 64)
	return strconv.Itoa(int(n)%999 + 1)
}
