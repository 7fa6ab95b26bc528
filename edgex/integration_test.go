package edgex_test

// These tests run the core-metadata and core-command clients against the
// EdgeX simulator over real loopback HTTP (and a real mosquitto where the
// message bus is involved): what the clients send is what EdgeX 3.1 would
// receive, and what they report is what the bridge would act on.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// waitTimeout bounds every call and every wait; a passing test is far
// below it.
const waitTimeout = 20 * time.Second

// Demo device names, as simulator.DemoDevices registers them.
const (
	gpioBoard = "gpio-board-01"
	envSensor = "env-sensor-01"
	camera    = "camera-01"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func ptr[T any](v T) *T { return &v }

// startSimulator starts a simulator that is closed at the test's end.
func startSimulator(t *testing.T, opts simulator.Options) *simulator.Simulator {
	t.Helper()
	sim := simulator.New(opts)
	if err := sim.Start(testContext(t)); err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// startDemo starts a simulator holding the demo service, profiles and
// devices.
func startDemo(t *testing.T, opts simulator.Options) *simulator.Simulator {
	t.Helper()
	sim := startSimulator(t, opts)
	if err := sim.SeedDemo(testContext(t)); err != nil {
		t.Fatal(err)
	}
	return sim
}

// clients are the two REST clients pointed at one simulator.
type clients struct {
	md  *edgex.Metadata
	cmd *edgex.Command
}

// clientOptions fail fast: one attempt unless a test asks for retries, and
// a short timeout.
func clientOptions(sim *simulator.Simulator) edgex.Options {
	return edgex.Options{
		MetadataURL: sim.MetadataURL(),
		CommandURL:  sim.CommandURL(),
		Timeout:     5 * time.Second,
		Retries:     -1,
		Backoff:     time.Millisecond,
	}
}

func newClients(t *testing.T, opts edgex.Options) clients {
	t.Helper()
	md, err := edgex.NewMetadata(opts)
	if err != nil {
		t.Fatalf("NewMetadata: %v", err)
	}
	cmd, err := edgex.NewCommand(opts)
	if err != nil {
		t.Fatalf("NewCommand: %v", err)
	}
	return clients{md: md, cmd: cmd}
}

func mustNot(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantError checks that err is an *edgex.Error of kind with the status code
// EdgeX answered (0 when no answer arrived).
func wantError(t *testing.T, err error, kind edgex.ErrorKind, status int) *edgex.Error {
	t.Helper()
	var e *edgex.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want a %s *edgex.Error", err, kind)
	}
	if e.Kind != kind || e.StatusCode != status {
		t.Fatalf("got %v (kind %s, status %d), want kind %s, status %d", err, e.Kind, e.StatusCode, kind, status)
	}
	return e
}

func newDevice(name, service, profile string) dtos.Device {
	return dtos.Device{
		Name:           name,
		AdminState:     string(models.Unlocked),
		OperatingState: string(models.Up),
		ServiceName:    service,
		ProfileName:    profile,
		Protocols:      map[string]dtos.ProtocolProperties{"other": {"Address": name}},
	}
}

func newService(name string) dtos.DeviceService {
	return dtos.DeviceService{Name: name, BaseAddress: "http://127.0.0.1:59999", AdminState: string(models.Unlocked)}
}

// newProfile is a one-resource profile: a writable Int32 register.
func newProfile(name string) dtos.DeviceProfile {
	return dtos.DeviceProfile{
		DeviceProfileBasicInfo: dtos.DeviceProfileBasicInfo{Name: name, Manufacturer: "edgebridge", Model: "m1"},
		DeviceResources: []dtos.DeviceResource{{Name: "register", Properties: dtos.ResourceProperties{
			ValueType: common.ValueTypeInt32, ReadWrite: common.ReadWrite_RW, DefaultValue: "0"}}},
	}
}

// demoProfile returns one of the demo profiles by name.
func demoProfile(t *testing.T, name string) dtos.DeviceProfile {
	t.Helper()
	for _, p := range simulator.DemoProfiles() {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no demo profile %q", name)
	return dtos.DeviceProfile{}
}

// lifecycle is one kind's round trip through core-metadata: add, get,
// patch, get, delete, get.
type lifecycle[T, U any] struct {
	kind    *edgex.Kind[T, U]
	object  T
	name    string
	patch   U
	patched func(T) bool
}

func (lc lifecycle[T, U]) run(t *testing.T) {
	ctx := testContext(t)
	results, err := lc.kind.Add(ctx, lc.object)
	mustNot(t, err)
	if len(results) != 1 || results[0].ID == "" || results[0].Err != nil {
		t.Fatalf("add answered %+v, want one result with the new id", results)
	}
	got, err := lc.kind.Get(ctx, lc.name)
	mustNot(t, err)
	if lc.patched(got) {
		t.Fatalf("got %+v, which already looks patched", got)
	}
	_, err = lc.kind.Update(ctx, lc.patch)
	mustNot(t, err)
	got, err = lc.kind.Get(ctx, lc.name)
	mustNot(t, err)
	if !lc.patched(got) {
		t.Fatalf("after the update got %+v", got)
	}
	mustNot(t, lc.kind.Delete(ctx, lc.name))
	_, err = lc.kind.Get(ctx, lc.name)
	wantError(t, err, edgex.KindNotFound, 404)
	wantError(t, lc.kind.Delete(ctx, lc.name), edgex.KindNotFound, 404)
}

// Each kind goes through add, get, update and delete, and what the client
// reads back is what it wrote.
func TestMetadataRoundTripForEveryKind(t *testing.T) {
	sim := startDemo(t, simulator.Options{})
	c := newClients(t, clientOptions(sim))
	t.Run("device service", func(t *testing.T) {
		lifecycle[dtos.DeviceService, dtos.UpdateDeviceService]{
			kind: c.md.Services, object: newService("device-modbus"), name: "device-modbus",
			patch: dtos.UpdateDeviceService{Name: ptr("device-modbus"), BaseAddress: ptr("http://10.0.0.7:59901"), AdminState: ptr("LOCKED")},
			patched: func(s dtos.DeviceService) bool {
				return s.BaseAddress == "http://10.0.0.7:59901" && s.AdminState == "LOCKED"
			},
		}.run(t)
	})
	t.Run("device profile", func(t *testing.T) {
		lifecycle[dtos.DeviceProfile, dtos.UpdateDeviceProfileBasicInfo]{
			kind: c.md.Profiles, object: newProfile("Modbus-Meter"), name: "Modbus-Meter",
			patch: dtos.UpdateDeviceProfileBasicInfo{Name: ptr("Modbus-Meter"), Description: ptr("energy meter"), Labels: []string{"meter"}},
			patched: func(p dtos.DeviceProfile) bool {
				return p.Description == "energy meter" && slices.Equal(p.Labels, []string{"meter"}) && len(p.DeviceResources) == 1
			},
		}.run(t)
	})
	t.Run("device", func(t *testing.T) {
		lifecycle[dtos.Device, dtos.UpdateDevice]{
			kind: c.md.Devices, object: newDevice("gpio-board-02", simulator.DemoServiceName, simulator.ProfileGPIO), name: "gpio-board-02",
			patch: dtos.UpdateDevice{Name: ptr("gpio-board-02"), Description: ptr("second board"), AdminState: ptr("LOCKED")},
			patched: func(d dtos.Device) bool {
				return d.Description == "second board" && d.AdminState == "LOCKED" && d.Protocols["other"]["Address"] == "gpio-board-02"
			},
		}.run(t)
	})
}

// itemWant is the expected outcome of one item of a batch call: success
// (kind "") or a failure of kind with EdgeX's per-item status (0 for items
// the client refused before sending).
type itemWant struct {
	kind   edgex.ErrorKind
	status int
}

func checkResults(t *testing.T, results []edgex.Result, err error, want []itemWant) {
	t.Helper()
	if len(results) != len(want) {
		t.Fatalf("%d results for %d items (err %v)", len(results), len(want), err)
	}
	failed := false
	for i, w := range want {
		r := results[i]
		if w.kind == "" {
			if r.Err != nil || r.ID == "" && w.status == 201 {
				t.Errorf("item %d: %+v, want success", i, r)
			}
			continue
		}
		failed = true
		var e *edgex.Error
		if !errors.As(r.Err, &e) || e.Kind != w.kind || e.StatusCode != w.status || e.Op == "" {
			t.Errorf("item %d: %v, want kind %s, status %d, naming the item", i, r.Err, w.kind, w.status)
		}
	}
	if failed != (err != nil) {
		t.Errorf("call error %v; want one exactly when an item failed", err)
	}
}

// A batch answers 207 whatever happened; each item's own outcome reaches
// the caller, and only the items EdgeX accepted exist afterwards.
func TestBatchCallsReportEveryItem(t *testing.T) {
	sim := startDemo(t, simulator.Options{})
	c := newClients(t, clientOptions(sim))
	ctx := testContext(t)

	t.Run("add devices", func(t *testing.T) {
		results, err := c.md.Devices.Add(ctx,
			newDevice("gpio-board-03", simulator.DemoServiceName, simulator.ProfileGPIO),
			newDevice("meter-01", simulator.DemoServiceName, "No-Such-Profile"),
			newDevice("meter-02", "device-gone", simulator.ProfileGPIO),
			newDevice(gpioBoard, simulator.DemoServiceName, simulator.ProfileGPIO),
			newDevice("", simulator.DemoServiceName, simulator.ProfileGPIO),
		)
		checkResults(t, results, err, []itemWant{{"", 201}, {edgex.KindNotFound, 404}, {edgex.KindInvalid, 400},
			{edgex.KindConflict, 409}, {edgex.KindInvalid, 0}})
		if _, ok := sim.Device("gpio-board-03"); !ok {
			t.Error("the accepted device was not created")
		}
		for _, name := range []string{"meter-01", "meter-02"} {
			if _, ok := sim.Device(name); ok {
				t.Errorf("refused device %s exists", name)
			}
		}
	})
	t.Run("add services", func(t *testing.T) {
		bad := newService("device-bad")
		bad.AdminState = "HALF-LOCKED"
		results, err := c.md.Services.Add(ctx, newService("device-rest"), newService(simulator.DemoServiceName), bad)
		checkResults(t, results, err, []itemWant{{"", 201}, {edgex.KindConflict, 409}, {edgex.KindInvalid, 0}})
	})
	t.Run("add profiles", func(t *testing.T) {
		results, err := c.md.Profiles.Add(ctx, newProfile("Meter-v1"), newProfile(simulator.ProfileSensor), newProfile(""))
		checkResults(t, results, err, []itemWant{{"", 201}, {edgex.KindConflict, 409}, {edgex.KindInvalid, 0}})
	})
	t.Run("update devices", func(t *testing.T) {
		sensor, _ := sim.Device(envSensor)
		results, err := c.md.Devices.Update(ctx,
			dtos.UpdateDevice{Name: ptr(gpioBoard), Description: ptr("front panel")},
			dtos.UpdateDevice{Name: ptr("no-such-device"), Description: ptr("x")},
			dtos.UpdateDevice{Name: ptr(camera), ProfileName: ptr("No-Such-Profile")},
			dtos.UpdateDevice{Id: ptr(sensor.Id), Name: ptr(camera)},
			dtos.UpdateDevice{Name: ptr(camera), ServiceName: ptr("device-gone")},
		)
		checkResults(t, results, err, []itemWant{{"", 200}, {edgex.KindNotFound, 404}, {edgex.KindNotFound, 404},
			{edgex.KindInvalid, 400}, {edgex.KindInvalid, 400}})
		if d, _ := sim.Device(gpioBoard); d.Description != "front panel" {
			t.Errorf("description %q after the update", d.Description)
		}
		if d, _ := sim.Device(camera); d.ProfileName != simulator.ProfileCamera || d.ServiceName != simulator.DemoServiceName {
			t.Errorf("refused updates changed the camera: %+v", d)
		}
	})
	t.Run("replace profiles", func(t *testing.T) {
		gpio := demoProfile(t, simulator.ProfileGPIO)
		gpio.DeviceResources = append(gpio.DeviceResources, dtos.DeviceResource{Name: "pin_22",
			Properties: dtos.ResourceProperties{ValueType: common.ValueTypeBool, ReadWrite: common.ReadWrite_RW, DefaultValue: "false"}})
		results, err := c.md.ReplaceProfiles(ctx, gpio, newProfile("Never-Added"))
		checkResults(t, results, err, []itemWant{{"", 200}, {edgex.KindNotFound, 404}})
		got, err := c.md.Profiles.Get(ctx, simulator.ProfileGPIO)
		mustNot(t, err)
		if len(got.DeviceResources) != 4 || got.DeviceResources[3].Name != "pin_22" {
			t.Errorf("resources after the replacement: %+v", got.DeviceResources)
		}
		if len(got.DeviceCommands) != 1 {
			t.Errorf("commands after the replacement: %+v", got.DeviceCommands)
		}
	})
}

func devicesNamed(prefix string, n int, service, profile string) []dtos.Device {
	out := make([]dtos.Device, n)
	for i := range out {
		out[i] = newDevice(fmt.Sprintf("%s-%04d", prefix, i), service, profile)
	}
	return out
}

// addInBatches adds items a hundred at a time, as a bridge importing a big
// pool would.
func addInBatches[T, U any](t *testing.T, k *edgex.Kind[T, U], items []T) {
	t.Helper()
	ctx := testContext(t)
	for start := 0; start < len(items); start += 100 {
		if _, err := k.Add(ctx, items[start:min(start+100, len(items))]...); err != nil {
			t.Fatal(err)
		}
	}
}

// checkComplete fails unless got holds exactly the names in want, each
// once.
func checkComplete(t *testing.T, got []string, want []string) {
	t.Helper()
	checkListed(t, got, want, want)
}

// checkListed fails unless got holds every name in must and nothing
// outside may, each once: objects that came or went while a list was paged
// may be in it or not, but one that existed throughout must be.
func checkListed(t *testing.T, got, must, may []string) {
	t.Helper()
	seen := map[string]int{}
	for _, n := range got {
		seen[n]++
	}
	var dups, missing, extra []string
	for n, count := range seen {
		if count > 1 {
			dups = append(dups, n)
		}
		if !slices.Contains(may, n) {
			extra = append(extra, n)
		}
	}
	for _, n := range must {
		if seen[n] == 0 {
			missing = append(missing, n)
		}
	}
	if len(dups)+len(missing)+len(extra) > 0 {
		t.Fatalf("listed %d: duplicates %v, missing %v, unexpected %v", len(got), dups, missing, extra)
	}
}

func namesOf[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}

func deviceName(d dtos.Device) string         { return d.Name }
func serviceName(s dtos.DeviceService) string { return s.Name }
func profileName(p dtos.DeviceProfile) string { return p.Name }

// listRequests counts the list calls core-metadata received for a route
// such as /api/v3/device/all.
func listRequests(sim *simulator.Simulator, route string) int64 {
	return sim.RequestCounts()["core-metadata GET "+route]
}

// List pages through more objects than a page holds and returns each
// exactly once, asking small pages rather than everything at once.
func TestListPagesThroughEveryObject(t *testing.T) {
	sim := startSimulator(t, simulator.Options{})
	opts := clientOptions(sim)
	opts.PageSize = 100
	c := newClients(t, opts)
	ctx := testContext(t)
	mustNot(t, firstErr(c.md.Services.Add(ctx, simulator.DemoService())))
	mustNot(t, firstErr(c.md.Profiles.Add(ctx, demoProfile(t, simulator.ProfileGPIO))))

	devices := devicesNamed("dev", 1234, simulator.DemoServiceName, simulator.ProfileGPIO)
	addInBatches(t, c.md.Devices, devices)
	services := make([]dtos.DeviceService, 249)
	profiles := make([]dtos.DeviceProfile, 249)
	for i := range services {
		services[i] = newService(fmt.Sprintf("svc-%03d", i))
		profiles[i] = newProfile(fmt.Sprintf("prof-%03d", i))
	}
	addInBatches(t, c.md.Services, services)
	addInBatches(t, c.md.Profiles, profiles)

	cases := []struct {
		name  string
		route string
		list  func(ctx context.Context) ([]string, error)
		want  []string
		pages int64
	}{
		{"1,234 devices in pages of 100", "/api/v3/device/all", func(ctx context.Context) ([]string, error) {
			got, err := c.md.Devices.List(ctx)
			return namesOf(got, deviceName), err
		}, namesOf(devices, deviceName), 13},
		{"250 services in pages of 100", "/api/v3/deviceservice/all", func(ctx context.Context) ([]string, error) {
			got, err := c.md.Services.List(ctx)
			return namesOf(got, serviceName), err
		}, append(namesOf(services, serviceName), simulator.DemoServiceName), 3},
		{"250 profiles in pages of 100", "/api/v3/deviceprofile/all", func(ctx context.Context) ([]string, error) {
			got, err := c.md.Profiles.List(ctx)
			return namesOf(got, profileName), err
		}, append(namesOf(profiles, profileName), simulator.ProfileGPIO), 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := listRequests(sim, tc.route)
			got, err := tc.list(testContext(t))
			mustNot(t, err)
			checkComplete(t, got, tc.want)
			if n := listRequests(sim, tc.route) - before; n != tc.pages {
				t.Errorf("%d list requests, want %d pages", n, tc.pages)
			}
		})
	}

	t.Run("one page at a time", func(t *testing.T) {
		pageCases := []struct {
			name          string
			offset, limit int
			wantItems     int
		}{
			{"first page at the configured size", 0, 0, 100},
			{"a page of 7 inside the list", 500, 7, 7},
			{"the short last page", 1200, 100, 34},
			{"offset at the end", 1234, 100, 0},
		}
		for _, pc := range pageCases {
			t.Run(pc.name, func(t *testing.T) {
				page, err := c.md.Devices.ListPage(testContext(t), pc.offset, pc.limit)
				mustNot(t, err)
				if len(page.Items) != pc.wantItems || page.TotalCount != 1234 {
					t.Errorf("%d items of %d, want %d of 1234", len(page.Items), page.TotalCount, pc.wantItems)
				}
			})
		}
	})
}

func firstErr(_ []edgex.Result, err error) error { return err }

// When devices come and go while List pages through them, the result is
// still every device that exists throughout, once: never a gap that would
// look like a deleted device.
func TestListStaysCompleteWhileDevicesChange(t *testing.T) {
	cases := []struct {
		name string
		// change runs once, after the third page, on the edge side.
		change func(t *testing.T, sim *simulator.Simulator, listed []dtos.Device)
	}{
		{"a device is added", func(t *testing.T, sim *simulator.Simulator, _ []dtos.Device) {
			_, err := sim.AddDevice(newDevice("late-arrival", simulator.DemoServiceName, simulator.ProfileGPIO))
			mustNot(t, err)
		}},
		{"a device not yet listed is deleted", func(t *testing.T, sim *simulator.Simulator, listed []dtos.Device) {
			mustNot(t, sim.DeleteDevice(unlisted(sim, listed)))
		}},
		{"a listed device is deleted", func(t *testing.T, sim *simulator.Simulator, listed []dtos.Device) {
			mustNot(t, sim.DeleteDevice(listed[0].Name))
		}},
		{"a listed device is replaced by one listed last", func(t *testing.T, sim *simulator.Simulator, listed []dtos.Device) {
			mustNot(t, sim.DeleteDevice(listed[0].Name))
			// The lowest id sorts last in core-metadata's list.
			late := newDevice("replacement", simulator.DemoServiceName, simulator.ProfileGPIO)
			late.Id = "00000000-0000-4000-8000-000000000000"
			_, err := sim.AddDevice(late)
			mustNot(t, err)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSimulator(t, simulator.Options{})
			_, err := sim.AddDeviceService(simulator.DemoService())
			mustNot(t, err)
			_, err = sim.AddDeviceProfile(demoProfile(t, simulator.ProfileGPIO))
			mustNot(t, err)
			for _, d := range devicesNamed("dev", 450, simulator.DemoServiceName, simulator.ProfileGPIO) {
				_, err := sim.AddDevice(d)
				mustNot(t, err)
			}
			// peek sees the list as the paging client has seen it so far.
			peek := newClients(t, clientOptions(sim)).md
			var pages atomic.Int32
			opts := clientOptions(sim)
			opts.PageSize = 100
			opts.Observer = func(info edgex.RequestInfo) {
				if info.Route == "/api/v3/device/all" && pages.Add(1) == 3 {
					listed, err := peek.Devices.ListPage(testContext(t), 0, 300)
					mustNot(t, err)
					tc.change(t, sim, listed.Items)
				}
			}
			before := namesOf(sim.Devices(), deviceName)
			got, err := newClients(t, opts).md.Devices.List(testContext(t))
			mustNot(t, err)
			after := namesOf(sim.Devices(), deviceName)
			if slices.Equal(before, after) {
				t.Fatal("nothing changed while the list was paged")
			}
			throughout := slices.DeleteFunc(slices.Clone(before), func(n string) bool { return !slices.Contains(after, n) })
			checkListed(t, namesOf(got, deviceName), throughout, append(before, after...))
		})
	}
}

// unlisted is a device that is not among the listed ones.
func unlisted(sim *simulator.Simulator, listed []dtos.Device) string {
	seen := namesOf(listed, deviceName)
	for _, d := range sim.Devices() {
		if !slices.Contains(seen, d.Name) {
			return d.Name
		}
	}
	return ""
}

// errorCase is one way EdgeX says no, and the kind the caller must see.
type errorCase struct {
	name string
	// token is required by the simulator when set.
	token string
	// client adjusts the client options.
	client func(t *testing.T, o *edgex.Options)
	// setup prepares the seeded demo simulator.
	setup  func(t *testing.T, sim *simulator.Simulator)
	call   func(ctx context.Context, c clients) error
	kind   edgex.ErrorKind
	status int
}

func updateDevice(u dtos.UpdateDevice) func(*testing.T, *simulator.Simulator) {
	return func(t *testing.T, sim *simulator.Simulator) { mustNot(t, sim.UpdateDevice(u)) }
}

func read(device, command string) func(context.Context, clients) error {
	return func(ctx context.Context, c clients) error {
		_, err := c.cmd.Read(ctx, device, command, edgex.ReadOptions{})
		return err
	}
}

func write(device, command, value string) func(context.Context, clients) error {
	return func(ctx context.Context, c clients) error {
		return c.cmd.Write(ctx, device, command, map[string]string{command: value})
	}
}

func getDevice(name string) func(context.Context, clients) error {
	return func(ctx context.Context, c clients) error {
		_, err := c.md.Devices.Get(ctx, name)
		return err
	}
}

func addDevice(d dtos.Device) func(context.Context, clients) error {
	return func(ctx context.Context, c clients) error {
		_, err := c.md.Devices.Add(ctx, d)
		return err
	}
}

// withTokenFile points the client at a token file holding token, or at a
// file that does not exist when token is "".
func withTokenFile(token string) func(*testing.T, *edgex.Options) {
	return func(t *testing.T, o *edgex.Options) {
		o.TokenFile = filepath.Join(t.TempDir(), "token")
		if token != "" {
			mustNot(t, os.WriteFile(o.TokenFile, []byte(token+"\n"), 0o600))
		}
	}
}

// Every kind of failure the simulator can produce reaches the caller as an
// *edgex.Error of the right kind, with the status EdgeX answered.
func TestEveryErrorKindReachesTheCaller(t *testing.T) {
	cases := []errorCase{
		{name: "get a device that does not exist", call: getDevice("no-such-device"), kind: edgex.KindNotFound, status: 404},
		{name: "delete a profile that does not exist", call: func(ctx context.Context, c clients) error {
			return c.md.Profiles.Delete(ctx, "No-Such-Profile")
		}, kind: edgex.KindNotFound, status: 404},
		{name: "commands of a device that does not exist", call: func(ctx context.Context, c clients) error {
			_, err := c.cmd.DeviceCommands(ctx, "no-such-device")
			return err
		}, kind: edgex.KindNotFound, status: 404},
		{name: "read a device that does not exist", call: read("no-such-device", "pin_17"), kind: edgex.KindNotFound, status: 404},
		{name: "write a resource the profile lacks", call: write(gpioBoard, "pin_99", "true"), kind: edgex.KindNotFound, status: 404},

		{name: "add a device whose name is taken", call: addDevice(newDevice(gpioBoard, simulator.DemoServiceName, simulator.ProfileGPIO)),
			kind: edgex.KindConflict, status: 409},
		{name: "delete a profile a device uses", call: func(ctx context.Context, c clients) error {
			return c.md.Profiles.Delete(ctx, simulator.ProfileGPIO)
		}, kind: edgex.KindConflict, status: 409},
		{name: "delete a service devices use", call: func(ctx context.Context, c clients) error {
			return c.md.Services.Delete(ctx, simulator.DemoServiceName)
		}, kind: edgex.KindConflict, status: 409},

		{name: "add a device of an unknown service", call: addDevice(newDevice("meter-01", "device-gone", simulator.ProfileGPIO)),
			kind: edgex.KindInvalid, status: 400},
		{name: "write a value out of the resource's range", call: write(envSensor, "sample_rate", "2000"), kind: edgex.KindInvalid, status: 400},
		{name: "replace a profile under another's id", call: func(ctx context.Context, c clients) error {
			camera, err := c.md.Profiles.Get(ctx, simulator.ProfileCamera)
			if err != nil {
				return err
			}
			gpio := simulator.DemoProfiles()[0]
			gpio.Id = camera.Id
			_, err = c.md.ReplaceProfiles(ctx, gpio)
			return err
		}, kind: edgex.KindInvalid, status: 400},

		{name: "write to a read-only sensor", call: write(envSensor, "temperature", "30"), kind: edgex.KindNotAllowed, status: 405},
		{name: "write to a read-only command", call: write(gpioBoard, "pins", "true"), kind: edgex.KindNotAllowed, status: 405},

		{name: "read a locked device", setup: updateDevice(dtos.UpdateDevice{Name: ptr(gpioBoard), AdminState: ptr("LOCKED")}),
			call: read(gpioBoard, "pin_17"), kind: edgex.KindLocked, status: 423},
		{name: "write to a device that is DOWN", setup: updateDevice(dtos.UpdateDevice{Name: ptr(gpioBoard), OperatingState: ptr("DOWN")}),
			call: write(gpioBoard, "pin_17", "true"), kind: edgex.KindLocked, status: 423},
		{name: "write through a locked device service", setup: func(t *testing.T, sim *simulator.Simulator) {
			mustNot(t, sim.UpdateDeviceService(dtos.UpdateDeviceService{Name: ptr(simulator.DemoServiceName), AdminState: ptr("LOCKED")}))
		}, call: write(gpioBoard, "pin_17", "true"), kind: edgex.KindLocked, status: 423},

		{name: "no token", token: "s3cret", call: getDevice(gpioBoard), kind: edgex.KindUnauthorized, status: 401},
		{name: "wrong token", token: "s3cret", client: withTokenFile("guessed"), call: read(gpioBoard, "pin_17"),
			kind: edgex.KindUnauthorized, status: 401},
		{name: "token file missing", token: "s3cret", client: withTokenFile(""), call: getDevice(gpioBoard),
			kind: edgex.KindUnauthorized, status: 0},

		{name: "add a device while its service is down", setup: serviceDown,
			call: addDevice(newDevice("gpio-board-04", simulator.DemoServiceName, simulator.ProfileGPIO)), kind: edgex.KindUnavailable, status: 503},
		{name: "read a device whose service is down", setup: serviceDown, call: read(envSensor, "temperature"),
			kind: edgex.KindUnavailable, status: 503},
		{name: "simulator stopped", setup: func(t *testing.T, sim *simulator.Simulator) { mustNot(t, sim.Close()) },
			call: getDevice(gpioBoard), kind: edgex.KindUnavailable, status: 0},
		{name: "answer slower than the client's timeout", setup: func(_ *testing.T, sim *simulator.Simulator) {
			sim.Faults().SetLatency(time.Minute)
		}, client: func(_ *testing.T, o *edgex.Options) { o.Timeout = 100 * time.Millisecond },
			call: getDevice(gpioBoard), kind: edgex.KindUnavailable, status: 0},

		{name: "error body on a success status", setup: func(_ *testing.T, sim *simulator.Simulator) {
			sim.Faults().ErrorBodyOnSuccess(true)
		}, call: func(ctx context.Context, c clients) error {
			_, err := c.md.Devices.ListPage(ctx, 0, 10)
			return err
		}, kind: edgex.KindMalformed, status: 200},
		{name: "truncated answer", setup: truncate, call: getDevice(gpioBoard), kind: edgex.KindMalformed, status: 200},
		{name: "truncated batch answer", setup: truncate,
			call: addDevice(newDevice("gpio-board-05", simulator.DemoServiceName, simulator.ProfileGPIO)), kind: edgex.KindMalformed, status: 207},
		{name: "truncated read", setup: truncate, call: read(envSensor, "environment"), kind: edgex.KindMalformed, status: 200},

		{name: "EdgeX fails", setup: func(_ *testing.T, sim *simulator.Simulator) {
			sim.Faults().FailRequests(500, -1)
		}, call: getDevice(gpioBoard), kind: edgex.KindInternal, status: 500},
		{name: "a value the device cannot parse", call: write(envSensor, "sample_rate", "3000000000"), kind: edgex.KindInternal, status: 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim := startDemo(t, simulator.Options{Token: tc.token})
			opts := clientOptions(sim)
			if tc.client != nil {
				tc.client(t, &opts)
			}
			c := newClients(t, opts)
			if tc.setup != nil {
				tc.setup(t, sim)
			}
			e := wantError(t, tc.call(testContext(t), c), tc.kind, tc.status)
			if e.Op == "" {
				t.Errorf("%v does not say what was attempted", e)
			}
		})
	}
}

func serviceDown(_ *testing.T, sim *simulator.Simulator) {
	sim.Faults().SetServiceDown(simulator.DemoServiceName, true)
}

func truncate(_ *testing.T, sim *simulator.Simulator) { sim.Faults().TruncateResponses(true) }

// A list that fails on any page is a failure with no items at all, never a
// shorter list: the bridge would take the missing objects for deleted.
func TestFailedListsReturnNoItems(t *testing.T) {
	faults := []struct {
		name   string
		inject func(sim *simulator.Simulator)
		kind   edgex.ErrorKind
		// timeout is the client's; short only where the fault is slowness.
		timeout time.Duration
	}{
		{"list calls fail with 500", func(sim *simulator.Simulator) { sim.Faults().FailLists(500, -1) }, edgex.KindInternal, 0},
		{"list calls fail with 503", func(sim *simulator.Simulator) { sim.Faults().FailLists(503, -1) }, edgex.KindUnavailable, 0},
		{"error body on a success status", func(sim *simulator.Simulator) { sim.Faults().ErrorBodyOnSuccess(true) }, edgex.KindMalformed, 0},
		{"truncated answers", func(sim *simulator.Simulator) { sim.Faults().TruncateResponses(true) }, edgex.KindMalformed, 0},
		{"EdgeX slower than the timeout", func(sim *simulator.Simulator) { sim.Faults().SetLatency(time.Minute) },
			edgex.KindUnavailable, 200 * time.Millisecond},
	}
	kinds := []struct {
		name  string
		route string
		list  func(ctx context.Context, md *edgex.Metadata) (int, bool, error)
	}{
		{"devices", "/api/v3/device/all", func(ctx context.Context, md *edgex.Metadata) (int, bool, error) {
			got, err := md.Devices.List(ctx)
			return len(got), got == nil, err
		}},
		{"services", "/api/v3/deviceservice/all", func(ctx context.Context, md *edgex.Metadata) (int, bool, error) {
			got, err := md.Services.List(ctx)
			return len(got), got == nil, err
		}},
		{"profiles", "/api/v3/deviceprofile/all", func(ctx context.Context, md *edgex.Metadata) (int, bool, error) {
			got, err := md.Profiles.List(ctx)
			return len(got), got == nil, err
		}},
	}
	for _, fault := range faults {
		for _, kind := range kinds {
			for _, afterPages := range []int32{0, 2} {
				name := fmt.Sprintf("%s/%s/from page %d", fault.name, kind.name, afterPages+1)
				t.Run(name, func(t *testing.T) {
					sim := populated(t, 25)
					var pages atomic.Int32
					opts := clientOptions(sim)
					opts.PageSize = 10
					if fault.timeout > 0 {
						opts.Timeout = fault.timeout
					}
					opts.Observer = func(info edgex.RequestInfo) {
						if info.Route == kind.route && pages.Add(1) == afterPages {
							fault.inject(sim)
						}
					}
					if afterPages == 0 {
						fault.inject(sim)
					}
					n, isNil, err := kind.list(testContext(t), newClients(t, opts).md)
					if !isNil || n != 0 {
						t.Errorf("got %d items (nil: %v) along with %v", n, isNil, err)
					}
					if edgex.KindOf(err) != fault.kind {
						t.Errorf("error %v, want kind %s", err, fault.kind)
					}
					if got := pages.Load(); got != afterPages+1 {
						t.Errorf("%d page requests, want the fault to hit page %d", got, afterPages+1)
					}
				})
			}
		}
	}
}

// populated is a simulator with n services, n profiles and n devices.
func populated(t *testing.T, n int) *simulator.Simulator {
	t.Helper()
	sim := startSimulator(t, simulator.Options{})
	for i := range n {
		_, err := sim.AddDeviceService(newService(fmt.Sprintf("svc-%02d", i)))
		mustNot(t, err)
		_, err = sim.AddDeviceProfile(newProfile(fmt.Sprintf("prof-%02d", i)))
		mustNot(t, err)
		_, err = sim.AddDevice(newDevice(fmt.Sprintf("dev-%02d", i), "svc-00", "prof-00"))
		mustNot(t, err)
	}
	return sim
}

// Calls that mean the same when repeated survive a transient failure;
// adds and command writes are sent once, since EdgeX may have acted.
func TestRetriesAgainstTheSimulator(t *testing.T) {
	sim := startDemo(t, simulator.Options{})
	opts := clientOptions(sim)
	opts.Retries = 2
	c := newClients(t, opts)
	ctx := testContext(t)
	count := func(key string) int64 { return sim.RequestCounts()[key] }

	t.Run("get survives two failures", func(t *testing.T) {
		key := "core-metadata GET /api/v3/device/name/{name}"
		before := count(key)
		sim.Faults().FailRequests(503, 2)
		d, err := c.md.Devices.Get(ctx, gpioBoard)
		mustNot(t, err)
		if d.Name != gpioBoard || count(key)-before != 3 {
			t.Errorf("got %q after %d requests, want it on the third", d.Name, count(key)-before)
		}
	})
	t.Run("add is sent once", func(t *testing.T) {
		key := "core-metadata POST /api/v3/device"
		before := count(key)
		sim.Faults().FailRequests(503, 1)
		_, err := c.md.Devices.Add(ctx, newDevice("gpio-board-06", simulator.DemoServiceName, simulator.ProfileGPIO))
		wantError(t, err, edgex.KindUnavailable, 503)
		if n := count(key) - before; n != 1 {
			t.Errorf("%d add requests, want 1", n)
		}
	})
	t.Run("write is sent once", func(t *testing.T) {
		key := "core-command PUT /api/v3/device/name/{name}/{command}"
		before := count(key)
		sim.Faults().FailRequests(503, 1)
		wantError(t, c.cmd.Write(ctx, gpioBoard, "pin_17", map[string]string{"pin_17": "true"}), edgex.KindUnavailable, 503)
		if n := count(key) - before; n != 1 {
			t.Errorf("%d write requests, want 1", n)
		}
		if v, _ := sim.Value(gpioBoard, "pin_17"); v != "false" {
			t.Errorf("pin_17 is %q after a refused write", v)
		}
	})
}

func commandNames(cmds dtos.DeviceCoreCommand) []string {
	return namesOf(cmds.CoreCommands, func(c dtos.CoreCommand) string { return c.Name })
}

// A device's commands are what its profile offers; a changed profile or a
// device moved to another profile shows once the client is told to forget.
func TestDeviceCommandsFollowProfileChanges(t *testing.T) {
	sim := startDemo(t, simulator.Options{})
	c := newClients(t, clientOptions(sim))
	ctx := testContext(t)
	lookups := func() int64 { return sim.RequestCounts()["core-command GET /api/v3/device/name/{name}"] }

	cmds, err := c.cmd.DeviceCommands(ctx, gpioBoard)
	mustNot(t, err)
	if got := commandNames(cmds); !slices.Equal(got, []string{"pins", "pin_17", "pin_18", "pin_27"}) || cmds.ProfileName != simulator.ProfileGPIO {
		t.Fatalf("commands %v of profile %q", got, cmds.ProfileName)
	}
	for _, cc := range cmds.CoreCommands {
		wantSet := cc.Name == "pin_17" || cc.Name == "pin_18"
		if !cc.Get || cc.Set != wantSet || cc.Url != sim.CommandURL() || cc.Path != "/api/v3/device/name/gpio-board-01/"+cc.Name {
			t.Errorf("command %+v", cc)
		}
	}

	gpio := demoProfile(t, simulator.ProfileGPIO)
	gpio.DeviceResources = append(gpio.DeviceResources, dtos.DeviceResource{Name: "pin_22",
		Properties: dtos.ResourceProperties{ValueType: common.ValueTypeBool, ReadWrite: common.ReadWrite_RW, DefaultValue: "false"}})
	mustNot(t, firstErr(c.md.ReplaceProfiles(ctx, gpio)))
	before := lookups()
	cmds, err = c.cmd.DeviceCommands(ctx, gpioBoard)
	mustNot(t, err)
	if slices.Contains(commandNames(cmds), "pin_22") || lookups() != before {
		t.Errorf("commands %v after %d lookups; want the cached answer until told to forget", commandNames(cmds), lookups()-before)
	}
	c.cmd.ForgetProfile(simulator.ProfileGPIO)
	cmds, err = c.cmd.DeviceCommands(ctx, gpioBoard)
	mustNot(t, err)
	if !slices.Contains(commandNames(cmds), "pin_22") {
		t.Errorf("commands %v after ForgetProfile, want pin_22 among them", commandNames(cmds))
	}

	mustNot(t, firstErr(c.md.Profiles.Add(ctx, newProfile("Meter-v2"))))
	mustNot(t, firstErr(c.md.Devices.Update(ctx, dtos.UpdateDevice{Name: ptr(gpioBoard), ProfileName: ptr("Meter-v2")})))
	c.cmd.ForgetDevice(gpioBoard)
	cmds, err = c.cmd.DeviceCommands(ctx, gpioBoard)
	mustNot(t, err)
	if got := commandNames(cmds); !slices.Equal(got, []string{"register"}) || cmds.ProfileName != "Meter-v2" {
		t.Errorf("commands %v of profile %q after ForgetDevice, want the new profile's", got, cmds.ProfileName)
	}
}

// withTargetTemperature gives the demo sensor a writable Float32 set point.
func withTargetTemperature(t *testing.T, c clients) {
	t.Helper()
	sensor := demoProfile(t, simulator.ProfileSensor)
	lo, hi := 5.0, 35.0
	sensor.DeviceResources = append(sensor.DeviceResources, dtos.DeviceResource{Name: "target_temperature",
		Properties: dtos.ResourceProperties{ValueType: common.ValueTypeFloat32, ReadWrite: common.ReadWrite_RW,
			DefaultValue: "20", Units: "degC", Minimum: &lo, Maximum: &hi}})
	mustNot(t, firstErr(c.md.ReplaceProfiles(testContext(t), sensor)))
}

// What a user writes is what a read returns afterwards, in EdgeX's value
// format for the resource's type.
func TestWriteThenReadBack(t *testing.T) {
	sim := startDemo(t, simulator.Options{})
	c := newClients(t, clientOptions(sim))
	withTargetTemperature(t, c)
	cases := []struct {
		name, device, resource, value string
		valueType, readBack           string
	}{
		{"switch a GPIO pin on (Bool)", gpioBoard, "pin_17", "true", common.ValueTypeBool, "true"},
		{"and off again", gpioBoard, "pin_17", "false", common.ValueTypeBool, "false"},
		{"sample rate (Int32)", envSensor, "sample_rate", "250", common.ValueTypeInt32, "250"},
		{"target temperature (Float32)", envSensor, "target_temperature", "22.5", common.ValueTypeFloat32, "2.250000e+01"},
		{"camera stream (Bool)", camera, "streaming", "true", common.ValueTypeBool, "true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			mustNot(t, c.cmd.Write(ctx, tc.device, tc.resource, map[string]string{tc.resource: tc.value}))
			ev, err := c.cmd.Read(ctx, tc.device, tc.resource, edgex.ReadOptions{})
			mustNot(t, err)
			if ev.DeviceName != tc.device || len(ev.Readings) != 1 {
				t.Fatalf("read returned %+v", ev)
			}
			r := ev.Readings[0]
			if r.ResourceName != tc.resource || r.ValueType != tc.valueType || r.Value != tc.readBack {
				t.Errorf("reading %s %s = %q, want %s = %q", r.ResourceName, r.ValueType, r.Value, tc.valueType, tc.readBack)
			}
		})
	}
	t.Run("a device command reads several resources", func(t *testing.T) {
		ev, err := c.cmd.Read(testContext(t), envSensor, "environment", edgex.ReadOptions{})
		mustNot(t, err)
		got := map[string]string{}
		for _, r := range ev.Readings {
			got[r.ResourceName] = r.Value
		}
		if !maps.Equal(got, map[string]string{"temperature": "2.150000e+01", "humidity": "4.500000e+01"}) {
			t.Errorf("environment read %v", got)
		}
	})
	t.Run("asking for no event returns none", func(t *testing.T) {
		ev, err := c.cmd.Read(testContext(t), gpioBoard, "pin_17", edgex.ReadOptions{ReturnEvent: ptr(false)})
		mustNot(t, err)
		if ev.DeviceName != "" || len(ev.Readings) != 0 {
			t.Errorf("got event %+v", ev)
		}
	})
}

