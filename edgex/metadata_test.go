package edgex

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
)

// deviceList serves /api/v3/device/all from a list of names, honouring
// offset and limit like core-metadata; page(offset) may override an answer.
func deviceList(t *testing.T, names []string, rec *seen, override func(offset int) (int, string, bool)) *httptest.Server {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		if r.URL.Path != "/api/v3/device/all" {
			answer(w, http.StatusNotFound, `{"apiVersion":"v3","message":"no route","statusCode":404}`)
			return
		}
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if override != nil {
			if status, body, ok := override(offset); ok {
				answer(w, status, body)
				return
			}
		}
		answer(w, http.StatusOK, devicePage(names, offset, limit, len(names)))
	})
}

func devicePage(names []string, offset, limit, total int) string {
	end := min(offset+limit, len(names))
	var items []string
	for _, n := range names[min(offset, end):end] {
		items = append(items, fmt.Sprintf(`{"name":%q,"serviceName":"device-virtual","profileName":"p","adminState":"UNLOCKED","operatingState":"UP","protocols":{"other":{"Address":%q}}}`, n, n))
	}
	return fmt.Sprintf(`{"apiVersion":"v3","statusCode":200,"totalCount":%d,"devices":[%s]}`, total, strings.Join(items, ","))
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("dev-%02d", i)
	}
	return out
}

func TestListFollowsTotalCountPageByPage(t *testing.T) {
	cases := []struct {
		name        string
		devices     int
		pageSize    int
		wantQueries []string
	}{
		{"no devices", 0, 3, []string{"limit=3&offset=0"}},
		{"one short page", 2, 3, []string{"limit=3&offset=0"}},
		{"exactly one page", 3, 3, []string{"limit=3&offset=0"}},
		// Pages after the first start one item early to check the overlap.
		{"several pages, last one short", 7, 3, []string{"limit=3&offset=0", "limit=3&offset=2", "limit=3&offset=4"}},
		{"default page size", 7, 0, []string{"limit=500&offset=0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &seen{}
			srv := deviceList(t, names(tc.devices), rec, nil)
			opts := fastOptions(srv.URL, "")
			opts.PageSize = tc.pageSize
			got, err := newMetadata(t, opts).Devices.List(context.Background())
			mustNot(t, err)
			if got == nil || len(got) != tc.devices {
				t.Fatalf("listed %d devices (nil: %v), want %d", len(got), got == nil, tc.devices)
			}
			for i, d := range got {
				if d.Name != names(tc.devices)[i] {
					t.Errorf("device %d is %q", i, d.Name)
				}
			}
			var queries []string
			for _, r := range rec.all() {
				queries = append(queries, r.Query)
			}
			if !reflect.DeepEqual(queries, tc.wantQueries) {
				t.Errorf("queries %v, want %v", queries, tc.wantQueries)
			}
		})
	}
}

// A list is evidence that objects are gone, so any page that fails or does
// not add up fails the whole list instead of shortening it.
func TestListFailsWholeOnAnyBadPage(t *testing.T) {
	const total = 7
	cases := []struct {
		name     string
		override func(offset int) (int, string, bool)
		want     ErrorKind
	}{
		{"second page is a 500", func(o int) (int, string, bool) {
			return 500, `{"apiVersion":"v3","message":"redis down","statusCode":500}`, o == 2
		}, KindInternal},
		{"second page is truncated", func(o int) (int, string, bool) {
			return 200, devicePage(names(total), 2, 3, total)[:40], o == 2
		}, KindMalformed},
		{"second page is an error envelope with 200", func(o int) (int, string, bool) {
			return 200, `{"apiVersion":"v3","message":"query failed","statusCode":500}`, o == 2
		}, KindMalformed},
		{"second page has no devices field", func(o int) (int, string, bool) {
			return 200, `{"apiVersion":"v3","statusCode":200,"totalCount":7}`, o == 2
		}, KindMalformed},
		{"second page has no totalCount", func(o int) (int, string, bool) {
			return 200, `{"apiVersion":"v3","statusCode":200,"devices":[]}`, o == 2
		}, KindMalformed},
		{"first page is an empty object", func(o int) (int, string, bool) {
			return 200, `{}`, true
		}, KindMalformed},
		{"page is empty before totalCount is reached", func(o int) (int, string, bool) {
			return 200, devicePage(nil, 0, 3, total), o == 2
		}, KindMalformed},
		{"totalCount changes on every page", func(o int) (int, string, bool) {
			return 200, devicePage(names(total), o, 3, total+o), true
		}, KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := deviceList(t, names(total), &seen{}, tc.override)
			opts := fastOptions(srv.URL, "")
			opts.PageSize = 3
			got, err := newMetadata(t, opts).Devices.List(context.Background())
			if got != nil {
				t.Errorf("got a list of %d devices along with the failure", len(got))
			}
			if KindOf(err) != tc.want {
				t.Errorf("error %v, want kind %s", err, tc.want)
			}
		})
	}
}

