package admission

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
)

// Path is where the webhook is served. deploy/admission/webhook.yaml must
// name the same path; the tests install that file, so a mismatch fails them.
const Path = "/validate-iot-openyurt-io-v1alpha1-device"

// ProfileIndex indexes DeviceProfiles by node pool and EdgeX name, the pair
// a Device's spec.nodePool and spec.profileName point at.
const ProfileIndex = "edgebridge.io/nodepool-and-edgex-name"

// liveLookupTimeout bounds the API server read made when the cache lacks a
// profile; the API server gives the whole webhook call only a few seconds.
const liveLookupTimeout = 2 * time.Second

var deviceKind = v1alpha1.GroupVersion.WithKind("Device").GroupKind()

// Validator checks Device desired values against the device's profile.
type Validator struct {
	// Profiles reads DeviceProfiles by ProfileIndex: a manager cache on
	// which IndexProfiles was called.
	Profiles client.Reader
	// Live, when set, reads the API server when Profiles lacks the profile,
	// because a profile applied together with its devices may not have
	// reached the cache yet. Nil means trust the cache.
	Live client.Reader
	// Namespaces whose profiles Profiles holds; empty means all. Devices
	// elsewhere are let through with a warning.
	Namespaces []string
}

var _ admission.Validator[*v1alpha1.Device] = (*Validator)(nil)