// A putURL as status shows it is honoured when it is this core-command's
// own; anything else is refused before a request leaves.
func TestPutURLOfCoreCommandIsHonoured(t *testing.T) {
	sim := startDemo(t, simulator.Options{})
	c := newClients(t, clientOptions(sim))
	ctx := testContext(t)
	cmds, err := c.cmd.DeviceCommands(ctx, gpioBoard)
	mustNot(t, err)
	i := slices.IndexFunc(cmds.CoreCommands, func(cc dtos.CoreCommand) bool { return cc.Name == "pin_18" })
	putURL := cmds.CoreCommands[i].Url + cmds.CoreCommands[i].Path
	if putURL != c.cmd.URL(gpioBoard, "pin_18") {
		t.Errorf("core-command offers %s, the client renders %s", putURL, c.cmd.URL(gpioBoard, "pin_18"))
	}
	mustNot(t, c.cmd.WriteURL(ctx, putURL, map[string]string{"pin_18": "true"}))
	if v, _ := sim.Value(gpioBoard, "pin_18"); v != "true" {
		t.Errorf("pin_18 is %q after the write", v)
	}

	refused := []string{
		"http://203.0.113.9:59882/api/v3/device/name/gpio-board-01/pin_18",
		putURL + "?ds-pushevent=true",
		strings.Replace(putURL, "/api/v3/device/name/", "/api/v3/device/", 1),
	}
	for _, u := range refused {
		before := sim.RequestCount()
		e := wantError(t, c.cmd.WriteURL(ctx, u, map[string]string{"pin_18": "false"}), edgex.KindInvalid, 0)
		if sim.RequestCount() != before {
			t.Errorf("%s: a request was sent (%v)", u, e)
		}
	}
	if v, _ := sim.Value(gpioBoard, "pin_18"); v != "true" {
		t.Errorf("pin_18 is %q after refused writes", v)
	}
}

