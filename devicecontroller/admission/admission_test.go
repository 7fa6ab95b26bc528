package admission_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

func TestCreateChecksDesiredValuesAgainstTheProfile(t *testing.T) {
	needKube(t)
	ns, otherNS := kube.Namespace(t), kube.Namespace(t)
	mustCreate(t, capturedProfile(t, ns, poolA, profileName))
	// Same EdgeX name, but another pool's and another namespace's: using
	// either would refuse every value below.
	mustCreate(t, readOnly(capturedProfile(t, ns, poolB, profileName)))
	mustCreate(t, readOnly(capturedProfile(t, otherNS, poolA, profileName)))
	// {device} stands for the device's own name.
	const commandURL = "http://edgex-core-command:59882/api/v3/device/name/{device}/gpio_out_1"

	cases := []struct {
		name    string
		ns      string // default ns
		pool    string // default pool-a
		profile string // default the captured profile
		values  map[string]string
		putURL  string
		// refused names the fields of the refusal; nil means accepted.
		refused []string
		details []string
		warning string
	}{
		{name: "valid Bool, Int and Float values are accepted",
			values: map[string]string{"gpio_out_1": "TRUE", "counter": "42", "setpoint": "66.66"}},
		{name: "an empty desired value asks for nothing, even of a read-only resource",
			values: map[string]string{"temperature": ""}},
		{name: "a read-only resource is refused by name",
			values:  map[string]string{"temperature": "21.5"},
			refused: []string{"spec.deviceProperties[temperature].desiredValue"},
			details: []string{`spec.deviceProperties[temperature].desiredValue: Invalid value: resource "temperature" is read-only (R)`}},
		{name: "a resource the profile lacks is refused",
			values:  map[string]string{"fan_speed": "3"},
			refused: []string{"spec.deviceProperties[fan_speed].desiredValue"},
			details: []string{`device profile "Test-GPIO-Sensor-Camera" has no resource "fan_speed"`}},
		{name: "a value above the resource's maximum is refused",
			values:  map[string]string{"counter": "5000"},
			refused: []string{"spec.deviceProperties[counter].desiredValue"},
			details: []string{`resource "counter" (Int32): value "5000" is above the maximum 1000`}},
		{name: "text that is no Bool is refused",
			values:  map[string]string{"gpio_out_1": "notabool"},
			refused: []string{"spec.deviceProperties[gpio_out_1].desiredValue"},
			details: []string{`value "notabool" is not a Bool`}},
		{name: "a fraction for an Int32 is refused",
			values:  map[string]string{"counter": "12.5"},
			refused: []string{"spec.deviceProperties[counter].desiredValue"},
			details: []string{`value "12.5" is not an integer (Int32)`}},
		{name: "a number too big for an Int8 is refused",
			values:  map[string]string{"level": "300"},
			refused: []string{"spec.deviceProperties[level].desiredValue"},
			details: []string{`value "300" is out of range for Int8 (-128 to 127)`}},
		{name: "every problem is named in one answer, and only the problems",
			values: map[string]string{"gpio_out_1": "true", "temperature": "21.5", "fan_speed": "3", "counter": "5000"},
			refused: []string{
				"spec.deviceProperties[counter].desiredValue",
				"spec.deviceProperties[fan_speed].desiredValue",
				"spec.deviceProperties[temperature].desiredValue",
			},
			details: []string{"read-only (R)", `no resource "fan_speed"`, "above the maximum 1000"}},
		{name: "a missing profile lets values through with a warning",
			profile: "No-Such-Profile",
			values:  map[string]string{"temperature": "21.5"},
			warning: `desired values not checked: device profile "No-Such-Profile" of node pool "pool-a" not found`},
		{name: "another pool's profile of the same name is not used",
			pool:    "pool-c",
			values:  map[string]string{"counter": "5000"},
			warning: `device profile "Test-GPIO-Sensor-Camera" of node pool "pool-c" not found`},
		{name: "another namespace's profile of the same name is not used",
			ns:      kube.Namespace(t),
			values:  map[string]string{"counter": "5000"},
			warning: `device profile "Test-GPIO-Sensor-Camera" of node pool "pool-a" not found`},
		{name: "a putURL of the device's own resource is accepted with a warning",
			values:  map[string]string{"gpio_out_1": "false"},
			putURL:  commandURL,
			warning: `spec.deviceProperties[gpio_out_1].putURL is set: the bridge follows it only if it is node pool "pool-a"'s core-command`},
		{name: "a putURL naming another device is refused",
			values:  map[string]string{"gpio_out_1": "false"},
			putURL:  "http://edgex-core-command:59882/api/v3/device/name/someone-elses-device/gpio_out_1",
			refused: []string{"spec.deviceProperties[gpio_out_1].putURL"},
			details: []string{`it names device "someone-elses-device", not this device's EdgeX name "device-`}},
		{name: "a putURL naming another resource is refused",
			values:  map[string]string{"gpio_out_1": "false"},
			putURL:  "http://edgex-core-command:59882/api/v3/device/name/{device}/counter",
			refused: []string{"spec.deviceProperties[gpio_out_1].putURL"},
			details: []string{`it names command "counter", not the property's resource "gpio_out_1"`}},
		{name: "a putURL with a query is refused, even without a desired value",
			values:  map[string]string{"gpio_out_1": ""},
			putURL:  commandURL + "?ds-pushevent=true",
			refused: []string{"spec.deviceProperties[gpio_out_1].putURL"},
			details: []string{"a query"}},
		{name: "a bad putURL and a bad value are named in one answer",
			values:  map[string]string{"gpio_out_1": "notabool"},
			putURL:  "ftp://x/y",
			refused: []string{"spec.deviceProperties[gpio_out_1].putURL", "spec.deviceProperties[gpio_out_1].desiredValue"},
			details: []string{"scheme must be http or https", `value "notabool" is not a Bool`}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dev := device(or(tc.ns, ns), fmt.Sprintf("device-%d", i), or(tc.pool, poolA), or(tc.profile, profileName), tc.values)
			for name, p := range dev.Spec.DeviceProperties {
				p.PutURL = strings.ReplaceAll(tc.putURL, "{device}", dev.Name)
				dev.Spec.DeviceProperties[name] = p
			}
			warnings, err := write(t, dev, false)
			if tc.refused == nil {
				expectAccepted(t, warnings, err, tc.warning)
				return
			}
			expectRefused(t, err, tc.refused, tc.details...)
			if err := cli.Get(context.Background(), client.ObjectKeyFromObject(dev), dev); !apierrors.IsNotFound(err) {
				t.Errorf("a refused device was stored (get: %v)", err)
			}
		})
	}
}