func TestListStartsOverWhenTheListChanges(t *testing.T) {
	var calls atomic.Int32
	before, after := names(5), names(6)
	rec := &seen{}
	srv := deviceList(t, nil, rec, func(offset int) (int, string, bool) {
		// The first pass sees 5 devices on page one and 6 on page two.
		if calls.Add(1) == 1 {
			return 200, devicePage(before, offset, 3, len(before)), true
		}
		return 200, devicePage(after, offset, 3, len(after)), true
	})
	opts := fastOptions(srv.URL, "")
	opts.PageSize = 3
	got, err := newMetadata(t, opts).Devices.List(context.Background())
	mustNot(t, err)
	if len(got) != 6 {
		t.Errorf("listed %d devices, want the 6 of a consistent pass", len(got))
	}
	if n := rec.count(); n != 5 {
		t.Errorf("%d page requests, want 2 for the changed pass and 3 (overlapping) for the fresh one", n)
	}
}

func TestListPageRefusesNegativeOffset(t *testing.T) {
	rec := &seen{}
	srv := deviceList(t, names(3), rec, nil)
	_, err := newMetadata(t, fastOptions(srv.URL, "")).Devices.ListPage(context.Background(), -1, 10)
	wantError(t, err, KindInvalid, 0, "")
	if rec.count() != 0 {
		t.Error("a request was sent")
	}
}

// batchServer answers every batch call with the given 207 body and records
// what was sent.
func batchServer(t *testing.T, rec *seen, status int, body string) *httptest.Server {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		answer(w, status, body)
	})
}

func testDevice(name string) dtos.Device {
	return dtos.Device{Name: name, ServiceName: "device-virtual", ProfileName: "Test-GPIO-Sensor-Camera",
		AdminState: "UNLOCKED", OperatingState: "UP", Protocols: map[string]dtos.ProtocolProperties{"other": {"Address": name}}}
}

func TestAddChecksEveryItemOfTheMultiStatus(t *testing.T) {
	rec := &seen{}
	srv := batchServer(t, rec, http.StatusMultiStatus, `[
		{"apiVersion":"v3","statusCode":201,"id":"id-ok"},
		{"apiVersion":"v3","message":"device name dup already exists","statusCode":409},
		{"apiVersion":"v3","message":"device profile 'nope' does not exists","statusCode":404},
		{"apiVersion":"v3","message":"device service 'gone' does not exists","statusCode":400},
		{"apiVersion":"v3","statusCode":201,"id":"id-ok-2"}]`)
	md := newMetadata(t, fastOptions(srv.URL, ""))
	results, err := md.Devices.Add(context.Background(), testDevice("ok"), testDevice("dup"), testDevice("bad-profile"), testDevice("bad-service"), testDevice("ok-2"))
	if err == nil {
		t.Fatal("no error although three items failed")
	}
	if len(results) != 5 {
		t.Fatalf("%d results for 5 items", len(results))
	}
	if results[0].ID != "id-ok" || results[0].Err != nil || results[4].ID != "id-ok-2" || results[4].Err != nil {
		t.Errorf("successful items: %+v %+v", results[0], results[4])
	}
	wantError(t, results[1].Err, KindConflict, 409, "device name dup already exists")
	wantError(t, results[2].Err, KindNotFound, 404, "device profile 'nope' does not exists")
	wantError(t, results[3].Err, KindInvalid, 400, "device service 'gone' does not exists")
	if !strings.Contains(results[1].Err.Error(), `add device "dup"`) {
		t.Errorf("item error does not name the item: %v", results[1].Err)
	}
	if rec.count() != 1 {
		t.Errorf("%d requests, want one batch", rec.count())
	}
}

