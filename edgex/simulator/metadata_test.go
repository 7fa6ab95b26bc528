package simulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	commonDTO "github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/requests"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/responses"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/models"

	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// loadTestDevice adds device-virtual and the captured mixed profile and
// device over REST, as the captures did.
func loadTestDevice(t testing.TB, sim *Simulator) {
	t.Helper()
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
		got := call(t, "POST", sim.MetadataURL()+path, string(body))
		if got.status != http.StatusMultiStatus || !strings.Contains(got.body, `"statusCode":201`) {
			t.Fatalf("add %s: %d %s", f, got.status, got.body)
		}
	}
}

// addDemoDevices adds the demo service and profiles and n sensor devices.
func addDemoDevices(t testing.TB, sim *Simulator, n int, labels ...string) []string {
	t.Helper()
	if _, err := sim.AddDeviceService(DemoService()); err != nil {
		t.Fatal(err)
	}
	for _, p := range DemoProfiles() {
		if _, err := sim.AddDeviceProfile(p); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for i := range n {
		d := demoDevice(fmt.Sprintf("sensor-%03d", i), ProfileSensor)
		d.Labels = labels
		if _, err := sim.AddDevice(d); err != nil {
			t.Fatal(err)
		}
		names = append(names, d.Name)
	}
	return names
}

func deviceNames(devices []dtos.Device) []string {
	out := make([]string, len(devices))
	for i, d := range devices {
		out[i] = d.Name
	}
	return out
}

func TestDeviceListPaging(t *testing.T) {
	sim := startSim(t, Options{MaxResultCount: 30})
	all := addDemoDevices(t, sim, 25)
	list := sim.MetadataURL() + "/api/v3/device/all"
	cases := []struct {
		name      string
		query     string
		status    int
		items     int
		message   string
		wantTotal uint32
	}{
		{"default limit is 20", "", 200, 20, "", 25},
		{"last partial page", "?offset=20&limit=10", 200, 5, "", 25},
		{"offset exactly at the end", "?offset=25", 200, 0, "", 25},
		{"offset past the end", "?offset=26", 416, 0, "query objects bounds out of range. length:25", 0},
		{"zero limit", "?limit=0", 200, 0, "", 25},
		{"limit -1 means MaxResultCount", "?limit=-1", 200, 25, "", 25},
		{"limit above MaxResultCount", "?limit=31", 400, 0, "querystring limit's value 31 is out of min -1 ~ max 30 range.", 0},
		{"negative offset", "?offset=-1", 400, 0, "querystring offset's value -1 is out of min 0 ~ max 2147483647 range.", 0},
		{"limit not a number", "?limit=ten", 400, 0, `failed to parse querystring limit's value ten into integer. Error:strconv.Atoi: parsing "ten": invalid syntax`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, "GET", list+tc.query, "")
			if got.status != tc.status {
				t.Fatalf("status %d, want %d: %s", got.status, tc.status, got.body)
			}
			if tc.status != 200 {
				if e := decodeAs[commonDTO.BaseResponse](t, got); e.Message != tc.message || e.StatusCode != tc.status {
					t.Errorf("error %+v, want message %q", e, tc.message)
				}
				return
			}
			page := decodeAs[responses.MultiDevicesResponse](t, got)
			if len(page.Devices) != tc.items || page.TotalCount != tc.wantTotal || page.Devices == nil {
				t.Errorf("%d devices (nil: %v), totalCount %d; want %d, %d", len(page.Devices), page.Devices == nil, page.TotalCount, tc.items, tc.wantTotal)
			}
		})
	}

	t.Run("pages cover every device once, in a stable order", func(t *testing.T) {
		var walked []string
		for offset := 0; ; offset += 7 {
			page := decodeAs[responses.MultiDevicesResponse](t, call(t, "GET", fmt.Sprintf("%s?offset=%d&limit=7", list, offset), ""))
			walked = append(walked, deviceNames(page.Devices)...)
			if len(page.Devices) < 7 {
				break
			}
		}
		again := decodeAs[responses.MultiDevicesResponse](t, call(t, "GET", list+"?limit=-1", ""))
		if !slices.Equal(walked, deviceNames(again.Devices)) {
			t.Errorf("paged walk %v differs from one full page %v", walked, deviceNames(again.Devices))
		}
		sorted := slices.Clone(walked)
		slices.Sort(sorted)
		if !slices.Equal(sorted, all) {
			t.Errorf("walk covered %v, want %v", sorted, all)
		}
		ids := make([]string, len(again.Devices))
		for i, d := range again.Devices {
			ids[i] = d.Id
		}
		if !slices.IsSortedFunc(ids, func(a, b string) int { return strings.Compare(b, a) }) {
			t.Errorf("ids %v are not in core-metadata's order (descending)", ids)
		}
	})
}

