package devicecontroller

import (
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// shared is what every part of one pool's bridge uses.
type shared struct {
	opts   Options
	client client.Client
	// apiReader reads the API server itself, past the cache, for the few
	// answers the cache may not have yet.
	apiReader client.Reader
	recorder  events.EventRecorder
	health    *edgeHealth
	cloud     *Cloud
	metrics   *metrics
	log       logr.Logger
}

// watches reports whether the bridge serves objects in namespace ns.
func (s *shared) watches(ns string) bool {
	for _, n := range s.opts.Namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

// warn records a failure as a Warning Event on the object.
func (s *shared) warn(obj runtime.Object, reason, action, note string) {
	s.recorder.Eventf(obj, nil, corev1.EventTypeWarning, reason, action, "%s", truncate(note, 1024))
}

// normal records a noteworthy success as a Normal Event on the object.
func (s *shared) normal(obj runtime.Object, reason, action, note string) {
	s.recorder.Eventf(obj, nil, corev1.EventTypeNormal, reason, action, "%s", truncate(note, 1024))
}

func objectKey(obj client.Object) string {
	return fmt.Sprintf("%s/%s", obj.GetNamespace(), obj.GetName())
}
