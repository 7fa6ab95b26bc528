package simulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	commonDTO "github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"
	"github.com/google/uuid"

	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// The simulator decodes three kinds of outside input: REST batch bodies,
// set-command bodies and external MQTT request envelopes. Each fuzz target
// checks that any input gets an EdgeX-shaped answer, never a panic. Their
// seeds are the captured requests.

// unstarted is a simulator whose handlers are called directly, without
// network or bus, holding device-virtual and the captured test device.
func unstarted(t testing.TB) *Simulator {
	t.Helper()
	sim := New(Options{})
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.AddDeviceService(DemoService()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"profile-add.json", "device-add.json"} {
		body, err := captures.File("exchanges/" + f)
		if err != nil {
			t.Fatal(err)
		}
		path := "/api/v3/deviceprofile"
		if f == "device-add.json" {
			path = "/api/v3/device"
		}
		rec := serveDirect(sim.metadataHandler(), "POST", path, string(body))
		if rec.Code != http.StatusMultiStatus {
			t.Fatalf("load %s: %d %s", f, rec.Code, rec.Body)
		}
	}
	return sim
}

func serveDirect(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec
}

func capturedBodies(f *testing.F, method string) {
	exchanges, err := captures.Exchanges()
	if err != nil {
		f.Fatal(err)
	}
	for _, ex := range exchanges {
		if ex.Method == method && ex.Body != "" {
			f.Add(ex.Body)
		}
	}
}

// assertEdgeXAnswer checks an answer is what EdgeX would send: a 207 with
// one well-formed item per request item, or an error body.
func assertEdgeXAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code == http.StatusMultiStatus {
		if strings.TrimSpace(rec.Body.String()) == "null" {
			return
		}
		var items []commonDTO.BaseResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &items); err != nil {
			t.Fatalf("207 body is not a list of item answers: %s", rec.Body)
		}
		for _, it := range items {
			if it.ApiVersion != common.ApiVersion || it.StatusCode < 200 || (it.StatusCode >= 300 && it.Message == "") {
				t.Fatalf("malformed item answer %+v", it)
			}
		}
		return
	}
	if rec.Code == http.StatusServiceUnavailable && strings.Contains(rec.Body.String(), "<html>") {
		return
	}
	var e commonDTO.BaseResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.StatusCode != rec.Code || (rec.Code >= 300 && e.Message == "") {
		t.Fatalf("answer %d is not an EdgeX body: %s", rec.Code, rec.Body)
	}
}

func FuzzAddDeviceBatch(f *testing.F) {
	capturedBodies(f, http.MethodPost)
	f.Add(`[]`)
	f.Add(`[{"apiVersion":"v3","device":{"name":"x","id":"not-a-uuid","adminState":"UNLOCKED","operatingState":"UP","serviceName":"device-virtual","profileName":"Test-GPIO-Sensor-Camera","protocols":{"other":{}}}}]`)
	sim := unstarted(f)
	h := sim.metadataHandler()
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/api/v3/device", "/api/v3/deviceprofile", "/api/v3/deviceservice"} {
			assertEdgeXAnswer(t, serveDirect(h, "POST", path, body))
		}
	})
}

func FuzzPatchBatch(f *testing.F) {
	capturedBodies(f, http.MethodPatch)
	f.Add(`[{"apiVersion":"v3","device":{"id":"0c5f8c1e-6e0a-4c1b-9a55-1c7a4a0e1a11"}}]`)
	f.Add(`[{"apiVersion":"v3","basicinfo":{"name":"Test-GPIO-Sensor-Camera","description":"d"}}]`)
	sim := unstarted(f)
	h := sim.metadataHandler()
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/api/v3/device", "/api/v3/deviceprofile/basicinfo", "/api/v3/deviceservice"} {
			assertEdgeXAnswer(t, serveDirect(h, "PATCH", path, body))
		}
		assertEdgeXAnswer(t, serveDirect(h, "PUT", "/api/v3/deviceprofile", body))
	})
}

