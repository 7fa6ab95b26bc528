package devicecontroller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// writes records what the simulated devices were told to do.
type writes struct {
	mu  sync.Mutex
	all []simulator.Write
}

func recordWrites(t *testing.T, p *pool) *writes {
	w := &writes{}
	cancel := p.sim.OnWrite(func(wr simulator.Write) {
		w.mu.Lock()
		w.all = append(w.all, wr)
		w.mu.Unlock()
	})
	t.Cleanup(cancel)
	return w
}

func (w *writes) to(device, resource string) []simulator.Write {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []simulator.Write
	for _, wr := range w.all {
		if wr.Device == device && wr.Resource == resource {
			out = append(out, wr)
		}
	}
	return out
}

// commandDevice creates a managed device on one of the demo profiles.
func commandDevice(p *pool, name, profile string) *v1alpha1.Device {
	dev := managedDevice(p, name, simulator.DemoServiceName, profile)
	p.create(dev)
	waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error { return synced(d.Status.Synced, d.Status.Conditions) })
	return dev
}

// setDesired is `kubectl edit device`: one desired property value.
func setDesired(p *pool, device, resource, value string) {
	setDesiredInto(p, &v1alpha1.Device{}, device, resource, value)
}

// waitProperty waits until status shows the device reported want for the
// resource and every desired value is synced.
func waitProperty(p *pool, device, resource, valueType, want string) {
	p.t.Helper()
	waitFor(p, &v1alpha1.Device{}, device, func(d *v1alpha1.Device) error {
		got, ok := d.Status.DeviceProperties[resource]
		if !ok || !convert.EqualValues(valueType, want, got.ActualValue) {
			return fmt.Errorf("%s is %+v, want %s", resource, got, want)
		}
		if got.LastCommand != nil && got.LastCommand.Result != v1alpha1.CommandSucceeded {
			return fmt.Errorf("last command %+v", got.LastCommand)
		}
		return reason(d.Status.Conditions, v1alpha1.ConditionPropertiesSynced, v1alpha1.ReasonInSync)
	})
}

// kubectl edit device -> EdgeX command -> the device, for a GPIO pin, a
// sensor setting, a camera switch and a camera's PTZ position (an Object
// resource), over REST and over MQTT.
func TestCommandsReachTheDevice(t *testing.T) {
	cases := []struct {
		profile, resource, valueType, value, deviceHolds string
	}{
		{simulator.ProfileGPIO, "pin_17", "Bool", "true", "true"},
		{simulator.ProfileSensor, "sample_rate", "Int32", "250", "250"},
		{simulator.ProfileCamera, "streaming", "Bool", "TRUE", "true"},
		// An Object value is JSON text, compared as JSON: the device's own
		// key order and spacing are the same value, so one command only.
		{simulator.ProfileCamera, "ptz", "Object", `{ "tilt": -5, "pan": 10.5, "zoom": 2 }`, `{"pan":10.5,"tilt":-5,"zoom":2}`},
	}
	for _, transport := range []string{"rest", "mqtt"} {
		t.Run(transport, func(t *testing.T) {
			p := startPool(t, poolConfig{seedDemo: true, transport: transport})
			w := recordWrites(t, p)
			for i, tc := range cases {
				name := fmt.Sprintf("cmd-%d", i)
				commandDevice(p, name, tc.profile)
				setDesired(p, name, tc.resource, tc.value)
				waitProperty(p, name, tc.resource, tc.valueType, tc.value)
				if got, _ := p.sim.Value(name, tc.resource); !convert.EqualValues(tc.valueType, tc.deviceHolds, got) {
					t.Errorf("%s: device holds %q, want %q", tc.resource, got, tc.deviceHolds)
				}
				writes := w.to(name, tc.resource)
				if len(writes) != 1 || writes[0].Via != transport {
					t.Errorf("%s: %d writes %+v, want one via %s", tc.resource, len(writes), writes, transport)
				}
				d := &v1alpha1.Device{}
				_ = p.get(d, name)
				st := d.Status.DeviceProperties[tc.resource]
				if st.GetURL == "" || st.PutURL == "" || st.LastCommand == nil || st.LastCommand.Time.IsZero() {
					t.Errorf("%s: status lacks URLs or the confirmation time: %+v", tc.resource, st)
				}
			}
		})
	}
}