func TestBatchAnswersThatDoNotAddUp(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   ErrorKind
	}{
		{"fewer results than items", 207, `[{"apiVersion":"v3","statusCode":201,"id":"a"}]`, KindMalformed},
		{"an error envelope instead of results", 207, `{"apiVersion":"v3","message":"boom","statusCode":500}`, KindMalformed},
		{"truncated results", 207, `[{"apiVersion":"v3","statusCode":201,"id":"a"},{"apiV`, KindMalformed},
		{"the whole batch refused", 400, `{"apiVersion":"v3","message":"Failed to unmarshal request body as JSON.","statusCode":400}`, KindInvalid},
		{"not an array, as EdgeX says it", 500, `{"apiVersion":"v3","message":"json: cannot unmarshal object into Go value of type []requests.AddDeviceRequest","statusCode":500}`, KindInternal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := batchServer(t, &seen{}, tc.status, tc.body)
			results, err := newMetadata(t, fastOptions(srv.URL, "")).Devices.Add(context.Background(), testDevice("a"), testDevice("b"))
			if results != nil {
				t.Errorf("results %+v along with a failed call", results)
			}
			if KindOf(err) != tc.want {
				t.Errorf("error %v, want %s", err, tc.want)
			}
		})
	}
}

// One invalid item would make EdgeX refuse the whole batch, so it is
// answered locally and the others still go.
func TestAddLeavesInvalidItemsOutOfTheBatch(t *testing.T) {
	rec := &seen{}
	srv := batchServer(t, rec, 207, `[{"apiVersion":"v3","statusCode":201,"id":"id-a"}]`)
	md := newMetadata(t, fastOptions(srv.URL, ""))
	invalid := testDevice("no-service")
	invalid.ServiceName = ""
	results, err := md.Devices.Add(context.Background(), invalid, testDevice("a"))
	if len(results) != 2 || results[1].ID != "id-a" {
		t.Fatalf("results %+v", results)
	}
	wantError(t, results[0].Err, KindInvalid, 0, "")
	if KindOf(err) != KindInvalid {
		t.Errorf("call error %v", err)
	}
	var sent []map[string]json.RawMessage
	mustNot(t, json.Unmarshal([]byte(rec.all()[0].Body), &sent))
	if len(sent) != 1 || !strings.Contains(string(sent[0]["device"]), `"name":"a"`) {
		t.Errorf("sent %s, want only device a", rec.all()[0].Body)
	}
}

func TestUpdateRoutesPerKind(t *testing.T) {
	name := "x"
	cases := []struct {
		name      string
		update    func(md *Metadata) ([]Result, error)
		wantPath  string
		wantField string
	}{
		{"device", func(md *Metadata) ([]Result, error) {
			return md.Devices.Update(context.Background(), dtos.UpdateDevice{Name: &name})
		}, "/api/v3/device", "device"},
		{"device service", func(md *Metadata) ([]Result, error) {
			return md.Services.Update(context.Background(), dtos.UpdateDeviceService{Name: &name})
		}, "/api/v3/deviceservice", "service"},
		{"device profile basic info", func(md *Metadata) ([]Result, error) {
			return md.Profiles.Update(context.Background(), dtos.UpdateDeviceProfileBasicInfo{Name: &name})
		}, "/api/v3/deviceprofile/basicinfo", "basicinfo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &seen{}
			srv := batchServer(t, rec, 207, `[{"apiVersion":"v3","statusCode":200}]`)
			results, err := tc.update(newMetadata(t, fastOptions(srv.URL, "")))
			mustNot(t, err)
			if len(results) != 1 || results[0].Err != nil {
				t.Errorf("results %+v", results)
			}
			got := rec.all()[0]
			var sent []map[string]json.RawMessage
			mustNot(t, json.Unmarshal([]byte(got.Body), &sent))
			var patch struct{ Name string }
			if len(sent) == 1 {
				_ = json.Unmarshal(sent[0][tc.wantField], &patch)
			}
			if got.Method != http.MethodPatch || got.Path != tc.wantPath || patch.Name != "x" {
				t.Errorf("sent %s %s %s", got.Method, got.Path, got.Body)
			}
		})
	}
}

func TestReplaceProfilesPutsWholeProfiles(t *testing.T) {
	rec := &seen{}
	srv := batchServer(t, rec, 207, `[{"apiVersion":"v3","statusCode":200}]`)
	md := newMetadata(t, fastOptions(srv.URL, ""))
	profile := capturedItems[dtos.DeviceProfile](t, "10-deviceprofile-add.txt", 0, "profile")[0]
	results, err := md.ReplaceProfiles(context.Background(), profile)
	mustNot(t, err)
	if len(results) != 1 || results[0].Err != nil {
		t.Errorf("results %+v", results)
	}
	got := rec.all()[0]
	if got.Method != http.MethodPut || got.Path != "/api/v3/deviceprofile" || !strings.Contains(got.Body, `"deviceResources"`) {
		t.Errorf("sent %s %s", got.Method, got.Path)
	}
}

