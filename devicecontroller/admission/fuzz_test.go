package admission

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/requests"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// FuzzCheckValues feeds user-written desired values and resource names,
// against profiles of any shape, to the check. Whatever comes in, a
// refusal names the field and the resource, an empty value is never
// refused, and nothing is accepted that EdgeX would refuse.
func FuzzCheckValues(f *testing.F) {
	for _, r := range capturedResources(f) {
		p := r.Properties
		for _, value := range []string{"TRUE", "42", "66.66", "5000", "notabool", "12.5", "300", "-1", "1e39", "[1,2]", ""} {
			f.Add(r.Name, r.Name, p.ValueType, p.ReadWrite, p.Minimum, p.Maximum, value)
		}
	}
	f.Add("fan_speed", "counter", "Int32", "RW", "0", "1000", "3")
	f.Add("level", "level", "Int8", "", "", "", "1")
	f.Add("bits", "bits", "Uint8Array", "W", "0", "10", "1, 2,300")

	f.Fuzz(func(t *testing.T, name, resource, valueType, readWrite, minimum, maximum, value string) {
		props := v1alpha1.ResourceProperties{ValueType: valueType, ReadWrite: readWrite, Minimum: minimum, Maximum: maximum}
		profile := &v1alpha1.DeviceProfile{Spec: v1alpha1.DeviceProfileSpec{
			DeviceResources: []v1alpha1.DeviceResource{{Name: resource, Properties: props}},
		}}
		dev := &v1alpha1.Device{Spec: v1alpha1.DeviceSpec{DeviceProperties: map[string]v1alpha1.DesiredPropertyState{
			name: {Name: name, DesiredValue: value},
		}}}
		errs := checkValues(profile, dev, valuesToCheck(nil, dev))
		switch {
		case len(errs) > 1:
			t.Fatalf("one value, %d problems: %v", len(errs), errs)
		case len(errs) == 1 && value == "":
			t.Fatalf("an empty value asks for nothing, yet refused: %v", errs)
		case len(errs) == 1:
			want := devicePropertiesPath.Key(name).Child("desiredValue").String()
			if errs[0].Field != want || !strings.Contains(errs[0].Detail, strconv.Quote(name)) {
				t.Fatalf("refusal %q does not name field %s and resource %q", errs[0].Error(), want, name)
			}
		case value != "":
			if name != resource || !strings.Contains(readWrite, "W") || convert.CheckValue(props, value) != nil {
				t.Fatalf("accepted %q for resource %q (%+v) of a profile holding %q", value, name, props, resource)
			}
		}
	})
}

func capturedResources(f *testing.F) []v1alpha1.DeviceResource {
	data, err := captures.File("exchanges/profile-add.json")
	if err != nil {
		f.Fatal(err)
	}
	var reqs []requests.DeviceProfileRequest
	if err := json.Unmarshal(data, &reqs); err != nil || len(reqs) == 0 {
		f.Fatalf("profile-add.json: %v", err)
	}
	return convert.ProfileFromEdgeX(reqs[0].Profile).DeviceResources
}