// A command's life, pending to succeeded, is one status write when the
// device answers at once, and the device's report of the value another:
// every Device version is held, decoded, in the API server's watch cache,
// and with many pools on one API server the versions a command costs are
// what a person's next patch waits behind (make bench row 9e).
func TestCommandCostsTwoStatusWrites(t *testing.T) {
	for _, transport := range []string{"rest", "mqtt"} {
		t.Run(transport, func(t *testing.T) {
			p := startPool(t, poolConfig{seedDemo: true, transport: transport})
			commandDevice(p, "cmd-writes", simulator.ProfileSensor)
			patched := &v1alpha1.Device{}
			setDesiredInto(p, patched, "cmd-writes", "sample_rate", "250")
			watcher, err := client.NewWithWatch(kube.Config, client.Options{Scheme: testenv.Scheme()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
			defer cancel()
			w, err := watcher.Watch(ctx, &v1alpha1.DeviceList{}, client.InNamespace(p.ns),
				&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: patched.ResourceVersion}})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			var versions []string
			for {
				var ev watch.Event
				var open bool
				select {
				case ev, open = <-w.ResultChan():
					if !open {
						t.Fatalf("the watch ended before the command settled; versions after the patch: %v", versions)
					}
				case <-ctx.Done():
					t.Fatalf("the command never settled; versions after the patch: %v", versions)
				}
				d, ok := ev.Object.(*v1alpha1.Device)
				if !ok || d.Name != "cmd-writes" {
					continue
				}
				got := d.Status.DeviceProperties["sample_rate"]
				synced := reason(d.Status.Conditions, v1alpha1.ConditionPropertiesSynced, v1alpha1.ReasonInSync)
				versions = append(versions, fmt.Sprintf("%s (actualValue %q, lastCommand %+v, %v)", d.ResourceVersion, got.ActualValue, got.LastCommand, synced))
				if got.ActualValue == "250" && got.LastCommand != nil && got.LastCommand.Result == v1alpha1.CommandSucceeded && synced == nil {
					break
				}
			}
			if len(versions) > 2 {
				t.Errorf("the command took %d status writes to settle, want at most 2 (its outcome, the device's report):\n%s",
					len(versions), strings.Join(versions, "\n"))
			}
		})
	}
}

// setDesiredInto is setDesired, leaving the written Device in obj.
func setDesiredInto(p *pool, obj *v1alpha1.Device, device, resource, value string) {
	update(p, obj, device, func(d *v1alpha1.Device) {
		if d.Spec.DeviceProperties == nil {
			d.Spec.DeviceProperties = map[string]v1alpha1.DesiredPropertyState{}
		}
		d.Spec.DeviceProperties[resource] = v1alpha1.DesiredPropertyState{Name: resource, DesiredValue: value}
	})
}

// Desired and reported values are compared by value type: a float the
// device reports in exponent form equals the decimal the user wrote, so no
// second command is sent; but a device that drifts is set again.
func TestCommandsAreLevelTriggered(t *testing.T) {
	p := startPool(t, poolConfig{})
	w := recordWrites(t, p)
	svc, prof, _ := managedSet(p, "lvl")
	dev := managedDevice(p, "lvl-2", svc.Name, prof.Name)
	p.create(dev)
	setDesired(p, dev.Name, "level", "66.66")
	waitProperty(p, dev.Name, "level", "Float32", "66.66")
	if got, _ := p.sim.Value(dev.Name, "level"); got != "6.666000e+01" {
		t.Fatalf("device holds %q", got)
	}
	// The device reports the value back in its own form: nothing to do.
	if err := p.sim.PublishEvent(context.Background(), dev.Name, "level"); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
		if d.Status.DeviceProperties["level"].LastReported == 0 {
			return fmt.Errorf("reading not in status yet")
		}
		return nil
	})
	assertStays(t, time.Second, func() error {
		if n := len(w.to(dev.Name, "level")); n != 1 {
			return fmt.Errorf("%d writes for an equal value, want 1", n)
		}
		return nil
	})

	// The device drifts: the bridge sets it again.
	if err := p.sim.SetValue(dev.Name, "level", "12.5"); err != nil {
		t.Fatal(err)
	}
	if err := p.sim.PublishEvent(context.Background(), dev.Name, "level"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if got, _ := p.sim.Value(dev.Name, "level"); got != "6.666000e+01" || len(w.to(dev.Name, "level")) != 2 {
			return fmt.Errorf("device holds %q after %d writes", got, len(w.to(dev.Name, "level")))
		}
		return nil
	})
}

