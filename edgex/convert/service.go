package convert

import (
	"errors"
	"slices"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// ServiceToEdgeX renders a DeviceService as EdgeX should hold it, named
// v1alpha1.EdgeXName(s). An empty adminState becomes UNLOCKED, the only
// reading of "no preference" that core-metadata's validation accepts.
func ServiceToEdgeX(s *v1alpha1.DeviceService) (dtos.DeviceService, error) {
	name := v1alpha1.EdgeXName(s)
	if name == "" {
		return dtos.DeviceService{}, errors.New("device service has no name")
	}
	return dtos.DeviceService{
		Name:        name,
		Description: s.Spec.Description,
		Labels:      slices.Clone(s.Spec.Labels),
		BaseAddress: s.Spec.BaseAddress,
		AdminState:  string(orDefault(s.Spec.AdminState, v1alpha1.UnLocked)),
	}, nil
}

// ServiceFromEdgeX is the spec that mirrors an EdgeX device service.
// Managed and NodePool are left for the caller.
func ServiceFromEdgeX(dto dtos.DeviceService) v1alpha1.DeviceServiceSpec {
	return v1alpha1.DeviceServiceSpec{
		BaseAddress: dto.BaseAddress,
		Description: dto.Description,
		Labels:      cloneOrNil(dto.Labels),
		AdminState:  v1alpha1.AdminState(dto.AdminState),
	}
}

// ServiceUpdate is the PATCH that makes EdgeX's device service (have)
// match want: only the fields that differ, plus the name EdgeX finds the
// service by. changed is false when nothing differs.
func ServiceUpdate(want, have dtos.DeviceService) (patch dtos.UpdateDeviceService, changed bool) {
	name := want.Name
	patch.Name = &name
	d := differ{}
	patch.Description = d.str(want.Description, have.Description)
	patch.BaseAddress = d.str(want.BaseAddress, have.BaseAddress)
	patch.AdminState = d.str(want.AdminState, have.AdminState)
	patch.Labels = d.labels(want.Labels, have.Labels)
	return patch, d.changed
}
