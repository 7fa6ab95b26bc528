package edgex

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// commandServer answers core-command's device command list for any device,
// naming its profile as profileOf says, and counts lookups per device.
type commandServer struct {
	mu        sync.Mutex
	lookups   map[string]int
	profileOf func(device string) string
}

func (s *commandServer) handler(w http.ResponseWriter, r *http.Request) {
	device, _ := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/api/v3/device/name/"))
	s.mu.Lock()
	s.lookups[device]++
	s.mu.Unlock()
	answer(w, 200, fmt.Sprintf(`{"apiVersion":"v3","statusCode":200,"deviceCoreCommand":{"deviceName":%q,"profileName":%q,
		"coreCommands":[{"name":"gpio_out_1","get":true,"set":true,"path":"/api/v3/device/name/%s/gpio_out_1","url":"http://127.0.0.1:59882",
		"parameters":[{"resourceName":"gpio_out_1","valueType":"Bool"}]}]}}`, device, s.profileOf(device), device))
}

func (s *commandServer) count(device string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups[device]
}

func TestDeviceCommandsAreCachedUntilForgotten(t *testing.T) {
	cs := &commandServer{lookups: map[string]int{}, profileOf: func(d string) string {
		if d == "camera-1" {
			return "Camera"
		}
		return "GPIO"
	}}
	srv := serve(t, cs.handler)
	cmd := newCommand(t, fastOptions("", srv.URL))
	lookup := func(device string) {
		t.Helper()
		dc, err := cmd.DeviceCommands(context.Background(), device)
		mustNot(t, err)
		if dc.DeviceName != device || len(dc.CoreCommands) != 1 || len(dc.CoreCommands[0].Parameters) != 1 {
			t.Fatalf("commands %+v", dc)
		}
		dc.CoreCommands[0].Parameters[0].ValueType = "edited by the caller"
	}
	steps := []struct {
		name   string
		do     func()
		device string
		want   int // lookups EdgeX has seen for device afterwards
	}{
		{"first lookup asks EdgeX", func() { lookup("gpio-1") }, "gpio-1", 1},
		{"second lookup is cached", func() { lookup("gpio-1") }, "gpio-1", 1},
		{"another device is asked for", func() { lookup("camera-1") }, "camera-1", 1},
		{"forgetting the device asks again", func() { cmd.ForgetDevice("gpio-1"); lookup("gpio-1") }, "gpio-1", 2},
		{"forgetting another profile keeps the cache", func() { cmd.ForgetProfile("Camera"); lookup("gpio-1") }, "gpio-1", 2},
		{"forgetting its profile asks again", func() { cmd.ForgetProfile("GPIO"); lookup("gpio-1") }, "gpio-1", 3},
		{"the camera of the forgotten Camera profile is asked again", func() { lookup("camera-1") }, "camera-1", 2},
	}
	for _, st := range steps {
		st.do()
		if got := cs.count(st.device); got != st.want {
			t.Errorf("%s: EdgeX saw %d lookups of %s, want %d", st.name, got, st.device, st.want)
		}
	}
	dc, err := cmd.DeviceCommands(context.Background(), "gpio-1")
	mustNot(t, err)
	if dc.CoreCommands[0].Parameters[0].ValueType != "Bool" {
		t.Error("a caller's edit leaked into the cache")
	}
}

func TestForgetDuringALookupKeepsTheStaleAnswerOut(t *testing.T) {
	inLookup, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	cs := &commandServer{lookups: map[string]int{}, profileOf: func(string) string { return "GPIO" }}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		first.Do(func() {
			close(inLookup)
			<-release
		})
		cs.handler(w, r)
	})
	cmd := newCommand(t, fastOptions("", srv.URL))
	done := make(chan error, 1)
	go func() {
		_, err := cmd.DeviceCommands(context.Background(), "gpio-1")
		done <- err
	}()
	<-inLookup
	cmd.ForgetProfile("GPIO") // the profile changed while EdgeX was answering
	close(release)
	mustNot(t, <-done)
	_, err := cmd.DeviceCommands(context.Background(), "gpio-1")
	mustNot(t, err)
	if n := cs.count("gpio-1"); n != 2 {
		t.Errorf("EdgeX saw %d lookups, want 2: the answer from before the change must not be cached", n)
	}
}

func TestReadOptionsBecomeQueryParameters(t *testing.T) {
	no, yes := false, true
	cases := []struct {
		name      string
		opts      ReadOptions
		body      string
		wantQuery string
		wantEvent bool
	}{
		{"defaults", ReadOptions{}, eventBody, "", true},
		{"push the event too", ReadOptions{PushEvent: true}, eventBody, "ds-pushevent=true", true},
		{"ask for the event explicitly", ReadOptions{ReturnEvent: &yes}, eventBody, "ds-returnevent=true", true},
		{"push only, no event back", ReadOptions{PushEvent: true, ReturnEvent: &no}, `{"apiVersion":"v3","statusCode":200}`, "ds-pushevent=true&ds-returnevent=false", false},
		{"no event back, empty answer", ReadOptions{ReturnEvent: &no}, ``, "ds-returnevent=false", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &seen{}
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				rec.record(r)
				answer(w, 200, tc.body)
			})
			ev, err := newCommand(t, fastOptions("", srv.URL)).Read(context.Background(), "test-device-01", "gpio_out_1", tc.opts)
			mustNot(t, err)
			got := rec.all()[0]
			if got.Method != http.MethodGet || got.Path != "/api/v3/device/name/test-device-01/gpio_out_1" || got.Query != tc.wantQuery {
				t.Errorf("sent %s %s?%s, want query %q", got.Method, got.Path, got.Query, tc.wantQuery)
			}
			if hasEvent := len(ev.Readings) == 1; hasEvent != tc.wantEvent {
				t.Errorf("event %+v, want one: %v", ev, tc.wantEvent)
			}
		})
	}
}