// Secure-mode auth: the token file is followed as it is rotated, without a
// new client, while ping stays open as in EdgeX.
func TestTokenRotation(t *testing.T) {
	sim := startDemo(t, simulator.Options{Token: "token-one"})
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeToken := func(token string) {
		mustNot(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	}
	writeToken("token-one")
	opts := clientOptions(sim)
	opts.TokenFile = tokenFile
	c := newClients(t, opts)
	ctx := testContext(t)
	works := func(when string) {
		t.Helper()
		if _, err := c.md.Devices.Get(ctx, gpioBoard); err != nil {
			t.Fatalf("%s: get: %v", when, err)
		}
		if _, err := c.cmd.Read(ctx, gpioBoard, "pin_17", edgex.ReadOptions{}); err != nil {
			t.Fatalf("%s: read: %v", when, err)
		}
	}
	works("with the first token")

	sim.SetToken("token-two-is-longer")
	_, err := c.md.Devices.Get(ctx, gpioBoard)
	wantError(t, err, edgex.KindUnauthorized, 401)
	_, err = c.cmd.Read(ctx, gpioBoard, "pin_17", edgex.ReadOptions{})
	wantError(t, err, edgex.KindUnauthorized, 401)

	writeToken("token-two-is-longer")
	works("after the file was rewritten")

	// Kubernetes rotates a mounted secret by swapping in a new file.
	sim.SetToken("token-3-same-length")
	next := tokenFile + ".new"
	mustNot(t, os.WriteFile(next, []byte("token-3-same-length\n"), 0o600))
	mustNot(t, os.Rename(next, tokenFile))
	works("after the file was replaced")

	anonymous := newClients(t, clientOptions(sim))
	mustNot(t, anonymous.md.Ping(ctx))
	mustNot(t, anonymous.cmd.Ping(ctx))
	_, err = anonymous.md.Devices.Get(ctx, gpioBoard)
	wantError(t, err, edgex.KindUnauthorized, 401)
}

// eventLog collects events from the message bus for a test to wait on.
type eventLog struct {
	mu     sync.Mutex
	events []dtos.Event
	more   chan struct{}
}

func (l *eventLog) add(_ string, ev dtos.Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
	select {
	case l.more <- struct{}{}:
	default:
	}
}

// waitFor returns the first event of device once one arrived.
func (l *eventLog) waitFor(t *testing.T, device string) dtos.Event {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		i := slices.IndexFunc(l.events, func(ev dtos.Event) bool { return ev.DeviceName == device })
		var ev dtos.Event
		if i >= 0 {
			ev = l.events[i]
		}
		l.mu.Unlock()
		if i >= 0 {
			return ev
		}
		select {
		case <-l.more:
		case <-deadline.C:
			t.Fatalf("no event of %s within %s", device, waitTimeout)
		}
	}
}