func TestDeviceListFilters(t *testing.T) {
	sim := startSim(t, Options{})
	addDemoDevices(t, sim, 3, "floor-1")
	d := demoDevice("gpio-x", ProfileGPIO)
	d.Labels = []string{"floor-1", "lab"}
	if _, err := sim.AddDevice(d); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path  string
		names int
	}{
		{"/api/v3/device/all?labels=floor-1", 4},
		{"/api/v3/device/all?labels=floor-1,lab", 1},
		{"/api/v3/device/all?labels=nowhere", 0},
		{"/api/v3/device/profile/name/" + ProfileGPIO, 1},
		{"/api/v3/device/service/name/" + DemoServiceName, 4},
		{"/api/v3/device/service/name/no-such-service", 0},
	}
	for _, tc := range cases {
		page := decodeAs[responses.MultiDevicesResponse](t, call(t, "GET", sim.MetadataURL()+tc.path, ""))
		if len(page.Devices) != tc.names || page.TotalCount != uint32(tc.names) {
			t.Errorf("%s: %d devices, totalCount %d; want %d", tc.path, len(page.Devices), page.TotalCount, tc.names)
		}
	}
}

func TestBatchValidation(t *testing.T) {
	sim := startSim(t, Options{})
	addDemoDevices(t, sim, 1)
	device := func(name, profile string) string {
		return fmt.Sprintf(`{"apiVersion":"v3","device":{"name":%q,"adminState":"UNLOCKED","operatingState":"UP","serviceName":"device-virtual","profileName":%q,"protocols":{"other":{"Address":"x"}}}}`, name, profile)
	}
	cases := []struct {
		name    string
		body    string
		status  int
		answers string // per-item status codes, or the whole answer's message
	}{
		{"mixed batch answers per item", "[" + device("new-1", ProfileSensor) + "," + device("sensor-000", ProfileSensor) + "," + device("new-2", "Nope") + "]",
			207, "201 409 404"},
		{"one invalid item fails the whole batch", "[" + device("new-3", ProfileSensor) + `,{"apiVersion":"v3","device":{"name":"bad","adminState":"BROKEN","operatingState":"UP","serviceName":"device-virtual","profileName":"x","protocols":{"other":{}}}}]`,
			400, "AddDeviceRequest.Device.AdminState field should be one of 'LOCKED' 'UNLOCKED'"},
		{"missing apiVersion", `[{"device":{"name":"n","adminState":"UNLOCKED","operatingState":"UP","serviceName":"device-virtual","profileName":"x","protocols":{"other":{}}}}]`,
			400, "AddDeviceRequest.BaseRequest.Versionable.ApiVersion field is required"},
		{"not an array", `{"apiVersion":"v3"}`, 500, "json: cannot unmarshal object into Go value of type []requests.AddDeviceRequest"},
		{"empty batch", `[]`, 207, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(sim.Devices())
			got := call(t, "POST", sim.MetadataURL()+"/api/v3/device", tc.body)
			if got.status != tc.status {
				t.Fatalf("status %d, want %d: %s", got.status, tc.status, got.body)
			}
			if tc.status == 207 {
				var items []commonDTO.BaseResponse
				mustUnmarshal(t, []byte(got.body), &items)
				var codes []string
				for _, it := range items {
					codes = append(codes, fmt.Sprint(it.StatusCode))
				}
				if strings.Join(codes, " ") != tc.answers {
					t.Errorf("per-item codes %v, want %s: %s", codes, tc.answers, got.body)
				}
				return
			}
			if e := decodeAs[commonDTO.BaseResponse](t, got); !strings.Contains(e.Message, tc.answers) {
				t.Errorf("message %q, want it to contain %q", e.Message, tc.answers)
			}
			if after := len(sim.Devices()); after != before {
				t.Errorf("a refused batch created %d devices", after-before)
			}
		})
	}
}

