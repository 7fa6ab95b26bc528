package admission_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller/admission"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// TestProfileIndexFindsTheDevicesOwnProfile asks the validator directly,
// with the webhook's cache and no live fallback, so that the answers come
// from admission.ProfileIndex alone.
func TestProfileIndexFindsTheDevicesOwnProfile(t *testing.T) {
	needKube(t)
	ns := kube.Namespace(t)
	mustCreate(t, capturedProfile(t, ns, poolA, profileName))
	mustCreate(t, readOnly(capturedProfile(t, ns, poolB, profileName)))
	// Two profiles that claim one EdgeX name in one pool; which of them
	// EdgeX holds cannot be known here.
	mustCreate(t, capturedProfile(t, ns, poolA, "Twin"))
	twin := capturedProfile(t, ns, poolA, "Twin")
	twin.Name += "-copy"
	mustCreate(t, twin)

	cases := []struct {
		name       string
		pool       string
		profile    string
		namespaces []string
		// refused is the one field refused; "" means accepted with warning.
		refused string
		warning string
	}{
		{name: "the pool's profile is found by its EdgeX name",
			pool: poolA, profile: profileName, refused: "spec.deviceProperties[counter].desiredValue"},
		{name: "another pool's profile of the same EdgeX name is that pool's own",
			pool: poolB, profile: profileName, refused: "spec.deviceProperties[counter].desiredValue"},
		{name: "a profile nobody applied is reported, not guessed",
			pool: poolA, profile: "No-Such-Profile", warning: `device profile "No-Such-Profile" of node pool "pool-a" not found`},
		{name: "two profiles of one EdgeX name in a pool are not guessed between",
			pool: poolA, profile: "Twin", warning: `2 device profiles of node pool "pool-a" are named "Twin" in EdgeX`},
		{name: "a namespace the webhook does not watch is reported",
			pool: poolA, profile: profileName, namespaces: []string{"elsewhere"}, warning: fmt.Sprintf("does not watch namespace %q", ns)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := &admission.Validator{Profiles: profileCache, Namespaces: tc.namespaces}
			dev := device(ns, fmt.Sprintf("device-%d", i), tc.pool, tc.profile, map[string]string{"counter": "5000"})
			// The cache catches up with the profiles just created.
			testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
				warnings, err := v.ValidateCreate(ctx, dev)
				return compareAnswer(warnings, err, tc.refused, tc.warning)
			})
		})
	}
}

func compareAnswer(warnings []string, err error, refused, warning string) error {
	if refused == "" {
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], warning) {
			return fmt.Errorf("got %q, %v; want accepted with a warning containing %q", warnings, err, warning)
		}
		return nil
	}
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) {
		return fmt.Errorf("got %q, %v; want %s refused", warnings, err, refused)
	}
	causes := status.Status().Details.Causes
	if len(causes) != 1 || causes[0].Field != refused {
		return fmt.Errorf("refused %v, want only %s", causes, refused)
	}
	return nil
}

// TestLiveReadFindsAProfileTheCacheHasNotSeen covers a profile applied
// together with its devices (one kubectl apply): the cache may not hold it
// yet when the devices arrive. The cache here is real but selects no
// profile at all, so it never will.
func TestLiveReadFindsAProfileTheCacheHasNotSeen(t *testing.T) {
	needKube(t)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
	defer cancel()
	blind := blindCache(ctx, t)
	ns := kube.Namespace(t)
	mustCreate(t, capturedProfile(t, ns, poolA, profileName))
	dev := device(ns, "lamp", poolA, profileName, map[string]string{"counter": "5000"})

	cases := []struct {
		name    string
		live    client.Reader
		refused string
		warning string
	}{
		{name: "without a live reader the profile is reported missing",
			warning: `device profile "Test-GPIO-Sensor-Camera" of node pool "pool-a" not found`},
		{name: "with a live reader the value is checked",
			live: kube.Client, refused: "spec.deviceProperties[counter].desiredValue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := &admission.Validator{Profiles: blind, Live: tc.live}
			warnings, err := v.ValidateCreate(ctx, dev)
			if err := compareAnswer(warnings, err, tc.refused, tc.warning); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func blindCache(ctx context.Context, t *testing.T) cache.Cache {
	t.Helper()
	never := labels.SelectorFromSet(labels.Set{"edgebridge.io/test-never": "true"})
	return startCache(ctx, t, kube.Config, cache.Options{
		ByObject: map[client.Object]cache.ByObject{&v1alpha1.DeviceProfile{}: {Label: never}},
	})
}