// A read with PushEvent also publishes the event it returns; a plain read
// publishes nothing.
func TestReadWithPushEvent(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	sim := startDemo(t, simulator.Options{BrokerURL: b.URL()})
	c := newClients(t, clientOptions(sim))
	bus, err := messagebus.New(messagebus.Options{BrokerURL: b.URL(), MaxReconnectInterval: 500 * time.Millisecond})
	mustNot(t, err)
	t.Cleanup(bus.Close)
	log := &eventLog{more: make(chan struct{}, 1)}
	mustNot(t, bus.SubscribeEvents(log.add, func(topic string, err error) { log.add(topic, dtos.Event{DeviceName: "undecodable: " + err.Error()}) }))
	ctx := testContext(t)
	mustNot(t, bus.Start(ctx))
	mustNot(t, bus.WaitConnected(ctx))

	plain, err := c.cmd.Read(ctx, envSensor, "environment", edgex.ReadOptions{})
	mustNot(t, err)
	pushed, err := c.cmd.Read(ctx, envSensor, "environment", edgex.ReadOptions{PushEvent: true})
	mustNot(t, err)
	if plain.Id == pushed.Id {
		t.Fatalf("two reads returned the same event %s", plain.Id)
	}
	// Events leave the simulator in order, so had the plain read been
	// published it would arrive first.
	got := log.waitFor(t, envSensor)
	if got.Id != pushed.Id || got.Origin != pushed.Origin || len(got.Readings) != 2 {
		t.Errorf("first event on the bus %+v, want the pushed read %+v", got, pushed)
	}
	for i, r := range got.Readings {
		if r.Value != pushed.Readings[i].Value || r.ResourceName != pushed.Readings[i].ResourceName {
			t.Errorf("bus reading %+v, read returned %+v", r, pushed.Readings[i])
		}
	}
}
