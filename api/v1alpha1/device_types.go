package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProtocolProperties are one protocol's settings, such as Address and Port.
type ProtocolProperties map[string]string

// DeviceSpec is the device as its owner wants it. For a managed device
// (managed: true) the bridge makes EdgeX match it; for an imported device it
// mirrors EdgeX.
type DeviceSpec struct {
	// Information describing the device.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	Description string `json:"description,omitempty"`

	// Administrative state: a LOCKED device takes no commands. Empty means
	// UNLOCKED.
	// +optional
	AdminState AdminState `json:"adminState,omitempty"`

	// Operating state. The device service owns it at run time (it marks a
	// device DOWN when it stops answering); the bridge sends this value when
	// it creates the device and whenever this field changes.
	// +optional
	OperatingState OperatingState `json:"operatingState,omitempty"`

	// Protocols the device speaks, each with its properties as the device
	// service expects them, for example modbus-tcp: {Address: 10.0.0.5, Port: "502"}.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Protocols map[string]ProtocolProperties `json:"protocols,omitempty"`

	// TypedProtocols holds the protocol properties whose EdgeX value is not a
	// string (a number, boolean or object), keyed like protocols. A typed value
	// is sent to EdgeX only while its JSON text equals the string in
	// protocols, so an edit of protocols always wins.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	TypedProtocols map[string]map[string]apiextensionsv1.JSON `json:"typedProtocols,omitempty"`

	// Labels applied to the device in EdgeX, to help with searching.
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=1024
	// +optional
	Labels []string `json:"labels,omitempty"`

	// Device service specific location. EdgeX allows any JSON here; a
	// location that is not a string is shown as its JSON text.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	Location string `json:"location,omitempty"`

	// TypedLocation holds the location when EdgeX has it as an object, array
	// or number. It is sent to EdgeX only while its JSON text equals
	// location, so an edit of location always wins.
	// +optional
	TypedLocation *apiextensionsv1.JSON `json:"typedLocation,omitempty"`

	// Name of the device service, in EdgeX, that runs the device.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Service string `json:"serviceName"`

	// Name of the device profile, in EdgeX, that describes the device.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Profile string `json:"profileName"`

	// Kept for compatibility with yurt-iot-dock; EdgeX v3 has no use for it.
	// +optional
	Notify bool `json:"notify"`

	// Managed true means this object is the truth: the bridge creates,
	// updates and deletes the EdgeX device to match it, and re-creates it
	// if the edge loses it. False means the device was imported from EdgeX
	// and this object mirrors it.
	// +optional
	Managed bool `json:"managed,omitempty"`

	// NodePool is the OpenYurt node pool whose EdgeX holds the device. Only
	// that pool's bridge acts on the object. It cannot be changed.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.nodePool is immutable"
	// +required
	NodePool string `json:"nodePool,omitempty"`

	// DeviceProperties are the values the device's resources should have,
	// keyed by resource name. The bridge sends an EdgeX command whenever the
	// device reports a different value.
	// +kubebuilder:validation:MaxProperties=256
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].name == k)",message="every key must equal its .name"
	// +optional
	DeviceProperties map[string]DesiredPropertyState `json:"deviceProperties,omitempty"`

	// AutoEvents make the device service read sources on a schedule. When
	// absent the bridge leaves EdgeX's auto events as they are; an empty list
	// clears them.
	// +kubebuilder:validation:MaxItems=256
	// +optional
	AutoEvents []AutoEvent `json:"autoEvents,omitempty"`

	// Tags are EdgeX v3 device tags, copied onto every event the device
	// sends. Absent means the bridge leaves EdgeX's tags as they are.
	// +kubebuilder:validation:MaxProperties=256
	// +optional
	Tags map[string]apiextensionsv1.JSON `json:"tags,omitempty"`

	// Properties are EdgeX v3 device properties for the device service.
	// Absent means the bridge leaves EdgeX's properties as they are.
	// +kubebuilder:validation:MaxProperties=256
	// +optional
	Properties map[string]apiextensionsv1.JSON `json:"properties,omitempty"`
}

// AutoEvent asks the device service to read a source on a schedule.
type AutoEvent struct {
	// How often to read, as a Go duration such as 10s or 1m.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Interval string `json:"interval"`
	// Publish an event only when the value changed.
	// +optional
	OnChange bool `json:"onChange"`
	// The resource or command to read.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	SourceName string `json:"sourceName"`
}

// DesiredPropertyState is the value one device resource should have.
type DesiredPropertyState struct {
	// Name of the device resource (or command) to set. Equals the map key.
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// PutURL, when set, is the core-command URL to send the value to. It must
	// point at this pool's core-command; when empty the bridge derives it
	// and shows it in status.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	PutURL string `json:"putURL,omitempty"`
	// DesiredValue, in EdgeX's text form for the resource's value type
	// (true, 42, 21.5, ...). Empty means no value is wanted.
	// +kubebuilder:validation:MaxLength=1048576
	DesiredValue string `json:"desiredValue"`
}