func TestGetKeepsExactNumbersInFreeFormMaps(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, `{"apiVersion":"v3","statusCode":200,"device":{"name":"modbus-1","serviceName":"s","profileName":"p",
			"protocols":{"modbus-tcp":{"Port":502,"UnitID":12345678901234567890,"Timeout":1.50}},
			"tags":{"weight":0.1000000000000000055511151231257827}}}`)
	})
	d, err := newMetadata(t, fastOptions(srv.URL, "")).Devices.Get(context.Background(), "modbus-1")
	mustNot(t, err)
	want := map[string]any{"Port": json.Number("502"), "UnitID": json.Number("12345678901234567890"), "Timeout": json.Number("1.50")}
	if got := map[string]any(d.Protocols["modbus-tcp"]); !reflect.DeepEqual(got, want) {
		t.Errorf("protocol properties %#v, want %#v", got, want)
	}
	if w := d.Tags["weight"]; w != json.Number("0.1000000000000000055511151231257827") {
		t.Errorf("tag %#v", w)
	}
}

func TestNamesAreEscapedInPaths(t *testing.T) {
	for _, name := range []string{"gpio/01", "with space", "100%", "q?x=1#frag", "ünïcödé", "{name}", "a+b"} {
		t.Run(name, func(t *testing.T) {
			rec := &seen{}
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				rec.record(r)
				answer(w, 200, fmt.Sprintf(`{"apiVersion":"v3","statusCode":200,"device":{"name":%q}}`, name))
			})
			obs := &observed{}
			opts := fastOptions(srv.URL, "")
			opts.Observer = obs.observe
			d, err := newMetadata(t, opts).Devices.Get(context.Background(), name)
			mustNot(t, err)
			path := rec.all()[0].Path
			segment, ok := strings.CutPrefix(path, "/api/v3/device/name/")
			if !ok || strings.Contains(segment, "/") {
				t.Fatalf("path %s does not keep the name in one segment", path)
			}
			if unescaped, _ := url.PathUnescape(segment); unescaped != name || d.Name != name {
				t.Errorf("server saw %q, want %q", unescaped, name)
			}
			if infos := obs.all(); len(infos) != 1 || infos[0].Route != "/api/v3/device/name/{name}" {
				t.Errorf("observed %+v, want the route pattern", infos)
			}
		})
	}
}

func TestUnusableNamesAreRefusedWithoutARequest(t *testing.T) {
	rec := &seen{}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { rec.record(r) })
	md := newMetadata(t, fastOptions(srv.URL, srv.URL))
	cmd := newCommand(t, fastOptions(srv.URL, srv.URL))
	for _, name := range []string{"", ".", ".."} {
		_, err := md.Devices.Get(context.Background(), name)
		wantError(t, err, KindInvalid, 0, "")
		wantError(t, md.Profiles.Delete(context.Background(), name), KindInvalid, 0, "")
		wantError(t, cmd.Write(context.Background(), "dev", name, map[string]string{"a": "1"}), KindInvalid, 0, "")
	}
	if rec.count() != 0 {
		t.Errorf("%d requests sent", rec.count())
	}
}

func TestPing(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   ErrorKind
	}{
		{"EdgeX v3", 200, `{"apiVersion":"v3","timestamp":"Sun Nov 22 02:49:21 UTC 2026","serviceName":"core-metadata"}`, ""},
		{"something else on the port", 200, `{"status":"ok"}`, KindMalformed},
		{"an HTML page", 200, `<html><body>It works!</body></html>`, KindMalformed},
		{"service unavailable", 503, `{"apiVersion":"v3","message":"starting","statusCode":503}`, KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &seen{}
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				rec.record(r)
				answer(w, tc.status, tc.body)
			})
			opts := fastOptions(srv.URL, srv.URL)
			opts.Retries = -1
			for _, ping := range []func(context.Context) error{newMetadata(t, opts).Ping, newCommand(t, opts).Ping} {
				if err := ping(context.Background()); KindOf(err) != tc.want {
					t.Errorf("ping: %v, want kind %q", err, tc.want)
				}
			}
			for _, r := range rec.all() {
				if r.Path != "/api/v3/ping" {
					t.Errorf("pinged %s", r.Path)
				}
			}
		})
	}
}