// CacheOptions is the manager cache the webhook needs: DeviceProfiles of
// the given namespaces (all when empty), without managed fields.
func CacheOptions(namespaces []string) cache.Options {
	opts := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// IndexProfiles adds ProfileIndex to the cache behind indexer.
func IndexProfiles(ctx context.Context, indexer client.FieldIndexer) error {
	err := indexer.IndexField(ctx, &v1alpha1.DeviceProfile{}, ProfileIndex, func(obj client.Object) []string {
		p := obj.(*v1alpha1.DeviceProfile)
		return []string{profileKey(p.Spec.NodePool, v1alpha1.EdgeXName(p))}
	})
	if err != nil {
		return fmt.Errorf("index device profiles by node pool and EdgeX name: %w", err)
	}
	return nil
}

// profileKey joins a pool and an EdgeX name; pool names are DNS labels, so
// they never hold the separator.
func profileKey(pool, edgexName string) string {
	return pool + "/" + edgexName
}

// Setup indexes mgr's cache and serves the webhook at Path on mgr's webhook
// server. The cache must hold the same namespaces (see CacheOptions).
func Setup(ctx context.Context, mgr ctrl.Manager, namespaces []string) error {
	if err := IndexProfiles(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	v := &Validator{Profiles: mgr.GetCache(), Live: mgr.GetAPIReader(), Namespaces: namespaces}
	err := ctrl.NewWebhookManagedBy(mgr, &v1alpha1.Device{}).
		WithValidator(v).
		WithValidatorCustomPath(Path).
		Complete()
	if err != nil {
		return fmt.Errorf("register device admission webhook: %w", err)
	}
	return nil
}

// ValidateCreate checks every desired value of a new device.
func (v *Validator) ValidateCreate(ctx context.Context, dev *v1alpha1.Device) (admission.Warnings, error) {
	return v.validate(ctx, nil, dev)
}

// ValidateUpdate checks the desired values an update adds or changes.
func (v *Validator) ValidateUpdate(ctx context.Context, old, dev *v1alpha1.Device) (admission.Warnings, error) {
	return v.validate(ctx, old, dev)
}

// ValidateDelete allows every deletion; a device's values do not matter
// once it goes.
func (v *Validator) ValidateDelete(context.Context, *v1alpha1.Device) (admission.Warnings, error) {
	return nil, nil
}

func (v *Validator) validate(ctx context.Context, old, dev *v1alpha1.Device) (admission.Warnings, error) {
	errs, warnings := checkPutURLs(old, dev)
	if names := valuesToCheck(old, dev); len(names) > 0 {
		profile, err := v.findProfile(ctx, dev)
		if err != nil {
			// Never refuse what could not be checked: the bridge checks
			// again before sending and reports the outcome in status.
			warnings = append(warnings, fmt.Sprintf("desired values not checked: %v; the bridge checks them before sending", err))
		} else {
			errs = append(errs, checkValues(profile, dev, names)...)
		}
	}
	if len(errs) > 0 {
		return warnings, apierrors.NewInvalid(deviceKind, dev.Name, errs)
	}
	return warnings, nil
}

// findProfile returns the one DeviceProfile in the device's namespace and
// node pool whose EdgeX name is the device's profileName, or says why
// there is none.
func (v *Validator) findProfile(ctx context.Context, dev *v1alpha1.Device) (*v1alpha1.DeviceProfile, error) {
	if len(v.Namespaces) > 0 && !slices.Contains(v.Namespaces, dev.Namespace) {
		return nil, fmt.Errorf("the webhook does not watch namespace %q", dev.Namespace)
	}
	profiles, err := v.cachedProfiles(ctx, dev)
	if err == nil && len(profiles) == 0 && v.Live != nil {
		profiles, err = v.liveProfiles(ctx, dev)
	}
	if err != nil {
		return nil, fmt.Errorf("look up device profile %q: %w", dev.Spec.Profile, err)
	}
	switch len(profiles) {
	case 0:
		return nil, fmt.Errorf("device profile %q of node pool %q not found", dev.Spec.Profile, dev.Spec.NodePool)
	case 1:
		return &profiles[0], nil
	default:
		return nil, fmt.Errorf("%d device profiles of node pool %q are named %q in EdgeX", len(profiles), dev.Spec.NodePool, dev.Spec.Profile)
	}
}

func (v *Validator) cachedProfiles(ctx context.Context, dev *v1alpha1.Device) ([]v1alpha1.DeviceProfile, error) {
	var list v1alpha1.DeviceProfileList
	err := v.Profiles.List(ctx, &list, client.InNamespace(dev.Namespace),
		client.MatchingFields{ProfileIndex: profileKey(dev.Spec.NodePool, dev.Spec.Profile)})
	return list.Items, err
}

// liveProfiles asks the API server for the pool's profiles and keeps those
// with the device's profile name. It selects by spec.nodePool where the API
// server can (a selectable field, Kubernetes 1.31 and later); elsewhere by
// the pool label, plus the profiles not labelled yet, which a profile
// applied together with its devices may still be.
func (v *Validator) liveProfiles(ctx context.Context, dev *v1alpha1.Device) ([]v1alpha1.DeviceProfile, error) {
	ctx, cancel := context.WithTimeout(ctx, liveLookupTimeout)
	defer cancel()
	var list v1alpha1.DeviceProfileList
	err := v.Live.List(ctx, &list, client.InNamespace(dev.Namespace),
		client.MatchingFields{"spec.nodePool": dev.Spec.NodePool})
	if apierrors.IsBadRequest(err) {
		list.Items, err = v.liveProfilesByLabel(ctx, dev)
	}
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(list.Items, func(p v1alpha1.DeviceProfile) bool {
		return p.Spec.NodePool != dev.Spec.NodePool || v1alpha1.EdgeXName(&p) != dev.Spec.Profile
	}), nil
}

func (v *Validator) liveProfilesByLabel(ctx context.Context, dev *v1alpha1.Device) ([]v1alpha1.DeviceProfile, error) {
	lacking, err := labels.NewRequirement(v1alpha1.PoolLabel, selection.DoesNotExist, nil)
	if err != nil {
		return nil, err
	}
	var found []v1alpha1.DeviceProfile
	for _, sel := range []labels.Selector{
		labels.SelectorFromSet(labels.Set{v1alpha1.PoolLabel: dev.Spec.NodePool}),
		labels.NewSelector().Add(*lacking),
	} {
		var list v1alpha1.DeviceProfileList
		if err := v.Live.List(ctx, &list, client.InNamespace(dev.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return nil, err
		}
		found = append(found, list.Items...)
	}
	return found, nil
}
