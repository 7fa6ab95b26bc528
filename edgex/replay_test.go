package edgex

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"

	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// The conformance tests replay what a real EdgeX 3.1.1 answered (the
// captured exchanges) to the clients, after checking that the client sent
// the request that was captured.

type replayCase struct {
	file  string
	index int
	// run makes the client call that the captured request is, and checks
	// what the caller gets from the captured answer.
	run func(t *testing.T, md *Metadata, cmd *Command)
}

// unsendable are captured exchanges the clients cannot produce, on purpose.
var unsendable = map[string]string{
	"41-errors-and-patch.txt#2": "a POST body that is not an array",
}

var replayCases = []replayCase{
	{"01-deviceservice-all.txt", 0, func(t *testing.T, md *Metadata, _ *Command) {
		page, err := md.Services.ListPage(context.Background(), 0, 0)
		mustNot(t, err)
		if page.TotalCount != 1 || len(page.Items) != 1 || page.Items[0].Name != "device-virtual" || page.Items[0].BaseAddress != "http://127.0.0.1:59900" {
			t.Errorf("page = %+v", page)
		}
	}},
	{"02-deviceprofile-all.txt", 0, func(t *testing.T, md *Metadata, _ *Command) {
		page, err := md.Profiles.ListPage(context.Background(), 0, 2)
		mustNot(t, err)
		if page.TotalCount != 5 || len(page.Items) != 2 || page.Items[0].Name != "Random-Integer-Device" || len(page.Items[0].DeviceResources) != 16 {
			t.Errorf("total %d, %d items", page.TotalCount, len(page.Items))
		}
	}},
	{"03-device-all.txt", 0, func(t *testing.T, md *Metadata, _ *Command) {
		devices, err := md.Devices.List(context.Background())
		mustNot(t, err)
		if len(devices) != 5 || devices[0].Name != "Random-Boolean-Device" {
			t.Fatalf("got %d devices", len(devices))
		}
		if port := devices[0].Protocols["other"]["Port"]; port != json.Number("300") {
			t.Errorf("protocol Port = %#v, want the exact number 300", port)
		}
	}},
	{"10-deviceprofile-add.txt", 0, func(t *testing.T, md *Metadata, _ *Command) {
		results, err := md.Profiles.Add(context.Background(), capturedItems[dtos.DeviceProfile](t, "10-deviceprofile-add.txt", 0, "profile")...)
		mustNot(t, err)
		if len(results) != 1 || results[0].ID != "690e060d-4264-49f3-9902-f4beb4f7b33e" {
			t.Errorf("results = %+v", results)
		}
	}},
	{"11-deviceprofile-add-409.txt", 0, func(t *testing.T, md *Metadata, _ *Command) {
		results, err := md.Profiles.Add(context.Background(), capturedItems[dtos.DeviceProfile](t, "11-deviceprofile-add-409.txt", 0, "profile")...)
		wantItemError(t, results, err, 0, KindConflict, 409, "device profile name Test-GPIO-Sensor-Camera exists")
	}},
	{"12-deviceprofile-404.txt", 0, func(t *testing.T, md *Metadata, _ *Command) {
		_, err := md.Profiles.Get(context.Background(), "Does-Not-Exist")
		wantError(t, err, KindNotFound, 404, "fail to query device profile by name Does-Not-Exist")
	}},
	{"13-deviceprofile-get.txt", 0, func(t *testing.T, md *Metadata, _ *Command) {
		p, err := md.Profiles.Get(context.Background(), "Test-GPIO-Sensor-Camera")
		mustNot(t, err)
		if len(p.DeviceResources) != 4 || len(p.DeviceCommands) != 1 || p.DeviceCommands[0].Name != "sensors" {
			t.Fatalf("profile = %+v", p)
		}
		counter := p.DeviceResources[1].Properties
		if counter.Minimum == nil || *counter.Minimum != 0 || counter.Maximum == nil || *counter.Maximum != 1000 {
			t.Errorf("counter range = %v..%v", counter.Minimum, counter.Maximum)
		}
	}},
	{"20-device-add.txt", 0, func(t *testing.T, md *Metadata, _ *Command) {
		results, err := md.Devices.Add(context.Background(), capturedItems[dtos.Device](t, "20-device-add.txt", 0, "device")...)
		mustNot(t, err)
		if len(results) != 1 || results[0].ID != "c88102c4-9c38-4fcb-88c3-05ca961e6a48" {
			t.Errorf("results = %+v", results)
		}
	}},
	{"21-device-add-409.txt", 0, func(t *testing.T, md *Metadata, _ *Command) {
		results, err := md.Devices.Add(context.Background(), capturedItems[dtos.Device](t, "21-device-add-409.txt", 0, "device")...)
		wantItemError(t, results, err, 0, KindConflict, 409, "device name test-device-01 already exists")
	}},
	{"30-command-list-device.txt", 0, func(t *testing.T, _ *Metadata, cmd *Command) {
		dc, err := cmd.DeviceCommands(context.Background(), "test-device-01")
		mustNot(t, err)
		if dc.ProfileName != "Test-GPIO-Sensor-Camera" || len(dc.CoreCommands) != 5 {
			t.Fatalf("commands = %+v", dc)
		}
		if gpio := dc.CoreCommands[3]; gpio.Name != "gpio_out_1" || !gpio.Get || !gpio.Set {
			t.Errorf("gpio_out_1 = %+v", gpio)
		}
	}},
	{"31-command-get-bool.txt", 0, func(t *testing.T, _ *Metadata, cmd *Command) {
		ev, err := cmd.Read(context.Background(), "test-device-01", "gpio_out_1", ReadOptions{})
		mustNot(t, err)
		wantReadings(t, ev, "gpio_out_1=false")
	}},
	{"32-command-get-sensors.txt", 0, func(t *testing.T, _ *Metadata, cmd *Command) {
		ev, err := cmd.Read(context.Background(), "test-device-01", "sensors", ReadOptions{})
		mustNot(t, err)
		wantReadings(t, ev, "counter=10", "temperature=4.042320e+01")
	}},
	{"33-command-put-bool.txt", 0, func(t *testing.T, _ *Metadata, cmd *Command) {
		mustNot(t, cmd.Write(context.Background(), "test-device-01", "gpio_out_1", map[string]string{"gpio_out_1": "true"}))
	}},
	{"34-command-put-int.txt", 0, func(t *testing.T, _ *Metadata, cmd *Command) {
		mustNot(t, cmd.Write(context.Background(), "test-device-01", "counter", map[string]string{"counter": "42"}))
	}},
	{"35-command-get-int-pushevent.txt", 0, func(t *testing.T, _ *Metadata, cmd *Command) {
		ev, err := cmd.Read(context.Background(), "test-device-01", "counter", ReadOptions{PushEvent: true})
		mustNot(t, err)
		wantReadings(t, ev, "counter=42")
	}},
	{"40-errors.txt", 0, func(t *testing.T, _ *Metadata, cmd *Command) {
		_, err := cmd.Read(context.Background(), "no-such-device", "gpio_out_1", ReadOptions{})
		wantError(t, err, KindNotFound, 404, "")
	}},
	{"40-errors.txt", 1, func(t *testing.T, _ *Metadata, cmd *Command) {
		_, err := cmd.Read(context.Background(), "test-device-01", "no_such_command", ReadOptions{})
		wantError(t, err, KindNotFound, 404, "")
	}},
	{"40-errors.txt", 2, func(t *testing.T, _ *Metadata, cmd *Command) {
		err := cmd.Write(context.Background(), "test-device-01", "temperature", map[string]string{"temperature": "1.0"})
		wantError(t, err, KindNotAllowed, 405, "")
	}},
	{"40-errors.txt", 3, func(t *testing.T, _ *Metadata, cmd *Command) {
		err := cmd.Write(context.Background(), "test-device-01", "gpio_out_1", map[string]string{"gpio_out_1": "notabool"})
		wantError(t, err, KindInternal, 500, "")
	}},
	{"40-errors.txt", 4, func(t *testing.T, md *Metadata, _ *Command) {
		_, err := md.Devices.Get(context.Background(), "no-such-device")
		wantError(t, err, KindNotFound, 404, "fail to query device by name no-such-device")
	}},
	{"40-errors.txt", 5, func(t *testing.T, _ *Metadata, cmd *Command) {
		_, err := cmd.DeviceCommands(context.Background(), "no-such-device")
		wantError(t, err, KindNotFound, 404, "")
	}},
	{"41-errors-and-patch.txt", 0, func(t *testing.T, md *Metadata, _ *Command) {
		results, err := md.Devices.Add(context.Background(), capturedItems[dtos.Device](t, "41-errors-and-patch.txt", 0, "device")...)
		wantItemError(t, results, err, 0, KindNotFound, 404, "device profile 'No-Such-Profile' does not exists")
	}},
	{"41-errors-and-patch.txt", 1, func(t *testing.T, md *Metadata, _ *Command) {
		results, err := md.Devices.Add(context.Background(), capturedItems[dtos.Device](t, "41-errors-and-patch.txt", 1, "device")...)
		wantItemError(t, results, err, 0, KindInvalid, 400, "device service 'no-such-service' does not exists")
	}},
	{"41-errors-and-patch.txt", 3, func(t *testing.T, md *Metadata, _ *Command) {
		results, err := md.Devices.Update(context.Background(), capturedItems[dtos.UpdateDevice](t, "41-errors-and-patch.txt", 3, "device")...)
		mustNot(t, err)
		if len(results) != 1 || results[0].Err != nil {
			t.Errorf("results = %+v", results)
		}
	}},
	{"41-errors-and-patch.txt", 4, func(t *testing.T, _ *Metadata, cmd *Command) {
		_, err := cmd.Read(context.Background(), "test-device-01", "gpio_out_1", ReadOptions{})
		wantError(t, err, KindLocked, 423, "")
	}},
	{"41-errors-and-patch.txt", 5, func(t *testing.T, md *Metadata, _ *Command) {
		_, err := md.Devices.Update(context.Background(), capturedItems[dtos.UpdateDevice](t, "41-errors-and-patch.txt", 5, "device")...)
		mustNot(t, err)
	}},
	{"42-delete.txt", 0, func(t *testing.T, md *Metadata, _ *Command) {
		mustNot(t, md.Devices.Delete(context.Background(), "test-device-01"))
	}},
	{"42-delete.txt", 1, func(t *testing.T, md *Metadata, _ *Command) {
		err := md.Devices.Delete(context.Background(), "test-device-01")
		wantError(t, err, KindNotFound, 404, "fail to query device by name test-device-01")
	}},
	{"42-delete.txt", 2, func(t *testing.T, md *Metadata, _ *Command) {
		mustNot(t, md.Profiles.Delete(context.Background(), "Test-GPIO-Sensor-Camera"))
	}},
}

