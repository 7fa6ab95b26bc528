package devicecontroller

import (
	"net/http"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// RESTMapper maps the kinds the bridge uses to their resources without
// asking the API server; give it to the manager as its MapperProvider.
// Discovery requests are not resource requests, so YurtHub cannot answer
// them from its cache: a bridge that discovered its kinds could not start
// while the cloud is away, though everything else it needs is cached.
func RESTMapper(*rest.Config, *http.Client) (meta.RESTMapper, error) {
	m := meta.NewDefaultRESTMapper(nil)
	for _, k := range []struct {
		gvk   schema.GroupVersionKind
		scope meta.RESTScope
	}{
		{v1alpha1.GroupVersion.WithKind("Device"), meta.RESTScopeNamespace},
		{v1alpha1.GroupVersion.WithKind("DeviceService"), meta.RESTScopeNamespace},
		{v1alpha1.GroupVersion.WithKind("DeviceProfile"), meta.RESTScopeNamespace},
		{coordinationv1.SchemeGroupVersion.WithKind("Lease"), meta.RESTScopeNamespace},
		{corev1.SchemeGroupVersion.WithKind("Event"), meta.RESTScopeNamespace},
		{corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot},
		{corev1.SchemeGroupVersion.WithKind("Node"), meta.RESTScopeRoot},
		{authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview"), meta.RESTScopeRoot},
	} {
		m.Add(k.gvk, k.scope)
		// The client maps a list by its list kind.
		m.Add(k.gvk.GroupVersion().WithKind(k.gvk.Kind+"List"), k.scope)
	}
	return m, nil
}
