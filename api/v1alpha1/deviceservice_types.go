package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeviceServiceSpec is the device service as its owner wants it.
type DeviceServiceSpec struct {
	// BaseAddress is the URL EdgeX uses to reach the device service, such as
	// http://device-virtual:59900.
	// +kubebuilder:validation:MaxLength=2048
	BaseAddress string `json:"baseAddress"`

	// Information describing the device service.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	Description string `json:"description,omitempty"`

	// Labels applied to the device service in EdgeX.
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=1024
	// +optional
	Labels []string `json:"labels,omitempty"`

	// Administrative state: a LOCKED service takes no commands. Empty means
	// UNLOCKED.
	// +optional
	AdminState AdminState `json:"adminState,omitempty"`

	// Managed true means this object is the truth for EdgeX; false means it
	// was imported from EdgeX and mirrors it.
	// +optional
	Managed bool `json:"managed,omitempty"`

	// NodePool is the OpenYurt node pool whose EdgeX holds the service. It
	// cannot be changed.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.nodePool is immutable"
	// +required
	NodePool string `json:"nodePool,omitempty"`
}

// DeviceServiceStatus is what EdgeX reports of the service.
type DeviceServiceStatus struct {
	// Synced is true when the service exists in EdgeX and agrees with this
	// object.
	// +optional
	Synced bool `json:"synced"`
	// EdgeId is the id EdgeX gave the service.
	// +optional
	EdgeId string `json:"edgeId,omitempty"`
	// Time (ms since the epoch) the service last connected.
	// +optional
	LastConnected int64 `json:"lastConnected,omitempty"`
	// Time (ms since the epoch) the service last reported.
	// +optional
	LastReported int64 `json:"lastReported,omitempty"`
	// AdminState as EdgeX has it.
	// +optional
	AdminState AdminState `json:"adminState,omitempty"`
	// Conditions, such as Synced.
	// One entry per type, so that server-side apply lets each writer own
	// its own conditions.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation the bridge last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// DeviceService is a device service (device-virtual, device-modbus, a
// camera service...) registered in one node pool's EdgeX.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dsvc
// +kubebuilder:selectablefield:JSONPath=".spec.nodePool"
// +kubebuilder:printcolumn:name="NODEPOOL",type="string",JSONPath=".spec.nodePool",description="The node pool whose EdgeX holds the service"
// +kubebuilder:printcolumn:name="SYNCED",type="boolean",JSONPath=".status.synced",description="Whether EdgeX agrees with this object"
// +kubebuilder:printcolumn:name="ADMIN",type="string",JSONPath=".status.adminState",description="Admin state in EdgeX"
// +kubebuilder:printcolumn:name="REASON",type="string",JSONPath=".status.conditions[?(@.type==\"Synced\")].reason",description="Why it is or is not synced"
// +kubebuilder:printcolumn:name="MANAGED",type="boolean",priority=1,JSONPath=".spec.managed",description="Whether this object (true) or EdgeX (false) owns the spec"
// +kubebuilder:printcolumn:name="ADDRESS",type="string",priority=1,JSONPath=".spec.baseAddress"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type DeviceService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DeviceServiceSpec   `json:"spec,omitempty"`
	Status DeviceServiceStatus `json:"status,omitempty"`
}

// DeviceServiceList is a list of DeviceServices.
// +kubebuilder:object:root=true
type DeviceServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DeviceService `json:"items"`
}