func TestUpdateChecksOnlyWhatItChanges(t *testing.T) {
	needKube(t)
	ns := kube.Namespace(t)
	profile := capturedProfile(t, ns, poolA, profileName)
	mustCreate(t, profile)
	strict := readOnly(capturedProfile(t, ns, poolA, "Strict"))
	mustCreate(t, strict)

	// Stored before its profile existed, so never checked.
	unchecked := device(ns, "unchecked", poolA, "Late-Profile", map[string]string{"temperature": "21.5", "counter": "7"})
	warnings, err := write(t, unchecked, false)
	expectAccepted(t, warnings, err, "desired values not checked")
	mustCreate(t, capturedProfile(t, ns, poolA, "Late-Profile"))

	lamp := device(ns, "lamp", poolA, profileName, map[string]string{"counter": "500"})
	lamp.Spec.DeviceProperties["gpio_out_1"] = v1alpha1.DesiredPropertyState{
		Name: "gpio_out_1", DesiredValue: "true", PutURL: "http://edgex-core-command:59882/api/v3/device/name/lamp/gpio_out_1",
	}
	warnings, err = write(t, lamp, false)
	expectAccepted(t, warnings, err, "putURL is set")

	// The profile tightens after the lamp's counter was accepted.
	profile.Spec.DeviceResources[1].Properties.Maximum = "100"
	if _, err := write(t, profile, true); err != nil {
		t.Fatal(err)
	}
	waitUntilRefused(t, device(ns, "probe", poolA, profileName, map[string]string{"counter": "500"}))

	// The cases run in order, on the same two devices.
	cases := []struct {
		name    string
		device  string
		edit    func(*v1alpha1.Device)
		refused []string
		details []string
		warning string
	}{
		{name: "an unrelated edit keeps a value the profile no longer allows",
			device: "lamp",
			edit:   func(d *v1alpha1.Device) { d.Spec.Description = "hall lamp" }},
		{name: "an unrelated edit keeps a value that was never checked",
			device: "unchecked",
			edit:   func(d *v1alpha1.Device) { d.Spec.Labels = []string{"hall"} }},
		{name: "a changed value is checked against today's profile",
			device:  "lamp",
			edit:    setValue("counter", "600"),
			refused: []string{"spec.deviceProperties[counter].desiredValue"},
			details: []string{"above the maximum 100"}},
		{name: "a new value is checked, the old ones are not",
			device:  "unchecked",
			edit:    setValue("fan_speed", "3"),
			refused: []string{"spec.deviceProperties[fan_speed].desiredValue"}},
		{name: "a changed valid value is accepted",
			device: "unchecked",
			edit:   setValue("counter", "8")},
		{name: "switching profile checks every value again",
			device:  "lamp",
			edit:    func(d *v1alpha1.Device) { d.Spec.Profile = "Strict" },
			refused: []string{"spec.deviceProperties[counter].desiredValue", "spec.deviceProperties[gpio_out_1].desiredValue"},
			details: []string{`resource "counter" is read-only (R)`, `resource "gpio_out_1" is read-only (R)`}},
		{name: "a changed putURL is warned about again",
			device:  "lamp",
			edit:    setPutURL("gpio_out_1", "http://other-pool-core-command:59882/api/v3/device/name/lamp/gpio_out_1"),
			warning: "spec.deviceProperties[gpio_out_1].putURL is set"},
		{name: "a putURL changed to another device's is refused",
			device:  "lamp",
			edit:    setPutURL("gpio_out_1", "http://edgex-core-command:59882/api/v3/device/name/unchecked/gpio_out_1"),
			refused: []string{"spec.deviceProperties[gpio_out_1].putURL"},
			details: []string{`it names device "unchecked", not this device's EdgeX name "lamp"`}},
		{name: "renaming the device in EdgeX checks its putURLs again",
			device: "lamp",
			edit: func(d *v1alpha1.Device) {
				d.Annotations = map[string]string{v1alpha1.EdgeXNameAnnotation: "hall-lamp"}
			},
			refused: []string{"spec.deviceProperties[gpio_out_1].putURL"},
			details: []string{`not this device's EdgeX name "hall-lamp"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := client.ObjectKey{Namespace: ns, Name: tc.device}
			before := getDevice(t, key)
			warnings, err := updateDevice(t, key, tc.edit)
			if tc.refused == nil {
				expectAccepted(t, warnings, err, tc.warning)
				return
			}
			expectRefused(t, err, tc.refused, tc.details...)
			if after := getDevice(t, key); after.ResourceVersion != before.ResourceVersion {
				t.Errorf("a refused update was stored")
			}
		})
	}
}

// waitUntilRefused waits until the webhook refuses dev (dry run), that is
// until its cache holds the profile change the test just made.
func waitUntilRefused(t *testing.T, dev *v1alpha1.Device) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, func(ctx context.Context) error {
		err := cli.Create(ctx, dev.DeepCopy(), client.DryRunAll)
		if !apierrors.IsInvalid(err) {
			return fmt.Errorf("dry-run create of %s: %v, want refused", dev.Name, err)
		}
		return nil
	})
}

func setValue(name, value string) func(*v1alpha1.Device) {
	return func(d *v1alpha1.Device) {
		p := d.Spec.DeviceProperties[name]
		p.Name, p.DesiredValue = name, value
		d.Spec.DeviceProperties[name] = p
	}
}

func setPutURL(name, url string) func(*v1alpha1.Device) {
	return func(d *v1alpha1.Device) {
		p := d.Spec.DeviceProperties[name]
		p.PutURL = url
		d.Spec.DeviceProperties[name] = p
	}
}

func or(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}