func TestReplayCapturedExchanges(t *testing.T) {
	for _, tc := range replayCases {
		ex := capturedExchange(t, tc.file, tc.index)
		t.Run(fmt.Sprintf("%s#%d %s %s", tc.file, tc.index, ex.Method, ex.URL), func(t *testing.T) {
			var hits atomic.Int32
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if problem := requestDiffers(ex, r); problem != "" {
					t.Errorf("request differs from the captured one: %s", problem)
					answer(w, http.StatusTeapot, `{"apiVersion":"v3","message":"not the captured request","statusCode":418}`)
					return
				}
				answer(w, ex.Status, ex.ResponseBody)
			})
			opts := fastOptions(srv.URL, srv.URL)
			tc.run(t, newMetadata(t, opts), newCommand(t, opts))
			if n := hits.Load(); n != 1 {
				t.Errorf("the server saw %d requests, want exactly the captured one", n)
			}
		})
	}
}

func TestReplayCoversEveryCapturedExchange(t *testing.T) {
	all, err := captures.Exchanges()
	mustNot(t, err)
	covered := map[string]bool{}
	for _, tc := range replayCases {
		covered[fmt.Sprintf("%s#%d", tc.file, tc.index)] = true
	}
	for _, ex := range all {
		key := fmt.Sprintf("%s#%d", ex.File, ex.Index)
		if !covered[key] && unsendable[key] == "" {
			t.Errorf("captured exchange %s (%s %s) has no replay case", key, ex.Method, ex.URL)
		}
	}
}