func TestDeletingWhatIsInUse(t *testing.T) {
	sim := startSim(t, Options{})
	addDemoDevices(t, sim, 1)
	cases := []struct {
		path    string
		status  int
		message string
	}{
		{"/api/v3/deviceprofile/name/" + ProfileSensor, 409, "fail to delete the device profile with name " + ProfileSensor},
		{"/api/v3/deviceservice/name/" + DemoServiceName, 409, "fail to delete the device service with name " + DemoServiceName},
		{"/api/v3/deviceprofile/name/" + ProfileGPIO, 200, ""},
		{"/api/v3/deviceprofile/name/" + ProfileGPIO, 404, "fail to query device profile by name " + ProfileGPIO},
		{"/api/v3/deviceservice/name/nope", 404, "fail to query device service by name nope"},
		{"/api/v3/device/name/sensor-000", 200, ""},
		{"/api/v3/deviceprofile/name/" + ProfileSensor, 200, ""},
	}
	for _, tc := range cases {
		got := call(t, "DELETE", sim.MetadataURL()+tc.path, "")
		e := decodeAs[commonDTO.BaseResponse](t, got)
		if got.status != tc.status || e.Message != tc.message {
			t.Errorf("DELETE %s: %d %q, want %d %q", tc.path, got.status, e.Message, tc.status, tc.message)
		}
	}
}

func TestEdgeSideChangesAreValidated(t *testing.T) {
	sim := startSim(t, Options{})
	addDemoDevices(t, sim, 1)
	bad := demoDevice("bad", ProfileSensor)
	bad.AdminState = "SOMETIMES"
	_, err := sim.AddDevice(bad)
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 400 {
		t.Errorf("invalid device: %v, want a 400 *Error", err)
	}
	_, err = sim.AddDevice(demoDevice("sensor-000", ProfileSensor))
	if !errors.As(err, &e) || e.StatusCode != 409 || e.Message != "device name sensor-000 already exists" {
		t.Errorf("duplicate: %v", err)
	}
	locked := string(models.Locked)
	name := "sensor-000"
	if err := sim.UpdateDevice(dtos.UpdateDevice{Name: &name, AdminState: &locked}); err != nil {
		t.Fatal(err)
	}
	if d, _ := sim.Device(name); d.AdminState != locked {
		t.Errorf("admin state %s after update", d.AdminState)
	}
	missing := "nope"
	if err := sim.UpdateDevice(dtos.UpdateDevice{Name: &missing, AdminState: &locked}); !errors.As(err, &e) || e.StatusCode != 404 {
		t.Errorf("update of a missing device: %v", err)
	}
}

func TestTokenAuth(t *testing.T) {
	sim := startSim(t, Options{Token: "first"})
	for _, base := range []string{sim.MetadataURL(), sim.CommandURL()} {
		cases := []struct {
			name   string
			path   string
			header string
			status int
		}{
			{"no token", "/api/v3/device/all", "", 401},
			{"wrong token", "/api/v3/device/all", "Authorization: Bearer nope", 401},
			{"not a bearer token", "/api/v3/device/all", "Authorization: first", 401},
			{"right token", "/api/v3/device/all", "Authorization: Bearer first", 200},
			{"ping needs none", "/api/v3/ping", "", 200},
			{"version needs one", "/api/v3/version", "", 401},
		}
		for _, tc := range cases {
			var headers []string
			if tc.header != "" {
				headers = append(headers, tc.header)
			}
			got := call(t, "GET", base+tc.path, "", headers...)
			if got.status != tc.status {
				t.Errorf("%s %s: %d, want %d", base, tc.name, got.status, tc.status)
			}
			if tc.status == 401 && strings.TrimSpace(got.body) != `{"message":"Unauthorized"}` {
				t.Errorf("401 body %q", got.body)
			}
		}
	}
	sim.SetToken("second")
	if got := call(t, "GET", sim.MetadataURL()+"/api/v3/device/all", "", "Authorization: Bearer first"); got.status != 401 {
		t.Errorf("rotated-out token: %d", got.status)
	}
	if got := call(t, "GET", sim.MetadataURL()+"/api/v3/device/all", "", "Authorization: Bearer second"); got.status != 200 {
		t.Errorf("rotated-in token: %d", got.status)
	}
}