// A failing command is retried with backoff until it succeeds, and status
// shows the failure meanwhile.
func TestFailedCommandsAreRetried(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	commandDevice(p, "retry", simulator.ProfileGPIO)
	p.sim.Faults().SetServiceDown(simulator.DemoServiceName, true)
	setDesired(p, "retry", "pin_18", "true")
	waitFor(p, &v1alpha1.Device{}, "retry", func(d *v1alpha1.Device) error {
		st := d.Status.DeviceProperties["pin_18"]
		if st.LastCommand == nil || st.LastCommand.Result != v1alpha1.CommandFailed || st.LastCommand.Reason != v1alpha1.ReasonServiceUnavailable {
			return fmt.Errorf("last command %+v", st.LastCommand)
		}
		return reason(d.Status.Conditions, v1alpha1.ConditionPropertiesSynced, v1alpha1.ReasonServiceUnavailable)
	})
	p.sim.Faults().SetServiceDown(simulator.DemoServiceName, false)
	waitProperty(p, "retry", "pin_18", "Bool", "true")
}

// A LOCKED device gets no commands and says so; unlocking it resumes them.
func TestLockedDeviceGetsNoCommands(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	w := recordWrites(t, p)
	commandDevice(p, "locked", simulator.ProfileGPIO)
	update(p, &v1alpha1.Device{}, "locked", func(d *v1alpha1.Device) {
		d.Spec.AdminState = v1alpha1.Locked
		d.Spec.DeviceProperties = map[string]v1alpha1.DesiredPropertyState{"pin_17": {Name: "pin_17", DesiredValue: "true"}}
	})
	waitFor(p, &v1alpha1.Device{}, "locked", func(d *v1alpha1.Device) error {
		return reason(d.Status.Conditions, v1alpha1.ConditionPropertiesSynced, v1alpha1.ReasonDeviceLocked)
	})
	if n := len(w.to("locked", "pin_17")); n != 0 {
		t.Fatalf("%d commands sent to a locked device", n)
	}
	update(p, &v1alpha1.Device{}, "locked", func(d *v1alpha1.Device) { d.Spec.AdminState = v1alpha1.UnLocked })
	waitProperty(p, "locked", "pin_17", "Bool", "true")
}

// A value the profile forbids is never sent: the bridge says why.
func TestForbiddenValuesAreNotSent(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true})
	w := recordWrites(t, p)
	commandDevice(p, "forbidden", simulator.ProfileSensor)
	cases := []struct{ resource, value, reason string }{
		{"temperature", "30", v1alpha1.ReasonReadOnly},
		{"sample_rate", "5000", v1alpha1.ReasonValueOutOfRange},
		{"sample_rate", "fast", v1alpha1.ReasonInvalidValue},
		{"no_such_resource", "1", v1alpha1.ReasonUnknownResource},
	}
	for _, tc := range cases {
		setDesired(p, "forbidden", tc.resource, tc.value)
		waitFor(p, &v1alpha1.Device{}, "forbidden", func(d *v1alpha1.Device) error {
			st := d.Status.DeviceProperties[tc.resource]
			if st.LastCommand == nil || st.LastCommand.Result != v1alpha1.CommandBlocked || st.LastCommand.Reason != tc.reason || st.LastCommand.Value != tc.value {
				return fmt.Errorf("%s=%s: last command %+v, want blocked for %s", tc.resource, tc.value, st.LastCommand, tc.reason)
			}
			return nil
		})
		update(p, &v1alpha1.Device{}, "forbidden", func(d *v1alpha1.Device) { delete(d.Spec.DeviceProperties, tc.resource) })
	}
	if len(w.all) != 0 {
		t.Fatalf("forbidden values were sent: %+v", w.all)
	}
}

