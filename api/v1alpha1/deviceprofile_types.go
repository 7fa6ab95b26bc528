package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeviceResource is one value a device exposes: a pin, a register, a
// reading, a frame.
type DeviceResource struct {
	// Information describing the resource.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	Description string `json:"description"`
	// Name of the resource, unique in the profile.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// Tag is kept for compatibility with yurt-iot-dock. EdgeX v3 has no tag
	// field, so the bridge stores it as the resource tag named "tag".
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Tag string `json:"tag,omitempty"`
	// IsHidden hides the resource from core-command's command list.
	// +optional
	IsHidden bool `json:"isHidden"`
	// Properties: value type, access, range and scaling.
	Properties ResourceProperties `json:"properties"`
	// Attributes the device service needs to reach the value, such as a
	// Modbus register.
	// +kubebuilder:validation:MaxProperties=256
	// +optional
	Attributes map[string]string `json:"attributes,omitempty"`
	// TypedAttributes holds the attributes whose EdgeX value is not a
	// string. A typed value is sent to EdgeX only while its JSON text equals
	// the string in attributes, so an edit of attributes always wins.
	// +kubebuilder:validation:MaxProperties=256
	// +optional
	TypedAttributes map[string]apiextensionsv1.JSON `json:"typedAttributes,omitempty"`
	// Tags are EdgeX v3 resource tags.
	// +kubebuilder:validation:MaxProperties=256
	// +optional
	Tags map[string]apiextensionsv1.JSON `json:"tags,omitempty"`
}

// ResourceProperties describe a resource's value. Numbers are written as
// decimal text, as upstream does ("-20", "0.5", "1e3").
type ResourceProperties struct {
	// Access: R, W or RW.
	// +kubebuilder:validation:Enum="";R;W;RW;WR
	// +optional
	ReadWrite string `json:"readWrite,omitempty"`
	// Minimum value that can be set or read.
	// +kubebuilder:validation:Pattern=`^$|^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$`
	// +optional
	Minimum string `json:"minimum,omitempty"`
	// Maximum value that can be set or read.
	// +kubebuilder:validation:Pattern=`^$|^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$`
	// +optional
	Maximum string `json:"maximum,omitempty"`
	// Default value used when a command gives none.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	DefaultValue string `json:"defaultValue,omitempty"`
	// Mask applied before a value is read or written (decimal or 0x hex).
	// +kubebuilder:validation:Pattern=`^$|^([0-9]+|0[xX][0-9a-fA-F]+)$`
	// +optional
	Mask string `json:"mask,omitempty"`
	// Shift applied after masking.
	// +kubebuilder:validation:Pattern=`^$|^[-+]?[0-9]+$`
	// +optional
	Shift string `json:"shift,omitempty"`
	// Scale: multiplicative factor applied after shifting.
	// +kubebuilder:validation:Pattern=`^$|^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$`
	// +optional
	Scale string `json:"scale,omitempty"`
	// Offset: additive factor applied after scaling.
	// +kubebuilder:validation:Pattern=`^$|^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$`
	// +optional
	Offset string `json:"offset,omitempty"`
	// Base: the value is base raised to the reading (0 for none).
	// +kubebuilder:validation:Pattern=`^$|^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$`
	// +optional
	Base string `json:"base,omitempty"`
	// Assertion: a value the reading must equal, else the device is marked
	// DOWN.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Assertion string `json:"assertion,omitempty"`
	// MediaType of a Binary value, such as image/jpeg.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	MediaType string `json:"mediaType,omitempty"`
	// Units of the value, such as degC.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Units string `json:"units,omitempty"`
	// ValueType: Bool, String, Int8..Int64, Uint8..Uint64, Float32, Float64,
	// Binary, Object, or an array of these.
	// +kubebuilder:validation:Enum="";Bool;String;Uint8;Uint16;Uint32;Uint64;Int8;Int16;Int32;Int64;Float32;Float64;Binary;BoolArray;StringArray;Uint8Array;Uint16Array;Uint32Array;Uint64Array;Int8Array;Int16Array;Int32Array;Int64Array;Float32Array;Float64Array;Object
	// +optional
	ValueType string `json:"valueType,omitempty"`
	// Optional: EdgeX v3's free-form extra properties.
	// +kubebuilder:validation:MaxProperties=256
	// +optional
	Optional map[string]apiextensionsv1.JSON `json:"optional,omitempty"`
}

