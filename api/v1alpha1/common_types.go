package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AdminState is EdgeX's administrative state: a LOCKED device or service takes
// no commands.
// +kubebuilder:validation:Enum="";LOCKED;UNLOCKED
type AdminState string

const (
	Locked   AdminState = "LOCKED"
	UnLocked AdminState = "UNLOCKED"
)

// OperatingState is EdgeX's operating state, normally set by the device
// service from what it sees of the device.
// +kubebuilder:validation:Enum="";UP;DOWN;UNKNOWN
type OperatingState string

const (
	Unknown OperatingState = "UNKNOWN"
	Up      OperatingState = "UP"
	Down    OperatingState = "DOWN"
)

// Keys the bridge keeps on objects' metadata.
const (
	// EdgeXNameAnnotation holds the object's name in EdgeX core-metadata. It is
	// written once and never re-derived, because EdgeX allows names (upper
	// case, '_', '~', over 63 characters) that Kubernetes names cannot hold.
	EdgeXNameAnnotation = "edgebridge.io/edgex-name"

	// LegacyEdgeXNameLabel is where yurt-iot-dock kept the EdgeX name. It is
	// read, so objects the dock imported keep their identity, and written
	// when the name fits a label value, so tools built for the dock still work.
	LegacyEdgeXNameLabel = "yurt-iot-dock/edgex-object.name"

	// OriginAnnotation is "edge" on objects the bridge imported from EdgeX.
	// Such an object mirrors EdgeX; one applied in the cloud with managed
	// false is created in EdgeX once and mirrored after that, as under
	// yurt-iot-dock.
	OriginAnnotation = "edgebridge.io/origin"
	// OriginEdge is the OriginAnnotation value for imported objects.
	OriginEdge = "edge"

	// ConfirmEdgeDeletionAnnotation, set by a person on an imported object
	// whose deletion the mass-deletion guard is holding, lets the bridge
	// delete it once EdgeX still lacks it.
	ConfirmEdgeDeletionAnnotation = "edgebridge.io/confirm-edge-deletion"

	// Finalizer makes the bridge delete the EdgeX object before the
	// Kubernetes object goes away.
	Finalizer = "edgebridge.io/edgex"

	// NodePoolLabel is the label OpenYurt puts on nodes to name their pool.
	NodePoolLabel = "apps.openyurt.io/nodepool"

	// PoolLabel mirrors spec.nodePool, so that a bridge can select its
	// pool's objects with a label selector on API servers that cannot
	// select custom resources by field (Kubernetes before 1.31). The
	// bridge sets it on what it creates and on every object it finds
	// without it, and puts it back if someone removes or changes it.
	PoolLabel = "edgebridge.io/nodepool"
)

// LegacyFinalizers are the finalizers yurt-iot-dock (v1.4 to v1.7) adds,
// as DeviceFinalizer, DeviceProfileFinalizer and DeviceServiceFinalizer in
// the openyurt module's pkg/apis/iot/v1alpha1. The bridge adopts them: it
// removes them along with its own once the EdgeX object is gone, so objects
// created under the dock never get stuck in deletion.
var LegacyFinalizers = []string{
	"iot.openyurt.io/device",
	"iot.openyurt.io/deviceprofile",
	"iot.openyurt.io/deviceservice",
}

// EdgeXName returns the name the object has in EdgeX: the annotation, else
// the dock's label, else the object's own name (an object applied in the
// cloud is named in EdgeX as in Kubernetes).
func EdgeXName(obj metav1.Object) string {
	if name := obj.GetAnnotations()[EdgeXNameAnnotation]; name != "" {
		return name
	}
	if name := obj.GetLabels()[LegacyEdgeXNameLabel]; name != "" {
		return name
	}
	return obj.GetName()
}

// Condition types.
const (
	// ConditionSynced is True when the object and its EdgeX counterpart agree.
	ConditionSynced = "Synced"
	// ConditionPropertiesSynced is True when every desired device property
	// value has reached the device.
	ConditionPropertiesSynced = "PropertiesSynced"
)