// A slow device does not delay commands to other devices.
func TestSlowDeviceDoesNotDelayOthers(t *testing.T) {
	for _, transport := range []string{"rest", "mqtt"} {
		t.Run(transport, func(t *testing.T) {
			p := startPool(t, poolConfig{seedDemo: true, transport: transport})
			w := recordWrites(t, p)
			commandDevice(p, "slow", simulator.ProfileGPIO)
			commandDevice(p, "fast", simulator.ProfileGPIO)
			p.sim.Faults().SetDeviceLatency("slow", 2*time.Second)
			setDesired(p, "slow", "pin_17", "true")
			setDesired(p, "fast", "pin_17", "true")
			waitProperty(p, "fast", "pin_17", "Bool", "true")
			if n := len(w.to("slow", "pin_17")); n != 0 {
				t.Fatalf("the slow device answered first (%d writes): the test proves nothing", n)
			}
			waitProperty(p, "slow", "pin_17", "Bool", "true")
		})
	}
}

// A bridge stops (a rolling update) while a slow device is taking a
// command; the device applies it after the bridge is gone, so status never
// hears of it. The user then sets the value status still shows as the
// device's; the next bridge must not take status's word for it: the device
// ends up holding what the user wants. Status shows that value either
// because an earlier command set it, or because the device reported it
// with no command at all.
//
// Found by this test (fixed): the next bridge compared the desired value
// with status (actual true, last command true Succeeded), called the pin in
// sync and sent nothing; the device kept the value of the unrecorded
// command and PropertiesSynced said InSync. The same loss made
// TestBinaryKilledMidImportConverges fail now and then, also when status
// held a value the device had reported by itself (no last command): a
// report from before the next bridge started proves nothing either.
func TestCommandInFlightWhenTheBridgeStopsIsNotForgotten(t *testing.T) {
	cases := []struct {
		name string
		// holdTrue makes status show pin_17 true before the slow command.
		holdTrue func(p *pool, device string)
		writes   []string
	}{
		{"true was commanded", func(p *pool, device string) {
			setDesired(p, device, "pin_17", "true")
		}, []string{"true", "false", "true"}},
		{"true was reported by the device", func(p *pool, device string) {
			ctx, cancel := context.WithTimeout(context.Background(), testenv.DefaultTimeout)
			defer cancel()
			if err := p.sim.PublishReadings(ctx, device, map[string]string{"pin_17": "true"}); err != nil {
				p.t.Fatal(err)
			}
			waitFor(p, &v1alpha1.Device{}, device, func(d *v1alpha1.Device) error {
				if got := d.Status.DeviceProperties["pin_17"]; got.ActualValue != "true" {
					return fmt.Errorf("pin_17 is %+v, want true", got)
				}
				return nil
			})
			// Already so: the desired value needs no command.
			setDesired(p, device, "pin_17", "true")
		}, []string{"false", "true"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startPool(t, poolConfig{seedDemo: true})
			w := recordWrites(t, p)
			dev := commandDevice(p, "slow-switch", simulator.ProfileGPIO)
			tc.holdTrue(p, dev.Name)
			waitProperty(p, dev.Name, "pin_17", "Bool", "true")

			const put = "core-command PUT /api/v3/device/name/{name}/{command}"
			sent := p.sim.RequestCounts()[put]
			p.sim.Faults().SetDeviceLatency(dev.Name, 2*time.Second)
			setDesired(p, dev.Name, "pin_17", "false")
			testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
				if p.sim.RequestCounts()[put] == sent {
					return fmt.Errorf("the command for false has not reached core-command yet")
				}
				return nil
			})
			p.stop()
			testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
				if v, _ := p.sim.Value(dev.Name, "pin_17"); v != "false" {
					return fmt.Errorf("pin_17 is %q at the device; the slow command has not landed yet", v)
				}
				return nil
			})
			p.sim.Faults().SetDeviceLatency(dev.Name, 0)
			setDesired(p, dev.Name, "pin_17", "true")

			p.startBridge()
			testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
				if v, _ := p.sim.Value(dev.Name, "pin_17"); v != "true" {
					d := &v1alpha1.Device{}
					_ = p.get(d, dev.Name)
					return fmt.Errorf("pin_17 is %q at the device, desired true; %s", v, propertyStatus(d, "pin_17"))
				}
				return nil
			})
			var values []string
			for _, wr := range w.to(dev.Name, "pin_17") {
				values = append(values, wr.Value)
			}
			if !slices.Equal(values, tc.writes) {
				t.Errorf("writes %v reached the device, want %v", values, tc.writes)
			}
		})
	}
}