func FuzzSetCommandBody(f *testing.F) {
	capturedBodies(f, http.MethodPut)
	f.Add(`{"counter":1e3}`)
	f.Add(`{"counter":null}`)
	f.Add(`[]`)
	sim := unstarted(f)
	h := sim.commandHandler()
	f.Fuzz(func(t *testing.T, body string) {
		for _, command := range []string{"gpio_out_1", "counter", "sensors", "snapshot"} {
			rec := serveDirect(h, "PUT", "/api/v3/device/name/test-device-01/"+command, body)
			assertEdgeXAnswer(t, rec)
			if rec.Code == http.StatusOK {
				// An accepted value reads back in EdgeX's format.
				v, _ := sim.Value("test-device-01", command)
				if _, err := parseValue(valueTypeOf(t, sim, command), v); err != nil {
					t.Fatalf("accepted %s makes %s read %q, which does not parse back", body, command, v)
				}
			}
		}
	})
}

func valueTypeOf(t *testing.T, sim *Simulator, resource string) string {
	p, _ := sim.Profile(capturedDevice)
	for _, r := range p.DeviceResources {
		if r.Name == resource {
			return r.Properties.ValueType
		}
	}
	t.Fatalf("no resource %s", resource)
	return ""
}

func FuzzExternalRequest(f *testing.F) {
	for _, name := range []string{"50-ext-get-request.json", "51-ext-set-request.json", "52-ext-query-request.json"} {
		data, err := captures.File("exchanges/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("edgex/command/request/test-device-01/gpio_out_1/get", string(data))
	}
	f.Add("edgex/commandquery/request/all", `{"apiVersion":"v3","requestID":"4b01ef94-70ff-4c4d-bb2d-c019ca71ee07","contentType":"application/json","queryParams":{"offset":"x"}}`)
	f.Add("edgex/command/request/a/b", `{"apiVersion":"v2"}`)
	f.Fuzz(func(t *testing.T, topic, payload string) {
		req, ok := parseRequest([]byte(payload))
		if ok {
			if _, err := uuid.Parse(req.requestID); err != nil {
				t.Fatalf("accepted request id %q", req.requestID)
			}
			if _, err := uuid.Parse(req.correlationID); err != nil {
				t.Fatalf("accepted correlation id %q", req.correlationID)
			}
		}
		if device, command, method, ok := commandTopic(topic); ok {
			if device == "" && command == "" && method == "" {
				t.Fatal("accepted an empty topic")
			}
			if !strings.EqualFold(method, "get") && !strings.EqualFold(method, "set") {
				t.Fatalf("accepted method %q", method)
			}
		}
	})
}

func FuzzParseValue(f *testing.F) {
	for _, seed := range []string{"true", "42", "-20", "4.042320e+01", "1e999", "QUkAAA==", "[1, 2]", "[true]", `["a"]`, "", " ", "notabool"} {
		f.Add(seed)
	}
	types := []string{"Bool", "String", "Uint8", "Uint16", "Uint32", "Uint64", "Int8", "Int16", "Int32", "Int64",
		"Float32", "Float64", "BoolArray", "StringArray", "Uint8Array", "Int32Array", "Float64Array", "Object", "Binary"}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, vt := range types {
			v, err := parseValue(vt, raw)
			if err != nil {
				if err.status != 400 && err.status != 500 {
					t.Fatalf("%s %q: status %d", vt, raw, err.status)
				}
				continue
			}
			dr := models.DeviceResource{Name: "r", Properties: models.ResourceProperties{ValueType: vt}}
			text := formatted(dr, resourceValue{valueType: vt, v: v})
			if vt == "Object" || vt == "String" || vt == "StringArray" {
				continue
			}
			again, err := parseValue(vt, text)
			if err != nil {
				t.Fatalf("%s %q reads as %q, which does not parse back: %s", vt, raw, text, err.message)
			}
			if formatted(dr, resourceValue{valueType: vt, v: again}) != text {
				t.Fatalf("%s %q: %q does not round-trip", vt, raw, text)
			}
		}
	})
}