// ActualPropertyState is what the device last reported for one resource,
// and the outcome of the last command the bridge sent it.
type ActualPropertyState struct {
	// Name of the device resource.
	Name string `json:"name"`
	// GetURL is the core-command URL that reads the resource.
	// +optional
	GetURL string `json:"getURL,omitempty"`
	// ActualValue is the last value the device reported, in EdgeX's text
	// form. Binary values are never copied here; see mediaType and
	// binarySize.
	ActualValue string `json:"actualValue"`

	// PutURL is the core-command URL the bridge sends commands to.
	// +optional
	PutURL string `json:"putURL,omitempty"`
	// ValueType of the resource as its profile declares it.
	// +optional
	ValueType string `json:"valueType,omitempty"`
	// Units of the reading, if the profile gives any.
	// +optional
	Units string `json:"units,omitempty"`
	// LastReported is when (ms since the epoch) the device took the reading
	// that set actualValue. Readings of the same value do not move it (they
	// are not written); status.lastConnected says the device still reports.
	// +optional
	LastReported int64 `json:"lastReported,omitempty"`
	// MediaType of the last binary reading (a camera frame, say).
	// +optional
	MediaType string `json:"mediaType,omitempty"`
	// BinarySize is the size in bytes of the last binary reading.
	// +optional
	BinarySize int64 `json:"binarySize,omitempty"`
	// LastCommand is the outcome of the last command sent for this resource.
	// +optional
	LastCommand *CommandOutcome `json:"lastCommand,omitempty"`
}

// CommandResult says how a command ended.
// +kubebuilder:validation:Enum=Succeeded;Failed;Blocked
type CommandResult string

const (
	// CommandSucceeded means EdgeX confirmed the write.
	CommandSucceeded CommandResult = "Succeeded"
	// CommandFailed means EdgeX or the device refused or did not answer;
	// the bridge retries with backoff until it succeeds or the desired
	// value changes.
	CommandFailed CommandResult = "Failed"
	// CommandBlocked means the bridge did not send it (device locked or
	// down, value refused by the profile).
	CommandBlocked CommandResult = "Blocked"
)

// CommandOutcome records the last command for one resource.
type CommandOutcome struct {
	// Value that was sent.
	Value string `json:"value"`
	// Result of the command.
	Result CommandResult `json:"result"`
	// Reason in CamelCase, such as DeviceLocked or ValueOutOfRange.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message with EdgeX's own words when it failed.
	// +optional
	Message string `json:"message,omitempty"`
	// Time the outcome was known; for a success, when the device confirmed
	// the value.
	Time metav1.Time `json:"time"`
	// Attempts made for this value so far.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
}

// DeviceStatus is what EdgeX and the device report.
type DeviceStatus struct {
	// Time (ms since the epoch) the device last provided any feedback. While
	// it reports unchanged values, it is refreshed at least once per the
	// bridge's --connected-refresh (10 minutes by default).
	// +optional
	LastConnected int64 `json:"lastConnected,omitempty"`
	// Time (ms since the epoch) the device last reported a changed value.
	// +optional
	LastReported int64 `json:"lastReported,omitempty"`
	// Synced is true when the device exists in EdgeX and agrees with this
	// object.
	// +optional
	Synced bool `json:"synced"`
	// DeviceProperties are the device's reported values, keyed by resource.
	// +optional
	DeviceProperties map[string]ActualPropertyState `json:"deviceProperties,omitempty"`
	// EdgeId is the id EdgeX gave the device.
	// +optional
	EdgeId string `json:"edgeId,omitempty"`
	// AdminState as EdgeX has it.
	// +optional
	AdminState AdminState `json:"adminState,omitempty"`
	// OperatingState as EdgeX has it.
	// +optional
	OperatingState OperatingState `json:"operatingState,omitempty"`
	// Conditions: Synced, and PropertiesSynced for the commands.
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

// Device is a device in one node pool's EdgeX: a GPIO pin, a sensor, a
// camera. Set spec.deviceProperties to command it; read status for what it
// reports.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dev
// +kubebuilder:selectablefield:JSONPath=".spec.nodePool"
// +kubebuilder:printcolumn:name="NODEPOOL",type="string",JSONPath=".spec.nodePool",description="The node pool whose EdgeX holds the device"
// +kubebuilder:printcolumn:name="SYNCED",type="boolean",JSONPath=".status.synced",description="Whether EdgeX agrees with this object"
// +kubebuilder:printcolumn:name="ADMIN",type="string",JSONPath=".status.adminState",description="Admin state in EdgeX"
// +kubebuilder:printcolumn:name="OPERATING",type="string",JSONPath=".status.operatingState",description="Operating state in EdgeX"
// +kubebuilder:printcolumn:name="REASON",type="string",JSONPath=".status.conditions[?(@.type==\"Synced\")].reason",description="Why it is or is not synced"
// +kubebuilder:printcolumn:name="PROPERTIES",type="string",priority=1,JSONPath=".status.conditions[?(@.type==\"PropertiesSynced\")].reason",description="Whether the desired property values reached the device (InSync), or why not"
// +kubebuilder:printcolumn:name="MANAGED",type="boolean",priority=1,JSONPath=".spec.managed",description="Whether this object (true) or EdgeX (false) owns the spec"
// +kubebuilder:printcolumn:name="SERVICE",type="string",priority=1,JSONPath=".spec.serviceName"
// +kubebuilder:printcolumn:name="PROFILE",type="string",priority=1,JSONPath=".spec.profileName"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type Device struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DeviceSpec   `json:"spec,omitempty"`
	Status DeviceStatus `json:"status,omitempty"`
}

// DeviceList is a list of Devices.
// +kubebuilder:object:root=true
type DeviceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Device `json:"items"`
}