func TestRequestCounts(t *testing.T) {
	sim := startSim(t, Options{})
	call(t, "GET", sim.MetadataURL()+"/api/v3/device/all", "")
	call(t, "GET", sim.MetadataURL()+"/api/v3/device/all?limit=1", "")
	call(t, "GET", sim.MetadataURL()+"/api/v3/device/name/x", "")
	call(t, "GET", sim.CommandURL()+"/api/v3/device/name/x/y", "")
	got := call(t, "POST", sim.MetadataURL()+"/api/v3/nothing", "")
	if got.status != 404 {
		t.Errorf("unknown route: %d", got.status)
	}
	if got := call(t, "DELETE", sim.MetadataURL()+"/api/v3/device/all", ""); got.status != 405 {
		t.Errorf("wrong method: %d %s", got.status, got.body)
	}
	want := map[string]int64{
		"core-metadata GET /api/v3/device/all":                  2,
		"core-metadata GET /api/v3/device/name/{name}":          1,
		"core-command GET /api/v3/device/name/{name}/{command}": 1,
		"core-metadata POST (no route)":                         1,
		"core-metadata DELETE (no route)":                       1,
	}
	counts := sim.RequestCounts()
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("count %q = %d, want %d (all: %v)", k, counts[k], v, counts)
		}
	}
	if sim.RequestCount() != 6 {
		t.Errorf("RequestCount %d, want 6", sim.RequestCount())
	}
}

func TestProfileAndServiceUpdates(t *testing.T) {
	sim := startSim(t, Options{})
	addDemoDevices(t, sim, 1)
	camera := DemoProfiles()[2]
	camera.Description = "replaced"
	put, _ := json.Marshal([]any{requests.NewDeviceProfileRequest(camera)})
	renamed := camera
	renamed.Name = "Other-Camera"
	putMissing, _ := json.Marshal([]any{requests.NewDeviceProfileRequest(renamed)})
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		codes  string
	}{
		{"full profile update", "PUT", "/api/v3/deviceprofile", string(put), "200"},
		{"full update of a missing profile", "PUT", "/api/v3/deviceprofile", string(putMissing), "404"},
		{"basic info patch", "PATCH", "/api/v3/deviceprofile/basicinfo",
			`[{"apiVersion":"v3","basicinfo":{"name":"Simulated-GPIO","model":"gpio-sim-2"}},{"apiVersion":"v3","basicinfo":{"name":"Nope","model":"x"}}]`, "200 404"},
		{"service patch", "PATCH", "/api/v3/deviceservice",
			`[{"apiVersion":"v3","service":{"name":"device-virtual","baseAddress":"http://127.0.0.1:59999"}}]`, "200"},
		{"service add twice", "POST", "/api/v3/deviceservice",
			`[{"apiVersion":"v3","service":{"name":"device-two","baseAddress":"http://127.0.0.1:1","adminState":"UNLOCKED"}},{"apiVersion":"v3","service":{"name":"device-two","baseAddress":"http://127.0.0.1:1","adminState":"UNLOCKED"}}]`, "201 409"},
	}
	for _, tc := range cases {
		got := call(t, tc.method, sim.MetadataURL()+tc.path, tc.body)
		var items []commonDTO.BaseResponse
		mustUnmarshal(t, []byte(got.body), &items)
		var codes []string
		for _, it := range items {
			codes = append(codes, fmt.Sprint(it.StatusCode))
		}
		if got.status != 207 || strings.Join(codes, " ") != tc.codes {
			t.Errorf("%s: %d %v, want 207 with %s: %s", tc.name, got.status, codes, tc.codes, got.body)
		}
	}
	if p, _ := sim.Profile(ProfileCamera); p.Description != "replaced" {
		t.Errorf("PUT did not replace the profile: %q", p.Description)
	}
	if p, _ := sim.Profile(ProfileGPIO); p.Model != "gpio-sim-2" || len(p.DeviceResources) != 3 {
		t.Errorf("PATCH basicinfo gave %+v", p.DeviceProfileBasicInfo)
	}
	if s, _ := sim.Service(DemoServiceName); s.BaseAddress != "http://127.0.0.1:59999" {
		t.Errorf("service base address %s", s.BaseAddress)
	}
}

func TestServesHTTPS(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	sim := startSim(t, Options{TLSCertFile: certFile, TLSKeyFile: keyFile})
	if !strings.HasPrefix(sim.MetadataURL(), "https://") || !strings.HasPrefix(sim.CommandURL(), "https://") {
		t.Fatalf("URLs %s %s", sim.MetadataURL(), sim.CommandURL())
	}
	client := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(sim.CommandURL() + "/api/v3/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("ping over HTTPS: %d", resp.StatusCode)
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and returns its files
// and a pool trusting it.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edgex-simulator"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
