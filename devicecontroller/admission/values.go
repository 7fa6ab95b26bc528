package admission

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/convert"
)

var devicePropertiesPath = field.NewPath("spec", "deviceProperties")

// valuesToCheck names the desired values admission must check, sorted so
// that answers are stable. On create that is every non-empty value. On
// update it is only the new and changed ones, so that an unrelated edit is
// never refused because the profile changed after a value was accepted;
// switching profiles puts every value in question again.
func valuesToCheck(old, dev *v1alpha1.Device) []string {
	var names []string
	for name, p := range dev.Spec.DeviceProperties {
		if p.DesiredValue == "" {
			continue
		}
		if old != nil && old.Spec.Profile == dev.Spec.Profile {
			if prev, ok := old.Spec.DeviceProperties[name]; ok && prev.DesiredValue == p.DesiredValue {
				continue
			}
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// checkValues checks the named desired values against the profile and
// returns every problem, so that one answer tells the user all of them.
func checkValues(profile *v1alpha1.DeviceProfile, dev *v1alpha1.Device, names []string) field.ErrorList {
	var errs field.ErrorList
	for _, name := range names {
		value := dev.Spec.DeviceProperties[name].DesiredValue
		if problem := checkValue(profile, name, value); problem != "" {
			// The problem already quotes the value, shortened; the value
			// itself may be a megabyte.
			path := devicePropertiesPath.Key(name).Child("desiredValue")
			errs = append(errs, field.Invalid(path, field.OmitValueType{}, problem))
		}
	}
	return errs
}

// checkValue says why the profile forbids setting resource name to value,
// or returns "" when EdgeX would accept it.
func checkValue(profile *v1alpha1.DeviceProfile, name, value string) string {
	res := profile.Spec.Resource(name)
	switch {
	case res == nil:
		return fmt.Sprintf("device profile %q has no resource %q", v1alpha1.EdgeXName(profile), name)
	case res.Properties.ReadWrite == "":
		return fmt.Sprintf("resource %q is not writable (its readWrite is empty)", name)
	case !strings.Contains(res.Properties.ReadWrite, "W"):
		return fmt.Sprintf("resource %q is read-only (%s)", name, res.Properties.ReadWrite)
	}
	if err := convert.CheckValue(res.Properties, value); err != nil {
		return fmt.Sprintf("resource %q (%s): %v", name, res.Properties.ValueType, err)
	}
	return ""
}

// checkPutURLs checks each new or changed putURL, and every putURL when
// the device's EdgeX name changed: it must be a core-command URL of this
// device's own EdgeX name and of the property's own resource. Anything else
// would let whoever may edit this Device command another device, in a
// namespace they may not edit, with the bridge's credentials. Which
// core-command (host and port) it names admission cannot know; the bridge
// checks that, and accepted putURLs get a warning saying so.
func checkPutURLs(old, dev *v1alpha1.Device) (field.ErrorList, []string) {
	var errs field.ErrorList
	var warnings []string
	renamed := old != nil && v1alpha1.EdgeXName(old) != v1alpha1.EdgeXName(dev)
	for _, name := range slices.Sorted(maps.Keys(dev.Spec.DeviceProperties)) {
		putURL := dev.Spec.DeviceProperties[name].PutURL
		if putURL == "" || (old != nil && !renamed && old.Spec.DeviceProperties[name].PutURL == putURL) {
			continue
		}
		path := devicePropertiesPath.Key(name).Child("putURL")
		if err := edgex.CheckCommandURL(putURL, v1alpha1.EdgeXName(dev), name, ""); err != nil {
			why := err.Error()
			var e *edgex.Error
			if errors.As(err, &e) {
				why = e.Message
			}
			errs = append(errs, field.Invalid(path, field.OmitValueType{},
				fmt.Sprintf("must be core-command's URL of this device's own resource, .../api/v3/device/name/%s/%s, or empty: %s",
					url.PathEscape(v1alpha1.EdgeXName(dev)), url.PathEscape(name), why)))
			continue
		}
		warnings = append(warnings, fmt.Sprintf(
			"%s is set: the bridge follows it only if it is node pool %q's core-command; leave it empty to use that one",
			path, dev.Spec.NodePool))
	}
	return errs, warnings
}
