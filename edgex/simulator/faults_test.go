package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	commonDTO "github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/responses"
)

func TestFaults(t *testing.T) {
	sim := seededDemo(t, Options{})
	f := sim.Faults()
	list := sim.MetadataURL() + "/api/v3/device/all"
	byName := sim.MetadataURL() + "/api/v3/device/name/gpio-board-01"
	newDevice := `[{"apiVersion":"v3","device":{"name":"late","adminState":"UNLOCKED","operatingState":"UP","serviceName":"device-virtual","profileName":"Simulated-GPIO","protocols":{"other":{"Address":"x"}}}}]`

	t.Run("FailRequests fails the next n calls with an EdgeX body", func(t *testing.T) {
		defer f.Clear()
		f.FailRequests(http.StatusServiceUnavailable, 2)
		for i, url := range []string{byName, sim.CommandURL() + "/api/v3/device/all"} {
			got := call(t, "GET", url, "")
			e := decodeAs[commonDTO.BaseResponse](t, got)
			if got.status != 503 || e.StatusCode != 503 || e.ApiVersion != "v3" {
				t.Errorf("call %d: %d %s", i, got.status, got.body)
			}
		}
		if got := call(t, "GET", byName, ""); got.status != 200 {
			t.Errorf("third call: %d", got.status)
		}
	})
	t.Run("FailRequests with n < 0 fails until Clear", func(t *testing.T) {
		f.FailRequests(http.StatusInternalServerError, -1)
		for range 3 {
			if got := call(t, "GET", byName, ""); got.status != 500 {
				t.Errorf("status %d", got.status)
			}
		}
		f.Clear()
		if got := call(t, "GET", byName, ""); got.status != 200 {
			t.Errorf("after Clear: %d", got.status)
		}
	})
	t.Run("FailLists fails only list calls", func(t *testing.T) {
		defer f.Clear()
		f.FailLists(http.StatusBadGateway, 1)
		if got := call(t, "GET", byName, ""); got.status != 200 {
			t.Errorf("single get: %d", got.status)
		}
		if got := call(t, "GET", list, ""); got.status != 502 {
			t.Errorf("list: %d", got.status)
		}
		if got := call(t, "GET", list, ""); got.status != 200 {
			t.Errorf("second list: %d", got.status)
		}
	})
	t.Run("ErrorBodyOnSuccess answers 200 without the list", func(t *testing.T) {
		defer f.Clear()
		f.ErrorBodyOnSuccess(true)
		got := call(t, "GET", list, "")
		var body map[string]any
		mustUnmarshal(t, []byte(got.body), &body)
		if _, hasDevices := body["devices"]; got.status != 200 || hasDevices || body["statusCode"] != float64(500) {
			t.Errorf("%d %s", got.status, got.body)
		}
	})
	t.Run("TruncateResponses cuts bodies", func(t *testing.T) {
		defer f.Clear()
		f.TruncateResponses(true)
		got := call(t, "GET", list, "")
		if json.Valid([]byte(got.body)) || got.body == "" {
			t.Errorf("body is still valid JSON: %s", got.body)
		}
		if n, _ := strconv.Atoi(got.header.Get("Content-Length")); n != len(got.body) {
			t.Errorf("Content-Length %d for %d bytes", n, len(got.body))
		}
	})
	t.Run("SetLatency delays calls and honours cancellation", func(t *testing.T) {
		defer f.Clear()
		f.SetLatency(400 * time.Millisecond)
		start := time.Now()
		if got := call(t, "GET", byName, ""); got.status != 200 || time.Since(start) < 400*time.Millisecond {
			t.Errorf("answered %d after %s", got.status, time.Since(start))
		}
		impatient := &http.Client{Timeout: 50 * time.Millisecond}
		if _, err := impatient.Get(byName); err == nil {
			t.Error("an impatient client got an answer")
		}
	})
	t.Run("SetDeviceLatency slows one device's commands", func(t *testing.T) {
		defer f.Clear()
		f.SetDeviceLatency("camera-01", 300*time.Millisecond)
		start := time.Now()
		call(t, "GET", commandURL(sim, "gpio-board-01", "pin_17"), "")
		if d := time.Since(start); d >= 300*time.Millisecond {
			t.Errorf("another device took %s", d)
		}
		call(t, "GET", commandURL(sim, "camera-01", "streaming"), "")
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("the slow device took %s", d)
		}
	})
	t.Run("SetServiceDown", func(t *testing.T) {
		defer f.Clear()
		f.SetServiceDown(DemoServiceName, true)
		got := call(t, "POST", sim.MetadataURL()+"/api/v3/device", newDevice)
		if got.status != 503 || !strings.Contains(got.body, "<title>Timeout</title>") {
			t.Errorf("add with the service down: %d %s", got.status, got.body)
		}
		if _, ok := sim.Device("late"); ok {
			t.Error("the device was created although validation timed out")
		}
		patch := `[{"apiVersion":"v3","device":{"name":"gpio-board-01","labels":["x"]}}]`
		if got := call(t, "PATCH", sim.MetadataURL()+"/api/v3/device", patch); got.status != 503 {
			t.Errorf("patch with the service down: %d", got.status)
		}
		got = call(t, "GET", commandURL(sim, "gpio-board-01", "pin_17"), "")
		if e := decodeAs[commonDTO.BaseResponse](t, got); got.status != 503 || e.Message != "failed to send a http request" {
			t.Errorf("command with the service down: %d %s", got.status, got.body)
		}
		if _, err := sim.AddDevice(demoDevice("late", ProfileGPIO)); err == nil {
			t.Error("edge-side add succeeded with the service down")
		}
		f.SetServiceDown(DemoServiceName, false)
		if got := call(t, "POST", sim.MetadataURL()+"/api/v3/device", newDevice); got.status != 207 || !strings.Contains(got.body, "201") {
			t.Errorf("add after the service came back: %d %s", got.status, got.body)
		}
	})
}

