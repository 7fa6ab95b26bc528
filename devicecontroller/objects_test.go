package devicecontroller_test

import (
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// Objects as a user would apply them in the cloud.

func managedService(p *pool, name string) *v1alpha1.DeviceService {
	return &v1alpha1.DeviceService{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.ns},
		Spec: v1alpha1.DeviceServiceSpec{
			BaseAddress: "http://device-" + name + ":59900", Description: "managed from the cloud",
			Labels: []string{"cloud"}, AdminState: v1alpha1.UnLocked, Managed: true, NodePool: p.name,
		},
	}
}

func managedProfile(p *pool, name string) *v1alpha1.DeviceProfile {
	return &v1alpha1.DeviceProfile{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.ns},
		Spec: v1alpha1.DeviceProfileSpec{
			NodePool: p.name, Description: "GPIO, sensor and camera", Manufacturer: "edgebridge", Model: "mixed-01",
			Labels: []string{"cloud"},
			DeviceResources: []v1alpha1.DeviceResource{
				{Name: "gpio_out_1", Description: "GPIO-like digital output", Properties: v1alpha1.ResourceProperties{ValueType: "Bool", ReadWrite: "RW", DefaultValue: "false"}},
				{Name: "counter", Description: "integer register", Properties: v1alpha1.ResourceProperties{ValueType: "Int32", ReadWrite: "RW", DefaultValue: "0", Minimum: "0", Maximum: "1000"}},
				{Name: "temperature", Description: "float sensor", Properties: v1alpha1.ResourceProperties{ValueType: "Float32", ReadWrite: "R", Units: "degC", Minimum: "-20", Maximum: "60"}},
				{Name: "level", Description: "float setpoint", Properties: v1alpha1.ResourceProperties{ValueType: "Float32", ReadWrite: "RW", DefaultValue: "0"}},
			},
			DeviceCommands: []v1alpha1.DeviceCommand{
				{Name: "sensors", ReadWrite: "R", ResourceOperations: []v1alpha1.ResourceOperation{{DeviceResource: "counter"}, {DeviceResource: "temperature"}}},
			},
		},
	}
}

func managedDevice(p *pool, name, service, profile string) *v1alpha1.Device {
	return &v1alpha1.Device{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.ns},
		Spec: v1alpha1.DeviceSpec{
			Description: "managed from the cloud", AdminState: v1alpha1.UnLocked, OperatingState: v1alpha1.Up,
			Protocols: map[string]v1alpha1.ProtocolProperties{"other": {"Address": name}},
			Labels:    []string{"cloud"}, Service: service, Profile: profile, Managed: true, NodePool: p.name,
		},
	}
}

// managedSet applies a service, a profile and a device using them, and
// waits until all three are synced.
func managedSet(p *pool, prefix string) (*v1alpha1.DeviceService, *v1alpha1.DeviceProfile, *v1alpha1.Device) {
	svc := managedService(p, prefix+"-svc")
	prof := managedProfile(p, prefix+"-profile")
	dev := managedDevice(p, prefix+"-dev", svc.Name, prof.Name)
	p.create(svc)
	p.create(prof)
	p.create(dev)
	waitFor(p, &v1alpha1.DeviceService{}, svc.Name, func(s *v1alpha1.DeviceService) error { return synced(s.Status.Synced, s.Status.Conditions) })
	waitFor(p, &v1alpha1.DeviceProfile{}, prof.Name, func(d *v1alpha1.DeviceProfile) error { return synced(d.Status.Synced, d.Status.Conditions) })
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	return svc, prof, dev
}

func updateServiceAddress(name, addr string) dtos.UpdateDeviceService {
	return dtos.UpdateDeviceService{Name: &name, BaseAddress: &addr}
}
