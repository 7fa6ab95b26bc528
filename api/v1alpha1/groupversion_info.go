package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version upstream OpenYurt uses; keeping it
// is what lets yurt-iot-dock users switch without touching their manifests.
var GroupVersion = schema.GroupVersion{Group: "iot.openyurt.io", Version: "v1alpha1"}

var (
	// SchemeBuilder registers the three kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the three kinds and their lists to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&Device{}, &DeviceList{},
		&DeviceService{}, &DeviceServiceList{},
		&DeviceProfile{}, &DeviceProfileList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