// TestReplayBinaryRead reads the captured camera snapshot, whose base64
// binaryValue must come back as the original bytes.
func TestReplayBinaryRead(t *testing.T) {
	body, err := captures.File("exchanges/36-command-get-binary.body")
	mustNot(t, err)
	var raw struct {
		Event struct {
			Readings []struct {
				BinaryValue string `json:"binaryValue"`
			} `json:"readings"`
		} `json:"event"`
	}
	mustNot(t, json.Unmarshal(body, &raw))
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v3/device/name/test-device-01/snapshot" {
			t.Errorf("path %s", r.URL.Path)
		}
		answer(w, http.StatusOK, string(body))
	})
	cmd := newCommand(t, fastOptions(srv.URL, srv.URL))
	ev, err := cmd.Read(context.Background(), "test-device-01", "snapshot", ReadOptions{})
	mustNot(t, err)
	if len(ev.Readings) != 1 || ev.Readings[0].MediaType != "image/jpeg" {
		t.Fatalf("readings = %d", len(ev.Readings))
	}
	got := ev.Readings[0].BinaryValue
	if len(got) == 0 || base64.StdEncoding.EncodeToString(got) != raw.Event.Readings[0].BinaryValue {
		t.Errorf("binary value of %d bytes does not match the captured base64", len(got))
	}
}

