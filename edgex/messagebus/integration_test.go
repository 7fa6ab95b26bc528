package messagebus_test

// These tests run the message-bus client against the EdgeX simulator over a
// real mosquitto: the system events and device events it receives, and the
// commands it sends through core-command's external MQTT API, are the
// simulator's EdgeX 3.1 traffic.

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"

	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv/broker"
)

// busWait bounds every wait on the bus; a passing test is far below it.
const busWait = 20 * time.Second

// Demo device names, as simulator.DemoDevices registers them.
const (
	gpioBoard = "gpio-board-01"
	envSensor = "env-sensor-01"
	camera    = "camera-01"
)

var topics = messagebus.Topics{Prefix: messagebus.DefaultTopicPrefix}

func ptr[T any](v T) *T { return &v }

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), busWait)
	t.Cleanup(cancel)
	return ctx
}

func mustNot(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// stack is a mosquitto, a demo simulator on it, and the REST clients.
type stack struct {
	broker *broker.Broker
	sim    *simulator.Simulator
	md     *edgex.Metadata
	cmd    *edgex.Command
}

func startStack(t *testing.T) *stack {
	t.Helper()
	b := broker.Start(t, broker.Options{})
	sim := simulator.New(simulator.Options{BrokerURL: b.URL()})
	mustNot(t, sim.Start(testContext(t)))
	t.Cleanup(func() { _ = sim.Close() })
	mustNot(t, sim.SeedDemo(testContext(t)))
	opts := edgex.Options{MetadataURL: sim.MetadataURL(), CommandURL: sim.CommandURL(), Timeout: 5 * time.Second, Retries: -1}
	md, err := edgex.NewMetadata(opts)
	mustNot(t, err)
	cmd, err := edgex.NewCommand(opts)
	mustNot(t, err)
	return &stack{broker: b, sim: sim, md: md, cmd: cmd}
}

// newBus builds a message-bus client for the stack's broker, closed at the
// test's end; it is started by startBus, once its subscriptions are made.
func (s *stack) newBus(t *testing.T, onConnectionChange func(bool)) *messagebus.Client {
	t.Helper()
	c, err := messagebus.New(messagebus.Options{
		BrokerURL:            s.broker.URL(),
		ConnectTimeout:       5 * time.Second,
		MaxReconnectInterval: 500 * time.Millisecond,
		CommandTimeout:       5 * time.Second,
		OnConnectionChange:   onConnectionChange,
	})
	mustNot(t, err)
	t.Cleanup(c.Close)
	return c
}

func startBus(t *testing.T, c *messagebus.Client) {
	t.Helper()
	ctx := testContext(t)
	mustNot(t, c.Start(ctx))
	mustNot(t, c.WaitConnected(ctx))
}

// record collects what handlers receive, for a test to wait on.
type record[T any] struct {
	mu    sync.Mutex
	items []T
	more  chan struct{}
}

func newRecord[T any]() *record[T] { return &record[T]{more: make(chan struct{}, 1)} }

func (r *record[T]) add(v T) {
	r.mu.Lock()
	r.items = append(r.items, v)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *record[T]) matching(keep func(T) bool) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []T
	for _, v := range r.items {
		if keep == nil || keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// waitFor returns the matching items once there are at least n of them.
func (r *record[T]) waitFor(t *testing.T, what string, n int, keep func(T) bool) []T {
	t.Helper()
	deadline := time.NewTimer(busWait)
	defer deadline.Stop()
	for {
		if got := r.matching(keep); len(got) >= n {
			return got
		}
		select {
		case <-r.more:
		case <-deadline.C:
			t.Fatalf("%d of %d %s within %s", len(r.matching(keep)), n, what, busWait)
		}
	}
}

// systemEvent is a system event as the bridge receives it, with the name of
// the object it is about.
type systemEvent struct {
	topic string
	se    messagebus.SystemEvent
	name  string
}

func nameIn(se messagebus.SystemEvent) string {
	switch se.Type {
	case messagebus.KindDevice:
		d, _ := se.Device()
		return d.Name
	case messagebus.KindDeviceProfile:
		p, _ := se.Profile()
		return p.Name
	case messagebus.KindDeviceService:
		s, _ := se.Service()
		return s.Name
	}
	return ""
}

func subscribeSystemEvents(t *testing.T, c *messagebus.Client) *record[systemEvent] {
	t.Helper()
	events := newRecord[systemEvent]()
	mustNot(t, c.SubscribeSystemEvents(func(topic string, se messagebus.SystemEvent) {
		events.add(systemEvent{topic: topic, se: se, name: nameIn(se)})
	}, func(topic string, err error) {
		events.add(systemEvent{topic: topic, name: "undecodable: " + err.Error()})
	}))
	return events
}

func about(names ...string) func(systemEvent) bool {
	return func(e systemEvent) bool { return slices.Contains(names, e.name) }
}

func newDevice(name, service, profile string) dtos.Device {
	return dtos.Device{Name: name, AdminState: string(models.Unlocked), OperatingState: string(models.Up),
		ServiceName: service, ProfileName: profile, Protocols: map[string]dtos.ProtocolProperties{"other": {"Address": name}}}
}

func meterProfile(description string) dtos.DeviceProfile {
	return dtos.DeviceProfile{
		DeviceProfileBasicInfo: dtos.DeviceProfileBasicInfo{Name: "Meter-Profile", Manufacturer: "edgebridge", Description: description},
		DeviceResources: []dtos.DeviceResource{{Name: "register", Properties: dtos.ResourceProperties{
			ValueType: common.ValueTypeInt32, ReadWrite: common.ReadWrite_RW, DefaultValue: "0"}}},
	}
}

// Every change made over REST is announced on the bus, in order, on the
// topic core-metadata uses, carrying the object as it now is.
func TestSystemEventsForChangesMadeOverREST(t *testing.T) {
	s := startStack(t)
	bus := s.newBus(t, nil)
	events := subscribeSystemEvents(t, bus)
	startBus(t, bus)
	ctx := testContext(t)
	const service, profile, device = "device-rest", "Meter-Profile", "meter-01"

	steps := []struct {
		name   string
		change func() error
		want   []string
	}{
		{"add a service", func() error {
			_, err := s.md.Services.Add(ctx, dtos.DeviceService{Name: service, BaseAddress: "http://127.0.0.1:59990", AdminState: "UNLOCKED"})
			return err
		}, []string{topics.SystemEvent(messagebus.KindDeviceService, messagebus.ActionAdd, service, "")}},
		{"add a profile", func() error {
			_, err := s.md.Profiles.Add(ctx, meterProfile("v1"))
			return err
		}, []string{topics.SystemEvent(messagebus.KindDeviceProfile, messagebus.ActionAdd, "core-metadata", profile)}},
		{"add a device", func() error {
			_, err := s.md.Devices.Add(ctx, newDevice(device, service, profile))
			return err
		}, []string{topics.SystemEvent(messagebus.KindDevice, messagebus.ActionAdd, service, profile)}},
		{"update the device", func() error {
			_, err := s.md.Devices.Update(ctx, dtos.UpdateDevice{Name: ptr(device), Description: ptr("moved to hall B")})
			return err
		}, []string{topics.SystemEvent(messagebus.KindDevice, messagebus.ActionUpdate, service, profile)}},
		{"update the profile's basic info", func() error {
			_, err := s.md.Profiles.Update(ctx, dtos.UpdateDeviceProfileBasicInfo{Name: ptr(profile), Model: ptr("m2")})
			return err
		}, []string{ // core-metadata tells the service of the profile's devices too
			topics.SystemEvent(messagebus.KindDeviceProfile, messagebus.ActionUpdate, "core-metadata", profile),
			topics.SystemEvent(messagebus.KindDeviceProfile, messagebus.ActionUpdate, service, profile)}},
		{"update the service", func() error {
			_, err := s.md.Services.Update(ctx, dtos.UpdateDeviceService{Name: ptr(service), AdminState: ptr("LOCKED")})
			return err
		}, []string{topics.SystemEvent(messagebus.KindDeviceService, messagebus.ActionUpdate, service, "")}},
		{"delete the device", func() error { return s.md.Devices.Delete(ctx, device) },
			[]string{topics.SystemEvent(messagebus.KindDevice, messagebus.ActionDelete, service, profile)}},
		{"replace the profile", func() error {
			_, err := s.md.ReplaceProfiles(ctx, meterProfile("v2"))
			return err
		}, []string{topics.SystemEvent(messagebus.KindDeviceProfile, messagebus.ActionUpdate, "core-metadata", profile)}},
		{"delete the profile", func() error { return s.md.Profiles.Delete(ctx, profile) },
			[]string{topics.SystemEvent(messagebus.KindDeviceProfile, messagebus.ActionDelete, "core-metadata", profile)}},
		{"delete the service", func() error { return s.md.Services.Delete(ctx, service) },
			[]string{topics.SystemEvent(messagebus.KindDeviceService, messagebus.ActionDelete, service, "")}},
	}
	var want []string
	for _, step := range steps {
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		want = append(want, step.want...)
	}
	got := events.waitFor(t, "system events", len(want), about(service, profile, device))
	gotTopics := make([]string, len(got))
	for i, e := range got {
		gotTopics[i] = e.topic
	}
	if !slices.Equal(gotTopics, want) {
		t.Fatalf("system events\n%v\nwant\n%v", gotTopics, want)
	}
	for _, e := range got {
		if e.se.Source != "core-metadata" || topics.SystemEvent(e.se.Type, e.se.Action, e.se.Owner, profileLevel(e.se)) != e.topic {
			t.Errorf("event on %s says type %s, action %s, owner %s, source %s", e.topic, e.se.Type, e.se.Action, e.se.Owner, e.se.Source)
		}
	}
	if d, err := got[3].se.Device(); err != nil || d.Description != "moved to hall B" {
		t.Errorf("device update carries %+v (%v), want the new description", d, err)
	}
	if p, err := got[8].se.Profile(); err != nil || p.Description != "v2" || len(p.DeviceResources) != 1 {
		t.Errorf("profile replacement carries %+v (%v), want the new profile", p, err)
	}
}

// profileLevel is the topic's last level: the profile of a device or
// profile event, none for a service.
func profileLevel(se messagebus.SystemEvent) string {
	switch se.Type {
	case messagebus.KindDevice:
		d, _ := se.Device()
		return d.ProfileName
	case messagebus.KindDeviceProfile:
		p, _ := se.Profile()
		return p.Name
	}
	return ""
}

// busMessage is a raw message as it arrived, before decoding.
type busMessage struct {
	topic   string
	payload []byte
}

// Device events reach SubscribeEvents decoded, whether the device service
// sent JSON or (for binary readings such as a camera frame) CBOR.
func TestDeviceEventsReachSubscribers(t *testing.T) {
	s := startStack(t)
	bus := s.newBus(t, nil)
	raw := newRecord[busMessage]()
	mustNot(t, bus.Subscribe(topics.AllEvents(), func(topic string, payload []byte) {
		raw.add(busMessage{topic: topic, payload: payload})
	}))
	events := newRecord[dtos.Event]()
	mustNot(t, bus.SubscribeEvents(func(_ string, ev dtos.Event) { events.add(ev) }, func(topic string, err error) {
		events.add(dtos.Event{DeviceName: "undecodable: " + err.Error()})
	}))
	startBus(t, bus)

	jpeg := []byte{0xFF, 0xD8, 0xFF}
	cases := []struct {
		name        string
		send        func(ctx context.Context) (dtos.Event, error)
		topic       string
		contentType string
		check       func(t *testing.T, got, sent dtos.Event)
	}{
		{"camera snapshot", func(ctx context.Context) (dtos.Event, error) {
			return dtos.Event{}, s.sim.PublishEvent(ctx, camera, "snapshot")
		}, topics.Event(simulator.DemoServiceName, simulator.ProfileCamera, camera, "snapshot"), messagebus.ContentTypeCBOR,
			func(t *testing.T, got, _ dtos.Event) {
				r := got.Readings[0]
				if r.ValueType != common.ValueTypeBinary || r.MediaType != "image/jpeg" || !bytes.HasPrefix(r.BinaryValue, jpeg) {
					t.Errorf("snapshot reading %s %s with %d bytes, want a JPEG", r.ValueType, r.MediaType, len(r.BinaryValue))
				}
			}},
		{"camera snapshot read over REST with PushEvent", func(ctx context.Context) (dtos.Event, error) {
			return s.cmd.Read(ctx, camera, "snapshot", edgex.ReadOptions{PushEvent: true})
		}, topics.Event(simulator.DemoServiceName, simulator.ProfileCamera, camera, "snapshot"), messagebus.ContentTypeCBOR,
			func(t *testing.T, got, sent dtos.Event) {
				if got.Id != sent.Id || !bytes.Equal(got.Readings[0].BinaryValue, sent.Readings[0].BinaryValue) {
					t.Errorf("pushed event %s differs from the event the read returned (%s)", got.Id, sent.Id)
				}
			}},
		{"sensor readings", func(ctx context.Context) (dtos.Event, error) {
			return dtos.Event{}, s.sim.PublishReadings(ctx, envSensor, map[string]string{"temperature": "30.5", "humidity": "50"})
		}, topics.Event(simulator.DemoServiceName, simulator.ProfileSensor, envSensor, "environment"), messagebus.ContentTypeJSON,
			func(t *testing.T, got, _ dtos.Event) {
				values := map[string]string{}
				for _, r := range got.Readings {
					values[r.ResourceName] = r.Value
				}
				if values["temperature"] != "3.050000e+01" || values["humidity"] != "5.000000e+01" {
					t.Errorf("readings %v", values)
				}
			}},
		{"a write over REST", func(ctx context.Context) (dtos.Event, error) {
			return dtos.Event{}, s.cmd.Write(ctx, gpioBoard, "pin_17", map[string]string{"pin_17": "true"})
		}, topics.Event(simulator.DemoServiceName, simulator.ProfileGPIO, gpioBoard, "pin_17"), messagebus.ContentTypeJSON,
			func(t *testing.T, got, _ dtos.Event) {
				if r := got.Readings[0]; r.ResourceName != "pin_17" || r.Value != "true" {
					t.Errorf("reading %s = %q, want pin_17 = true", r.ResourceName, r.Value)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(events.matching(nil))
			sent, err := tc.send(testContext(t))
			mustNot(t, err)
			got := events.waitFor(t, "events", before+1, nil)[before]
			msg := raw.waitFor(t, "messages", before+1, nil)[before]
			if msg.topic != tc.topic {
				t.Errorf("published on %s, want %s", msg.topic, tc.topic)
			}
			env, err := messagebus.DecodeEnvelope(msg.payload)
			mustNot(t, err)
			if env.ContentType != tc.contentType {
				t.Errorf("content type %s, want %s", env.ContentType, tc.contentType)
			}
			if len(got.Readings) == 0 {
				t.Fatalf("event %+v has no readings", got)
			}
			tc.check(t, got, sent)
		})
	}
}

// recordWrites records the writes the simulator's devices accept.
func recordWrites(t *testing.T, sim *simulator.Simulator) *record[simulator.Write] {
	writes := newRecord[simulator.Write]()
	t.Cleanup(sim.OnWrite(writes.add))
	return writes
}

// Commands sent over core-command's external MQTT API set and read the
// simulator's devices, as REST commands do.
func TestCommandsOverMQTT(t *testing.T) {
	s := startStack(t)
	bus := s.newBus(t, nil)
	events := newRecord[dtos.Event]()
	mustNot(t, bus.SubscribeEvents(func(_ string, ev dtos.Event) { events.add(ev) }, nil))
	startBus(t, bus)
	writes := recordWrites(t, s.sim)
	commander := messagebus.CommandClient{Client: bus, RESTURL: s.cmd.URL}
	ctx := testContext(t)

	t.Run("set through the CommandClient", func(t *testing.T) {
		mustNot(t, commander.Write(ctx, gpioBoard, "pin_17", map[string]string{"pin_17": "true"}))
		if v, _ := s.sim.Value(gpioBoard, "pin_17"); v != "true" {
			t.Errorf("pin_17 is %q", v)
		}
		w := writes.waitFor(t, "writes", 1, nil)[0]
		if w.Device != gpioBoard || w.Resource != "pin_17" || w.Value != "true" || w.Via != "mqtt" {
			t.Errorf("accepted write %+v, want pin_17 = true via mqtt", w)
		}
		if got := commander.URL(gpioBoard, "pin_17"); got != s.cmd.URL(gpioBoard, "pin_17") {
			t.Errorf("CommandClient shows %s", got)
		}
	})
	t.Run("get what was set", func(t *testing.T) {
		resp, err := bus.Command(ctx, gpioBoard, "pin_17", messagebus.MethodGet, nil, nil)
		mustNot(t, err)
		if resp.Event == nil || resp.Event.Readings[0].Value != "true" {
			t.Errorf("read %+v, want pin_17 = true", resp.Event)
		}
	})
	t.Run("set an Int32 and read it back over REST", func(t *testing.T) {
		_, err := bus.Command(ctx, envSensor, "sample_rate", messagebus.MethodSet, map[string]string{"sample_rate": "300"}, nil)
		mustNot(t, err)
		ev, err := s.cmd.Read(ctx, envSensor, "sample_rate", edgex.ReadOptions{})
		mustNot(t, err)
		if ev.Readings[0].Value != "300" {
			t.Errorf("sample_rate reads %q", ev.Readings[0].Value)
		}
	})
	t.Run("get a device command of several resources", func(t *testing.T) {
		resp, err := bus.Command(ctx, envSensor, "environment", messagebus.MethodGet, nil, nil)
		mustNot(t, err)
		if resp.Event == nil || len(resp.Event.Readings) != 2 || resp.Event.Readings[0].Value != "2.150000e+01" {
			t.Errorf("environment read %+v", resp.Event)
		}
	})
	t.Run("get a camera snapshot", func(t *testing.T) {
		resp, err := bus.Command(ctx, camera, "snapshot", messagebus.MethodGet, nil, nil)
		mustNot(t, err)
		if resp.Event == nil || !bytes.HasPrefix(resp.Event.Readings[0].BinaryValue, []byte{0xFF, 0xD8}) {
			t.Errorf("snapshot read %+v, want a JPEG frame", resp.Event)
		}
	})
	t.Run("get without the event", func(t *testing.T) {
		resp, err := bus.Command(ctx, envSensor, "temperature", messagebus.MethodGet, nil, map[string]string{common.ReturnEvent: common.ValueFalse})
		mustNot(t, err)
		if resp.Event != nil {
			t.Errorf("got event %+v", resp.Event)
		}
	})
	t.Run("get that pushes the event", func(t *testing.T) {
		resp, err := bus.Command(ctx, envSensor, "humidity", messagebus.MethodGet, nil, map[string]string{common.PushEvent: common.ValueTrue})
		mustNot(t, err)
		pushed := events.waitFor(t, "pushed events", 1, func(ev dtos.Event) bool { return ev.SourceName == "humidity" })[0]
		if resp.Event == nil || pushed.Id != resp.Event.Id {
			t.Errorf("pushed event %s, command answered %+v", pushed.Id, resp.Event)
		}
	})
}

// Refusals over MQTT come back as *edgex.Error, and nothing is written.
//
// core-command reports its own failures (an unknown device) with
// core-metadata's error envelope inside, so those keep their status. A
// refusal by the device service (locked, read-only...) arrives as its
// message alone: device-sdk-go puts no status code on the bus, so the client
// reports it as Internal with EdgeX's message rather than guess from words.
func TestCommandRefusalsOverMQTT(t *testing.T) {
	s := startStack(t)
	bus := s.newBus(t, nil)
	startBus(t, bus)
	writes := recordWrites(t, s.sim)
	cases := []struct {
		name                    string
		setup                   func(t *testing.T)
		device, command, method string
		values                  map[string]string
		kind                    edgex.ErrorKind
		status                  int
		message                 string
	}{
		{name: "get of an unknown device", device: "no-such-device", command: "pin_17", method: messagebus.MethodGet,
			kind: edgex.KindNotFound, status: 404},
		{name: "set of an unknown device", device: "no-such-device", command: "pin_17", method: messagebus.MethodSet,
			values: map[string]string{"pin_17": "true"}, kind: edgex.KindNotFound, status: 404},
		{name: "set of a locked device", setup: s.updateDevice(dtos.UpdateDevice{Name: ptr(gpioBoard), AdminState: ptr("LOCKED")}),
			device: gpioBoard, command: "pin_17", method: messagebus.MethodSet, values: map[string]string{"pin_17": "true"},
			kind: edgex.KindInternal, message: "device gpio-board-01 locked"},
		{name: "get of a device that is DOWN", setup: s.updateDevice(dtos.UpdateDevice{Name: ptr(gpioBoard), OperatingState: ptr("DOWN")}),
			device: gpioBoard, command: "pin_17", method: messagebus.MethodGet,
			kind: edgex.KindInternal, message: "device gpio-board-01 OperatingState is DOWN"},
		{name: "set through a locked service", setup: func(t *testing.T) {
			mustNot(t, s.sim.UpdateDeviceService(dtos.UpdateDeviceService{Name: ptr(simulator.DemoServiceName), AdminState: ptr("LOCKED")}))
			t.Cleanup(func() {
				_ = s.sim.UpdateDeviceService(dtos.UpdateDeviceService{Name: ptr(simulator.DemoServiceName), AdminState: ptr("UNLOCKED")})
			})
		}, device: gpioBoard, command: "pin_17", method: messagebus.MethodSet, values: map[string]string{"pin_17": "true"},
			kind: edgex.KindInternal, message: "service locked"},
		{name: "set of a read-only sensor", device: envSensor, command: "temperature", method: messagebus.MethodSet,
			values: map[string]string{"temperature": "30"}, kind: edgex.KindInternal, message: "DeviceResource temperature is marked as read-only"},
		{name: "set of a resource the profile lacks", device: gpioBoard, command: "pin_99", method: messagebus.MethodSet,
			values: map[string]string{"pin_99": "true"}, kind: edgex.KindInternal, message: "DeviceResource pin_99 not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			before := len(writes.matching(nil))
			_, err := bus.Command(testContext(t), tc.device, tc.command, tc.method, tc.values, nil)
			var e *edgex.Error
			if !errors.As(err, &e) || e.Kind != tc.kind || e.StatusCode != tc.status {
				t.Fatalf("got %v, want kind %s, status %d", err, tc.kind, tc.status)
			}
			if tc.message != "" && e.Message != tc.message {
				t.Errorf("message %q, want EdgeX's %q", e.Message, tc.message)
			}
			if n := len(writes.matching(nil)); n != before {
				t.Errorf("%d writes accepted", n-before)
			}
		})
	}
	if v, _ := s.sim.Value(gpioBoard, "pin_17"); v != "false" {
		t.Errorf("pin_17 is %q after refused sets", v)
	}
}

// updateDevice changes a device on the edge side for one subtest.
func (s *stack) updateDevice(u dtos.UpdateDevice) func(t *testing.T) {
	return func(t *testing.T) {
		d, ok := s.sim.Device(*u.Name)
		if !ok {
			t.Fatalf("no device %s", *u.Name)
		}
		mustNot(t, s.sim.UpdateDevice(u))
		t.Cleanup(func() {
			_ = s.sim.UpdateDevice(dtos.UpdateDevice{Name: u.Name, AdminState: ptr(d.AdminState), OperatingState: ptr(d.OperatingState)})
		})
	}
}

// awaitConnection waits for the client to report connected (true) or
// disconnected (false).
func awaitConnection(t *testing.T, changes <-chan bool, want bool) {
	t.Helper()
	deadline := time.NewTimer(busWait)
	defer deadline.Stop()
	for {
		select {
		case got := <-changes:
			if got == want {
				return
			}
		case <-deadline.C:
			t.Fatalf("client did not report connected=%v within %s", want, busWait)
		}
	}
}

// commandSucceeds retries a get until core-command (the simulator) answers:
// after a broker restart it resubscribes on its own schedule.
func commandSucceeds(t *testing.T, bus *messagebus.Client, device, command string) messagebus.CommandResponse {
	t.Helper()
	deadline := time.Now().Add(busWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := bus.Command(ctx, device, command, messagebus.MethodGet, nil, nil)
		cancel()
		if err == nil {
			return resp
		}
		if !edgex.IsUnavailable(err) || time.Now().After(deadline) {
			t.Fatalf("command after the restart: %v", err)
		}
	}
}

// After the broker restarts, the client reconnects by itself and places its
// subscriptions again: system events, device events and commands all work
// as before.
func TestReconnectAfterBrokerRestart(t *testing.T) {
	s := startStack(t)
	changes := make(chan bool, 64)
	bus := s.newBus(t, func(connected bool) { changes <- connected })
	systemEvents := subscribeSystemEvents(t, bus)
	events := newRecord[dtos.Event]()
	mustNot(t, bus.SubscribeEvents(func(_ string, ev dtos.Event) { events.add(ev) }, nil))
	startBus(t, bus)
	awaitConnection(t, changes, true)
	ctx := testContext(t)

	mustNot(t, s.broker.Restart())
	awaitConnection(t, changes, false)
	awaitConnection(t, changes, true)
	if !bus.Connected() {
		t.Fatal("client reported a connection but is not connected")
	}

	resp := commandSucceeds(t, bus, gpioBoard, "pin_18")
	if resp.Event == nil || resp.Event.Readings[0].Value != "false" {
		t.Errorf("get after the restart answered %+v", resp.Event)
	}
	commander := messagebus.CommandClient{Client: bus}
	mustNot(t, commander.Write(ctx, gpioBoard, "pin_18", map[string]string{"pin_18": "true"}))
	if v, _ := s.sim.Value(gpioBoard, "pin_18"); v != "true" {
		t.Errorf("pin_18 is %q after a set over the reconnected bus", v)
	}
	written := events.waitFor(t, "events of the set", 1, func(ev dtos.Event) bool { return ev.SourceName == "pin_18" })[0]
	if written.Readings[0].Value != "true" {
		t.Errorf("event of the set: %+v", written.Readings)
	}

	const added = "gpio-board-after-restart"
	_, err := s.md.Devices.Add(ctx, newDevice(added, simulator.DemoServiceName, simulator.ProfileGPIO))
	mustNot(t, err)
	got := systemEvents.waitFor(t, "system events of the add", 1, about(added))[0]
	if got.topic != topics.SystemEvent(messagebus.KindDevice, messagebus.ActionAdd, simulator.DemoServiceName, simulator.ProfileGPIO) {
		t.Errorf("add announced on %s", got.topic)
	}
}

// The bridge asks core-command over the bus whether it answers, to send
// held-back commands as soon as it is back: a stopped core-command gives no
// answer, and one that is back answers at once.
func TestPingCoreCommandOverMQTT(t *testing.T) {
	s := startStack(t)
	bus := s.newBus(t, nil)
	startBus(t, bus)
	commander := messagebus.CommandClient{Client: bus}
	ctx := testContext(t)

	mustNot(t, commander.Ping(ctx))
	mustNot(t, s.sim.Faults().SetCommandDown(true))
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := commander.Ping(short); err == nil || edgex.KindOf(err) != edgex.KindUnavailable {
		t.Errorf("ping of a stopped core-command: %v, want Unavailable", err)
	}
	mustNot(t, s.sim.Faults().SetCommandDown(false))
	mustNot(t, commander.Ping(ctx))
}