func TestDropAndRestoreBus(t *testing.T) {
	sim, b := startWithBroker(t, Options{})
	events := subscribe(t, b.URL(), "edgex/system-events/#")
	f := sim.Faults()

	if err := sim.SeedDemo(context.Background()); err != nil {
		t.Fatal(err)
	}
	seeded := len(events.waitFor(t, 7, nil))

	f.DropBus()
	if err := sim.PublishEvent(context.Background(), "camera-01", "snapshot"); err == nil {
		t.Error("published while the bus is dropped")
	}
	if err := sim.DeleteDevice("camera-01"); err != nil {
		t.Fatal(err)
	}
	f.RestoreBus()
	if err := sim.DeleteDevice("gpio-board-01"); err != nil {
		t.Fatal(err)
	}
	got := events.waitFor(t, seeded+1, nil)
	if got[seeded].topic != "edgex/system-events/core-metadata/device/delete/device-virtual/Simulated-GPIO" {
		t.Errorf("first event after the outage is %s; the one during it must be lost", got[seeded].topic)
	}

	// The simulator reconnects by itself when the broker restarts, and
	// serves external commands again.
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	client := subscribe(t, b.URL(), "edgex/commandquery/response")
	eventually(t, "command query answered after a broker restart", func() error {
		id := "5b1e7a36-1a7e-4c52-9d0b-3a4c1f2e9d11"
		client.publish(t, "edgex/commandquery/request/all",
			encodeEnvelope(wireEnvelope{RequestID: id, CorrelationID: id, ContentType: "application/json"}))
		if len(client.messages(nil)) == 0 {
			return errors.New("no answer yet")
		}
		return nil
	})
	var answer responses.MultiDeviceCoreCommandsResponse
	mustUnmarshal(t, wireOf(t, client.messages(nil)[0].payload).Payload, &answer)
	if answer.StatusCode != 200 {
		t.Errorf("command query answered %+v", answer)
	}
}

// A stopped core-command refuses connections while core-metadata keeps
// answering, and serves again on the same URL once started.
func TestCommandDownRefusesConnectionsUntilStartedAgain(t *testing.T) {
	sim := seededDemo(t, Options{})
	f := sim.Faults()
	ping := func(base string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v3/ping", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := f.SetCommandDown(true); err != nil {
		t.Fatal(err)
	}
	// Refused, as a stopped service's port is; on a busy machine the port
	// may meanwhile be a client's ephemeral port, which resets instead.
	// Either fails at once, unlike a service that hangs.
	if err := ping(sim.CommandURL()); !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("core-command while down: %v, want connection refused", err)
	}
	if err := ping(sim.MetadataURL()); err != nil {
		t.Errorf("core-metadata while core-command is down: %v", err)
	}
	if err := f.SetCommandDown(false); err != nil {
		t.Fatal(err)
	}
	if err := ping(sim.CommandURL()); err != nil {
		t.Errorf("core-command after it started again: %v", err)
	}
	if err := f.SetCommandDown(true); err != nil {
		t.Fatal(err)
	}
	f.Clear()
	if err := ping(sim.CommandURL()); err != nil {
		t.Errorf("core-command after Clear: %v", err)
	}
}
