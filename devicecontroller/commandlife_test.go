package devicecontroller_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// A desired value set while core-command is down goes out as soon as
// core-command answers again, even though its retry backoff has grown
// long: here the backoff is minutes, so only a wake-up can deliver the
// value within the test's deadline. Over REST a stopped core-command
// refuses connections; over MQTT it just never answers, like a slow device,
// so the bridge has to ask core-command itself to tell the two apart.
func TestCommandsGoOutWhenCoreCommandAnswersAgain(t *testing.T) {
	for _, transport := range []string{"rest", "mqtt"} {
		t.Run(transport, func(t *testing.T) {
			p := startPool(t, poolConfig{seedDemo: true, transport: transport, options: func(o *devicecontroller.Options) {
				o.CommandRetryBase, o.CommandRetryMax = 5*time.Minute, 10*time.Minute
				o.CommandTimeout = time.Second
			}})
			w := recordWrites(t, p)
			commandDevice(p, "valve", simulator.ProfileGPIO)
			if err := p.sim.Faults().SetCommandDown(true); err != nil {
				t.Fatal(err)
			}
			setDesired(p, "valve", "pin_17", "true")
			waitFor(p, &v1alpha1.Device{}, "valve", func(d *v1alpha1.Device) error {
				last := d.Status.DeviceProperties["pin_17"].LastCommand
				if last == nil || last.Result != v1alpha1.CommandFailed || last.Reason != v1alpha1.ReasonEdgeXUnreachable {
					return fmt.Errorf("last command %+v, want failed as %s", last, v1alpha1.ReasonEdgeXUnreachable)
				}
				return nil
			})
			if err := p.sim.Faults().SetCommandDown(false); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			testenv.Eventually(t, 15*time.Second, func(context.Context) error {
				if n := len(w.to("valve", "pin_17")); n != 1 {
					return fmt.Errorf("%d writes reached the device since core-command came back", n)
				}
				return nil
			})
			t.Logf("the command reached the device %s after core-command answered again", time.Since(back).Round(10*time.Millisecond))
			waitProperty(p, "valve", "pin_17", "Bool", "true")
		})
	}
}

// A bridge that stops (shutdown, or lost leadership) sends nothing more:
// the command waiting for a free slot is never sent, and the one under
// way is abandoned (stop returns without waiting for the slow device).
func TestNoCommandGoesOutAfterTheBridgeStops(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.MaxCommandsInFlight = 1
	}})
	w := recordWrites(t, p)
	commandDevice(p, "slow", simulator.ProfileGPIO)
	commandDevice(p, "queued", simulator.ProfileGPIO)
	const latency = 2 * time.Second
	p.sim.Faults().SetDeviceLatency("slow", latency)

	const put = "core-command PUT /api/v3/device/name/{name}/{command}"
	sent := p.sim.RequestCounts()[put]
	setDesired(p, "slow", "pin_17", "true")
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if p.sim.RequestCounts()[put] == sent {
			return fmt.Errorf("the slow device's command has not reached core-command yet")
		}
		return nil
	})
	// The only slot is taken: the queued device's command waits for it.
	setDesired(p, "queued", "pin_17", "true")
	waitFor(p, &v1alpha1.Device{}, "queued", func(d *v1alpha1.Device) error {
		return reason(d.Status.Conditions, v1alpha1.ConditionPropertiesSynced, v1alpha1.ReasonCommandPending)
	})

	p.stop()
	sentBeforeStop := p.sim.RequestCounts()[put]
	// Long enough for the slow command to have ended and the queued one to
	// have followed, had it outlived the bridge. The slow device may still
	// apply what reached it before the stop: its device service does not
	// watch the caller.
	assertStays(t, 2*latency, func() error {
		if n := p.sim.RequestCounts()[put] - sentBeforeStop; n != 0 {
			return fmt.Errorf("%d commands reached core-command after the bridge stopped", n)
		}
		if got := w.to("queued", "pin_17"); len(got) != 0 {
			return fmt.Errorf("the queued command reached its device after the bridge stopped: %+v", got)
		}
		return nil
	})
}

// Each way a command can fail shows in status, in PropertiesSynced and in
// a Warning Event with a reason a person can act on.
func TestCommandOutcomesNameTheirReason(t *testing.T) {
	p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
		o.CommandTimeout = 500 * time.Millisecond
		o.CommandRetryBase, o.CommandRetryMax = time.Minute, time.Minute
	}})
	cases := []struct {
		name   string
		fault  func(device string)
		reason string
	}{
		{"a device slower than --command-timeout", func(d string) { p.sim.Faults().SetDeviceLatency(d, 5*time.Second) }, v1alpha1.ReasonTimeout},
		{"a device service that does not answer", func(string) { p.sim.Faults().SetServiceDown(simulator.DemoServiceName, true) }, v1alpha1.ReasonServiceUnavailable},
		{"a command EdgeX fails with an error of its own", func(string) {
			p.sim.Faults().FailRequests(http.StatusInternalServerError, -1)
		}, v1alpha1.ReasonRefused},
		{"a LOCKED device", func(d string) {
			update(p, &v1alpha1.Device{}, d, func(d *v1alpha1.Device) { d.Spec.AdminState = v1alpha1.Locked })
		}, v1alpha1.ReasonDeviceLocked},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer p.sim.Faults().Clear()
			name := fmt.Sprintf("outcome-%d", i)
			commandDevice(p, name, simulator.ProfileGPIO)
			tc.fault(name)
			setDesired(p, name, "pin_17", "true")
			waitFor(p, &v1alpha1.Device{}, name, func(d *v1alpha1.Device) error {
				last := d.Status.DeviceProperties["pin_17"].LastCommand
				if last == nil || last.Result == v1alpha1.CommandSucceeded || last.Reason != tc.reason {
					return fmt.Errorf("last command %+v, want reason %s", last, tc.reason)
				}
				return reason(d.Status.Conditions, v1alpha1.ConditionPropertiesSynced, tc.reason)
			})
			waitForEvent(t, p, tc.reason)
		})
	}
}