// DeviceCommand groups resources that are read or written together.
type DeviceCommand struct {
	// Name of the command, unique in the profile.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// IsHidden hides the command from core-command's command list.
	// +optional
	IsHidden bool `json:"isHidden"`
	// Access: R, W or RW.
	// +kubebuilder:validation:Enum="";R;W;RW;WR
	// +optional
	ReadWrite string `json:"readWrite"`
	// The resources the command reads or writes, in order.
	// +kubebuilder:validation:MaxItems=256
	// +optional
	ResourceOperations []ResourceOperation `json:"resourceOperations"`
	// Tags are EdgeX v3 command tags.
	// +kubebuilder:validation:MaxProperties=256
	// +optional
	Tags map[string]apiextensionsv1.JSON `json:"tags,omitempty"`
}

// ResourceOperation is one resource inside a command.
type ResourceOperation struct {
	// The resource to read or write.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	DeviceResource string `json:"deviceResource,omitempty"`
	// Mappings translate values, such as "1": "ON".
	// +kubebuilder:validation:MaxProperties=256
	// +optional
	Mappings map[string]string `json:"mappings,omitempty"`
	// Default value when the command gives none.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	DefaultValue string `json:"defaultValue"`
}

// DeviceProfileSpec describes a kind of device: its resources and commands.
type DeviceProfileSpec struct {
	// NodePool is the OpenYurt node pool whose EdgeX holds the profile. It
	// cannot be changed.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.nodePool is immutable"
	// +required
	NodePool string `json:"nodePool,omitempty"`
	// Information describing the profile.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	Description string `json:"description,omitempty"`
	// Manufacturer of the device.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Manufacturer string `json:"manufacturer,omitempty"`
	// Model of the device.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Model string `json:"model,omitempty"`
	// Labels used to search for groups of profiles in EdgeX.
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=1024
	// +optional
	Labels []string `json:"labels,omitempty"`
	// The values devices of this profile expose.
	// +kubebuilder:validation:MaxItems=1024
	// +optional
	DeviceResources []DeviceResource `json:"deviceResources,omitempty"`
	// Commands that read or write several resources at once.
	// +kubebuilder:validation:MaxItems=1024
	// +optional
	DeviceCommands []DeviceCommand `json:"deviceCommands,omitempty"`

	// Managed true means this object is the truth for EdgeX; false means it
	// was imported from EdgeX and mirrors it. Upstream profiles had no such
	// field and were always pushed to EdgeX, so absent means true.
	// +optional
	Managed *bool `json:"managed,omitempty"`
}

// IsManaged reports whether the profile is the truth for EdgeX; absent
// means true, as profiles applied under yurt-iot-dock were pushed to EdgeX.
func (s *DeviceProfileSpec) IsManaged() bool {
	return s.Managed == nil || *s.Managed
}

// Resource returns the profile's device resource of that name, or nil.
func (s *DeviceProfileSpec) Resource(name string) *DeviceResource {
	for i := range s.DeviceResources {
		if s.DeviceResources[i].Name == name {
			return &s.DeviceResources[i]
		}
	}
	return nil
}

// DeviceProfileStatus is what EdgeX reports of the profile.
type DeviceProfileStatus struct {
	// EdgeId is the id EdgeX gave the profile (upstream calls it id).
	// +optional
	EdgeId string `json:"id,omitempty"`
	// Synced is true when the profile exists in EdgeX and agrees with this
	// object.
	// +optional
	Synced bool `json:"synced"`
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

// DeviceProfile describes a kind of device in one node pool's EdgeX: the
// resources it exposes and the commands that read and write them.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dp
// +kubebuilder:selectablefield:JSONPath=".spec.nodePool"
// +kubebuilder:printcolumn:name="NODEPOOL",type="string",JSONPath=".spec.nodePool",description="The node pool whose EdgeX holds the profile"
// +kubebuilder:printcolumn:name="SYNCED",type="boolean",JSONPath=".status.synced",description="Whether EdgeX agrees with this object"
// +kubebuilder:printcolumn:name="REASON",type="string",JSONPath=".status.conditions[?(@.type==\"Synced\")].reason",description="Why it is or is not synced"
// +kubebuilder:printcolumn:name="MANUFACTURER",type="string",priority=1,JSONPath=".spec.manufacturer"
// +kubebuilder:printcolumn:name="MODEL",type="string",priority=1,JSONPath=".spec.model"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type DeviceProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DeviceProfileSpec   `json:"spec,omitempty"`
	Status DeviceProfileStatus `json:"status,omitempty"`
}

// DeviceProfileList is a list of DeviceProfiles.
// +kubebuilder:object:root=true
type DeviceProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DeviceProfile `json:"items"`
}
