package edgex

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// A putURL is followed only when it is core-command's URL of the Device's
// own EdgeX device and the property's own resource.
func TestCheckCommandURL(t *testing.T) {
	const own = "http://edgex-core-command:59882/api/v3/device/name/lamp-1/gpio_out_1"
	cases := []struct {
		name, putURL string
		own          string // default own; "-" means unknown (admission)
		// refused is a phrase of the refusal; "" means accepted.
		refused string
	}{
		{name: "the URL status shows", putURL: own},
		{name: "the default port spelled out", putURL: "http://edgex-core-command:59882/api/v3/device/name/lamp-1/gpio_out_1"},
		{name: "scheme and host in capitals", putURL: "HTTP://EDGEX-core-command:59882/api/v3/device/name/lamp-1/gpio_out_1"},
		{name: "escaped names", putURL: "http://h:1/api/v3/device/name/cam%2F1%20a/snap%3Fx", own: "http://h:1/api/v3/device/name/cam%2F1%20a/snap%3Fx"},
		{name: "admission: any host, right names", putURL: "https://gw.example/core-command/api/v3/device/name/lamp-1/gpio_out_1", own: "-"},
		{name: "another device", putURL: "http://edgex-core-command:59882/api/v3/device/name/lamp-2/gpio_out_1",
			refused: `it names device "lamp-2", not this device's EdgeX name "lamp-1"`},
		{name: "another device, admission", putURL: "http://x/api/v3/device/name/lamp-2/gpio_out_1", own: "-",
			refused: `it names device "lamp-2"`},
		{name: "another resource", putURL: "http://edgex-core-command:59882/api/v3/device/name/lamp-1/gpio_out_2",
			refused: `it names command "gpio_out_2", not the property's resource "gpio_out_1"`},
		{name: "another host", putURL: "http://203.0.113.7:59882/api/v3/device/name/lamp-1/gpio_out_1",
			refused: "not this node pool's core-command at http://edgex-core-command:59882"},
		{name: "another port", putURL: "http://edgex-core-command:1/api/v3/device/name/lamp-1/gpio_out_1", refused: "not this node pool's core-command"},
		{name: "https instead of http", putURL: "https://edgex-core-command:59882/api/v3/device/name/lamp-1/gpio_out_1", refused: "not this node pool's core-command"},
		{name: "another base path", putURL: "http://edgex-core-command:59882/x/api/v3/device/name/lamp-1/gpio_out_1", refused: "not this node pool's core-command"},
		{name: "credentials", putURL: "http://u:p@edgex-core-command:59882/api/v3/device/name/lamp-1/gpio_out_1", refused: "credentials"},
		{name: "a query", putURL: own + "?ds-pushevent=true", refused: "a query"},
		{name: "a fragment", putURL: own + "#x", refused: "a fragment"},
		{name: "another scheme", putURL: "ftp://edgex-core-command/api/v3/device/name/lamp-1/gpio_out_1", refused: "scheme must be http or https"},
		{name: "relative", putURL: "/api/v3/device/name/lamp-1/gpio_out_1", refused: "scheme must be http or https"},
		{name: "core-metadata's route", putURL: "http://edgex-core-command:59882/api/v3/device/lamp-1/gpio_out_1", refused: "path must end in"},
		{name: "extra segment", putURL: own + "/x", refused: "path must end in"},
		{name: "dot-dot device", putURL: "http://edgex-core-command:59882/api/v3/device/name/../gpio_out_1", refused: "usable names"},
		{name: "not a URL", putURL: "http://[::1", refused: "not a URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ownURL := tc.own
			switch ownURL {
			case "":
				ownURL = own
			case "-":
				ownURL = ""
			}
			device, command := "lamp-1", "gpio_out_1"
			if strings.Contains(tc.putURL, "cam%2F1") {
				device, command = "cam/1 a", "snap?x"
			}
			err := CheckCommandURL(tc.putURL, device, command, ownURL)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalid || !strings.Contains(e.Message, tc.refused) {
				t.Fatalf("got %v, want KindInvalid saying %q", err, tc.refused)
			}
		})
	}
}

// Whatever CheckCommandURL accepts addresses exactly the named device and
// command at the bridge's own core-command.
func FuzzCheckCommandURL(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:59882/api/v3/device/name/d/c",
		"http://127.0.0.1:59882/api/v3/device/name/d%2Fx/c",
		"http://127.0.0.1/api/v3/device/name/d/c",
		"http://127.0.0.1:59882@evil.example/api/v3/device/name/d/c",
		"HTTP://127.0.0.1:59882/api/v3/device/name/d/c?x=1#y",
		"http://127.0.0.1:59882/a/api/v3/device/name/d/c",
	} {
		f.Add(s, "d", "c")
	}
	const base = "http://127.0.0.1:59882"
	f.Fuzz(func(t *testing.T, raw, device, command string) {
		own := base + commandPathPrefix + url.PathEscape(device) + "/" + url.PathEscape(command)
		err := CheckCommandURL(raw, device, command, own)
		if err != nil {
			if KindOf(err) != KindInvalid {
				t.Fatalf("refused with %v, want KindInvalid", err)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil || u.Hostname() != "127.0.0.1" || u.User != nil || u.RawQuery != "" {
			t.Fatalf("accepted %q outside core-command", raw)
		}
		got, gerr := url.PathUnescape(u.EscapedPath())
		if gerr != nil || !strings.HasSuffix(got, "/"+device+"/"+command) && !strings.Contains(device+command, "/") {
			t.Fatalf("accepted %q for device %q command %q", raw, device, command)
		}
	})
}