// Condition reasons, CamelCase so that tools can switch on them.
const (
	ReasonInSync              = "InSync"
	ReasonCreating            = "Creating"
	ReasonEdgeXUnreachable    = "EdgeXUnreachable"
	ReasonEdgeXError          = "EdgeXError"
	ReasonUnauthorized        = "Unauthorized"
	ReasonValidationFailed    = "ValidationFailed"
	ReasonConflict            = "Conflict"
	ReasonDependencyMissing   = "DependencyMissing"
	ReasonProfileInUse        = "ProfileInUse"
	ReasonServiceInUse        = "ServiceInUse"
	ReasonDeletionHeld        = "DeletionHeld"
	ReasonDeleting            = "Deleting"
	ReasonDeviceLocked        = "DeviceLocked"
	ReasonDeviceDown          = "DeviceDown"
	ReasonValueOutOfRange     = "ValueOutOfRange"
	ReasonInvalidValue        = "InvalidValue"
	ReasonReadOnly            = "ReadOnly"
	ReasonUnknownResource     = "UnknownResource"
	ReasonCommandFailed       = "CommandFailed"
	ReasonCommandPending      = "CommandPending"
	ReasonRateLimited         = "RateLimited"
	ReasonServiceUnavailable  = "DeviceServiceUnavailable"
	ReasonNoDesiredProperties = "NoDesiredProperties"
	ReasonNotManaged          = "NotManaged"
)

// Command outcome reasons added for issue 15 (kept apart so that the list
// above stays stable for other edits).
const (
	// ReasonInvalidPutURL: a putURL that is not core-command's URL of the
	// device's own resource; the bridge never follows it.
	ReasonInvalidPutURL = "InvalidPutURL"
	// ReasonTimeout: no answer to a command within --command-timeout; it
	// is retried with backoff.
	ReasonTimeout = "Timeout"
	// ReasonRefused: EdgeX answered the command with an error no more
	// specific reason covers (the device service or the device refused
	// it); EdgeX's message says why.
	ReasonRefused = "Refused"
)

// Condition keeps upstream's condition shape (type, status,
// lastTransitionTime, reason, message) and adds observedGeneration.
type Condition struct {
	// Type of the condition, such as Synced or PropertiesSynced. It is the
	// key of the conditions list, so it is required.
	// +kubebuilder:validation:MaxLength=316
	// +required
	Type string `json:"type"`

	// Status of the condition, one of True, False, Unknown.
	// +kubebuilder:validation:Enum="";"True";"False";"Unknown"
	Status metav1.ConditionStatus `json:"status,omitempty"`

	// Last time the condition transitioned from one status to another.
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`

	// The reason for the condition's last transition, in CamelCase.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`

	// A human readable message indicating details about the transition.
	// +kubebuilder:validation:MaxLength=32768
	// +optional
	Message string `json:"message,omitempty"`

	// The object's generation the condition was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// FindCondition returns the condition of the given type, or nil.
func FindCondition(conditions []Condition, conditionType string) *Condition {
	for i := range conditions {
		if conditions[i].Type == conditionType {
			return &conditions[i]
		}
	}
	return nil
}

// SetCondition adds or replaces the condition of c's type, keeping the
// transition time when the status did not change. It reports whether
// anything changed, so callers can skip a status write that would be a no-op.
func SetCondition(conditions *[]Condition, c Condition) bool {
	existing := FindCondition(*conditions, c.Type)
	if existing == nil {
		if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = metav1.Now()
		}
		*conditions = append(*conditions, c)
		return true
	}
	if existing.Status == c.Status && existing.Reason == c.Reason &&
		existing.Message == c.Message && existing.ObservedGeneration == c.ObservedGeneration {
		return false
	}
	switch {
	case existing.Status == c.Status && !existing.LastTransitionTime.IsZero():
		c.LastTransitionTime = existing.LastTransitionTime
	case c.LastTransitionTime.IsZero():
		c.LastTransitionTime = metav1.Now()
	}
	*existing = c
	return true
}