const eventBody = `{"apiVersion":"v3","statusCode":200,"event":{"apiVersion":"v3","id":"00ddfd70-13fe-48a1-93ba-f5ffb4f06ca9","deviceName":"test-device-01","profileName":"Test-GPIO-Sensor-Camera","sourceName":"gpio_out_1","origin":1795315805850829874,"readings":[{"id":"dd619e75-76f1-478c-8a5e-8418f6177b54","origin":1795315805850829874,"deviceName":"test-device-01","resourceName":"gpio_out_1","profileName":"Test-GPIO-Sensor-Camera","valueType":"Bool","value":"false"}]}}`

func TestReadWithoutTheExpectedEventIsMalformed(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { answer(w, 200, `{"apiVersion":"v3","statusCode":200}`) })
	_, err := newCommand(t, fastOptions("", srv.URL)).Read(context.Background(), "d", "c", ReadOptions{})
	wantError(t, err, KindMalformed, 200, "")
}

func TestWriteSendsResourceValues(t *testing.T) {
	rec := &seen{}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		answer(w, 200, `{"apiVersion":"v3","statusCode":200}`)
	})
	cmd := newCommand(t, fastOptions("", srv.URL))
	mustNot(t, cmd.Write(context.Background(), "test-device-01", "sensors", map[string]string{"counter": "42", "gpio_out_1": "true"}))
	got := rec.all()[0]
	if got.Method != http.MethodPut || got.Path != "/api/v3/device/name/test-device-01/sensors" || got.Body != `{"counter":"42","gpio_out_1":"true"}` {
		t.Errorf("sent %s %s %s", got.Method, got.Path, got.Body)
	}
	wantError(t, cmd.Write(context.Background(), "test-device-01", "sensors", nil), KindInvalid, 0, "")
	if rec.count() != 1 {
		t.Error("a write without values was sent")
	}
}

func TestWriteURLHonoursOnlyCoreCommandURLs(t *testing.T) {
	rec := &seen{}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		answer(w, 200, `{"apiVersion":"v3","statusCode":200}`)
	})
	base, _ := url.Parse(srv.URL)
	port := base.Port()
	cmd := newCommand(t, fastOptions("", srv.URL))
	cases := []struct {
		name     string
		putURL   string
		wantPath string // "" when the URL must be refused
	}{
		{"the URL status shows", cmd.URL("test-device-01", "gpio_out_1"), "/api/v3/device/name/test-device-01/gpio_out_1"},
		{"escaped names", cmd.URL("cam/1 a", "snap?x"), "/api/v3/device/name/cam%2F1%20a/snap%3Fx"},
		{"scheme in capitals", "HTTP://127.0.0.1:" + port + "/api/v3/device/name/d/c", "/api/v3/device/name/d/c"},
		{"another host", "http://203.0.113.7:" + port + "/api/v3/device/name/d/c", ""},
		{"another port", "http://127.0.0.1:1/api/v3/device/name/d/c", ""},
		{"https instead of http", "https://127.0.0.1:" + port + "/api/v3/device/name/d/c", ""},
		{"credentials", "http://u:p@127.0.0.1:" + port + "/api/v3/device/name/d/c", ""},
		{"a query", srv.URL + "/api/v3/device/name/d/c?ds-pushevent=true", ""},
		{"a fragment", srv.URL + "/api/v3/device/name/d/c#x", ""},
		{"another API", srv.URL + "/api/v3/device/name/d", ""},
		{"core-metadata's route", srv.URL + "/api/v3/device/d/c", ""},
		{"extra segment", srv.URL + "/api/v3/device/name/d/c/x", ""},
		{"dot-dot segment", srv.URL + "/api/v3/device/name/../c", ""},
		{"empty device", srv.URL + "/api/v3/device/name//c", ""},
		{"relative URL", "/api/v3/device/name/d/c", ""},
		{"not a URL", "http://[::1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := rec.count()
			err := cmd.WriteURL(context.Background(), tc.putURL, map[string]string{"x": "1"})
			if tc.wantPath == "" {
				wantError(t, err, KindInvalid, 0, "")
				if rec.count() != before {
					t.Error("a refused URL was sent to")
				}
				return
			}
			mustNot(t, err)
			if got := rec.all()[before]; got.Path != tc.wantPath || got.Method != http.MethodPut {
				t.Errorf("sent %s %s, want PUT %s", got.Method, got.Path, tc.wantPath)
			}
		})
	}
}

func TestCommandURLKeepsAGatewayPrefix(t *testing.T) {
	rec := &seen{}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		answer(w, 200, `{"apiVersion":"v3","statusCode":200}`)
	})
	cmd := newCommand(t, fastOptions("", srv.URL+"/core-command/"))
	u := cmd.URL("d", "c")
	if u != srv.URL+"/core-command/api/v3/device/name/d/c" {
		t.Errorf("URL %s", u)
	}
	mustNot(t, cmd.WriteURL(context.Background(), u, map[string]string{"c": "1"}))
	wantError(t, cmd.WriteURL(context.Background(), srv.URL+"/api/v3/device/name/d/c", map[string]string{"c": "1"}), KindInvalid, 0, "")
	if got := rec.all(); len(got) != 1 || got[0].Path != "/core-command/api/v3/device/name/d/c" {
		t.Errorf("sent %+v", got)
	}
}