func capturedExchange(t *testing.T, file string, index int) captures.Exchange {
	t.Helper()
	all, err := captures.Exchanges()
	mustNot(t, err)
	for _, ex := range all {
		if ex.File == file && ex.Index == index {
			return ex
		}
	}
	t.Fatalf("no captured exchange %s#%d", file, index)
	return captures.Exchange{}
}

// capturedItems decodes the items of a captured batch request body.
func capturedItems[T any](t *testing.T, file string, index int, field string) []T {
	t.Helper()
	ex := capturedExchange(t, file, index)
	var reqs []map[string]json.RawMessage
	mustNot(t, json.Unmarshal([]byte(ex.Body), &reqs))
	items := make([]T, len(reqs))
	for i, req := range reqs {
		mustNot(t, decodeJSON(req[field], &items[i]))
	}
	return items
}

// requestDiffers compares a received request with the captured one:
// method, escaped path, every captured query parameter, and the body as
// JSON meaning (fields EdgeX treats as absent when zero are ignored, and so
// is the requestId a client adds).
func requestDiffers(ex captures.Exchange, r *http.Request) string {
	want, err := url.Parse(ex.URL)
	if err != nil {
		return err.Error()
	}
	if r.Method != ex.Method {
		return fmt.Sprintf("method %s, captured %s", r.Method, ex.Method)
	}
	if r.URL.EscapedPath() != want.EscapedPath() {
		return fmt.Sprintf("path %s, captured %s", r.URL.EscapedPath(), want.EscapedPath())
	}
	for k, v := range want.Query() {
		if got := r.URL.Query()[k]; !reflect.DeepEqual(got, v) {
			return fmt.Sprintf("query %s=%v, captured %v", k, got, v)
		}
	}
	if q := r.URL.Query().Get("limit"); q == "-1" {
		return "limit=-1"
	}
	body, _ := io.ReadAll(r.Body)
	if ex.Body == "" {
		if len(bytes.TrimSpace(body)) != 0 {
			return "a body where none was captured"
		}
		return ""
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return "Content-Type " + ct
	}
	got, err1 := jsonMeaning(body)
	captured, err2 := jsonMeaning([]byte(ex.Body))
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("body does not decode: %v %v", err1, err2)
	}
	if !reflect.DeepEqual(got, captured) {
		return fmt.Sprintf("body %s, captured %s", body, ex.Body)
	}
	return ""
}

func jsonMeaning(data []byte) (any, error) {
	var v any
	if err := decodeJSON(data, &v); err != nil {
		return nil, err
	}
	return dropZeros(v), nil
}

// dropZeros removes what Go's omitempty and curl's hand-written JSON
// disagree on: zero values, nulls, and the generated requestId.
func dropZeros(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			if e = dropZeros(e); e != nil && k != "requestId" {
				out[k] = e
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		if len(v) == 0 {
			return nil
		}
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = dropZeros(e)
		}
		return out
	case json.Number:
		f, err := v.Float64()
		if err != nil || f == 0 || math.IsNaN(f) {
			return nil
		}
		return f
	case string:
		if v == "" {
			return nil
		}
		return v
	case bool:
		if !v {
			return nil
		}
		return v
	}
	return v
}

func mustNot(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// wantError checks an error's kind, status and (when given) EdgeX message.
func wantError(t *testing.T, err error, kind ErrorKind, status int, message string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *edgex.Error", err, err)
	}
	if e.Kind != kind || e.StatusCode != status {
		t.Errorf("got %s (%d), want %s (%d): %v", e.Kind, e.StatusCode, kind, status, err)
	}
	if message != "" && e.Message != message {
		t.Errorf("message %q, want %q", e.Message, message)
	}
	if e.Op == "" {
		t.Errorf("error has no operation: %v", err)
	}
}

func wantItemError(t *testing.T, results []Result, err error, i int, kind ErrorKind, status int, message string) {
	t.Helper()
	if len(results) <= i {
		t.Fatalf("%d results, want item %d (err %v)", len(results), i, err)
	}
	wantError(t, results[i].Err, kind, status, message)
	if KindOf(err) != kind {
		t.Errorf("call error %v does not carry the item's kind %s", err, kind)
	}
}

func wantReadings(t *testing.T, ev dtos.Event, want ...string) {
	t.Helper()
	var got []string
	for _, r := range ev.Readings {
		got = append(got, r.ResourceName+"="+r.Value)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readings %v, want %v", got, want)
	}
}
