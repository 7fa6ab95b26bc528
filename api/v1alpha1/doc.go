// Package v1alpha1 holds the iot.openyurt.io/v1alpha1 kinds the bridge serves:
// Device, DeviceService and DeviceProfile.
//
// The types are a wire-compatible superset of OpenYurt's yurt-iot-dock API:
// every JSON name and type upstream defines is kept, so existing manifests
// apply unchanged and mean the same. Additions are optional and mean nothing
// when absent. This package holds types, markers and small helpers only; it
// must not know EdgeX clients or controllers.
//
// +kubebuilder:object:generate=true
// +groupName=iot.openyurt.io
package v1alpha1
