package simulator

import (
	"context"
	"fmt"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"
)

// The demo edge: a GPIO board, an environment sensor and a camera behind
// EdgeX's device-virtual service.

// DemoServiceName is the demo's device service.
const DemoServiceName = "device-virtual"

// Demo profile names.
const (
	ProfileGPIO   = "Simulated-GPIO"
	ProfileSensor = "Simulated-Sensor"
	ProfileCamera = "Simulated-Camera"
)

// DemoLabel marks every demo profile and device.
const DemoLabel = "edgebridge-demo"

// DemoService is device-virtual as the demo registers it.
func DemoService() dtos.DeviceService {
	return dtos.DeviceService{
		Name:        DemoServiceName,
		Description: "virtual devices for the edgebridge demo",
		BaseAddress: "http://127.0.0.1:59900",
		AdminState:  string(models.Unlocked),
	}
}

func float(v float64) *float64 { return &v }

func resource(name, description, valueType, readWrite, defaultValue string) dtos.DeviceResource {
	return dtos.DeviceResource{
		Name:        name,
		Description: description,
		Properties:  dtos.ResourceProperties{ValueType: valueType, ReadWrite: readWrite, DefaultValue: defaultValue},
	}
}

func ranged(r dtos.DeviceResource, units string, lo, hi float64) dtos.DeviceResource {
	r.Properties.Units = units
	r.Properties.Minimum, r.Properties.Maximum = float(lo), float(hi)
	return r
}

func command(name, readWrite string, resources ...string) dtos.DeviceCommand {
	ops := make([]dtos.ResourceOperation, len(resources))
	for i, r := range resources {
		ops[i] = dtos.ResourceOperation{DeviceResource: r}
	}
	return dtos.DeviceCommand{Name: name, ReadWrite: readWrite, ResourceOperations: ops}
}

// DemoProfiles are the GPIO board, sensor and camera profiles.
func DemoProfiles() []dtos.DeviceProfile {
	snapshot := resource("snapshot", "latest camera frame", common.ValueTypeBinary, common.ReadWrite_R, "")
	snapshot.Properties.MediaType = "image/jpeg"
	// An Object resource, as EdgeX's ONVIF and USB camera services use for
	// PTZ and streaming commands (device-mqtt's "json" in the captures).
	ptz := resource("ptz", "pan, tilt and zoom position", common.ValueTypeObject, common.ReadWrite_RW, `{"pan":0,"tilt":0,"zoom":1}`)
	ptz.Properties.MediaType = "application/json"
	return []dtos.DeviceProfile{
		{
			DeviceProfileBasicInfo: dtos.DeviceProfileBasicInfo{Name: ProfileGPIO, Manufacturer: "edgebridge",
				Model: "gpio-sim-1", Description: "GPIO board: two outputs and one input", Labels: []string{DemoLabel, "gpio"}},
			DeviceResources: []dtos.DeviceResource{
				resource("pin_17", "digital output 17", common.ValueTypeBool, common.ReadWrite_RW, "false"),
				resource("pin_18", "digital output 18", common.ValueTypeBool, common.ReadWrite_RW, "false"),
				resource("pin_27", "digital input 27", common.ValueTypeBool, common.ReadWrite_R, "false"),
			},
			DeviceCommands: []dtos.DeviceCommand{command("pins", common.ReadWrite_R, "pin_17", "pin_18", "pin_27")},
		},
		{
			DeviceProfileBasicInfo: dtos.DeviceProfileBasicInfo{Name: ProfileSensor, Manufacturer: "edgebridge",
				Model: "env-sim-1", Description: "temperature and humidity sensor", Labels: []string{DemoLabel, "sensor"}},
			DeviceResources: []dtos.DeviceResource{
				ranged(resource("temperature", "air temperature", common.ValueTypeFloat32, common.ReadWrite_R, "21.5"), "degC", -20, 60),
				ranged(resource("humidity", "relative humidity", common.ValueTypeFloat32, common.ReadWrite_R, "45"), "%", 0, 100),
				ranged(resource("sample_rate", "samples per minute", common.ValueTypeInt32, common.ReadWrite_RW, "10"), "", 1, 1000),
			},
			DeviceCommands: []dtos.DeviceCommand{command("environment", common.ReadWrite_R, "temperature", "humidity")},
		},
		{
			DeviceProfileBasicInfo: dtos.DeviceProfileBasicInfo{Name: ProfileCamera, Manufacturer: "edgebridge",
				Model: "cam-sim-1", Description: "camera with snapshots and a stream", Labels: []string{DemoLabel, "camera"}},
			DeviceResources: []dtos.DeviceResource{
				snapshot,
				resource("stream_url", "RTSP stream address", common.ValueTypeString, common.ReadWrite_R, "rtsp://127.0.0.1:8554/live"),
				resource("streaming", "stream on or off", common.ValueTypeBool, common.ReadWrite_RW, "false"),
				ptz,
			},
		},
	}
}

func demoDevice(name, profile string, autoEvents ...dtos.AutoEvent) dtos.Device {
	return dtos.Device{
		Name:           name,
		Description:    "edgebridge demo device",
		AdminState:     string(models.Unlocked),
		OperatingState: string(models.Up),
		Labels:         []string{DemoLabel},
		ServiceName:    DemoServiceName,
		ProfileName:    profile,
		AutoEvents:     autoEvents,
		Protocols:      map[string]dtos.ProtocolProperties{"other": {"Address": name}},
	}
}

// DemoDevices are gpio-board-01, env-sensor-01 and camera-01.
func DemoDevices() []dtos.Device {
	return []dtos.Device{
		demoDevice("gpio-board-01", ProfileGPIO,
			dtos.AutoEvent{Interval: "5s", OnChange: true, SourceName: "pins"}),
		demoDevice("env-sensor-01", ProfileSensor,
			dtos.AutoEvent{Interval: "10s", SourceName: "environment"}),
		demoDevice("camera-01", ProfileCamera,
			dtos.AutoEvent{Interval: "30s", SourceName: "snapshot"},
			dtos.AutoEvent{Interval: "10s", OnChange: true, SourceName: "streaming"}),
	}
}

// SeedDemo registers the demo service, profiles and devices, as
// device-virtual does when it starts with them provisioned.
func (s *Simulator) SeedDemo(ctx context.Context) error {
	if _, err := s.AddDeviceService(DemoService()); err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	for _, p := range DemoProfiles() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("seed demo: %w", err)
		}
		if _, err := s.AddDeviceProfile(p); err != nil {
			return fmt.Errorf("seed demo: %w", err)
		}
	}
	for _, d := range DemoDevices() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("seed demo: %w", err)
		}
		if _, err := s.AddDevice(d); err != nil {
			return fmt.Errorf("seed demo: %w", err)
		}
	}
	return nil
}
