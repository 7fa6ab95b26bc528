package edgex

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"

	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// seedAnswers adds every answer a real EdgeX gave (the captures) plus a few
// broken ones to a fuzz corpus.
func seedAnswers(f *testing.F, add func(status int, body []byte)) {
	f.Helper()
	all, err := captures.Exchanges()
	if err != nil {
		f.Fatal(err)
	}
	for _, ex := range all {
		add(ex.Status, []byte(ex.ResponseBody))
	}
	binary, err := captures.File("exchanges/36-command-get-binary.body")
	if err != nil {
		f.Fatal(err)
	}
	add(200, binary)
	for _, body := range []string{``, `{}`, `null`, `[]`, `[null]`, `{"statusCode":"200"}`, timeoutPage,
		`{"apiVersion":"v3","statusCode":200,"totalCount":-1,"devices":[]}`,
		`{"apiVersion":"v3","statusCode":200,"totalCount":2,"devices":null}`,
		`[{"apiVersion":"v3","statusCode":201,"id":"a"}] x`} {
		add(200, []byte(body))
		add(503, []byte(body))
	}
}

// Any failure of a success-answer decoder must be KindMalformed, so that a
// garbled answer is never mistaken for a NotFound or an empty list.
func wantMalformedOrNil(t *testing.T, err error) {
	t.Helper()
	if err != nil && KindOf(err) != KindMalformed {
		t.Fatalf("decoder failed with %v, want KindMalformed", err)
	}
}

func FuzzDecodePage(f *testing.F) {
	seedAnswers(f, func(_ int, body []byte) { f.Add(body) })
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := decodePage[dtos.Device](body, "devices")
		wantMalformedOrNil(t, err)
		if err == nil && (page.Items == nil || page.TotalCount < 0) {
			t.Fatalf("accepted page %+v", page)
		}
		if err == nil {
			var env envelope
			if decodeJSON(body, &env) != nil || !isSuccess(env.StatusCode) {
				t.Fatalf("accepted a page without a success statusCode: %s", body)
			}
		}
		_, err = decodePage[dtos.DeviceProfile](body, "profiles")
		wantMalformedOrNil(t, err)
	})
}

func FuzzDecodeResults(f *testing.F) {
	seedAnswers(f, func(_ int, body []byte) { f.Add(body, 1) })
	f.Add([]byte(`[{"apiVersion":"v3","statusCode":201,"id":"a"},{"apiVersion":"v3","message":"dup","statusCode":409}]`), 2)
	f.Fuzz(func(t *testing.T, body []byte, sent int) {
		results, err := decodeResults(body, sent)
		wantMalformedOrNil(t, err)
		if err != nil {
			return
		}
		if len(results) != sent {
			t.Fatalf("%d results for %d items", len(results), sent)
		}
		for _, r := range results {
			var e *Error
			switch {
			case r.Err == nil:
			case !errors.As(r.Err, &e):
				t.Fatalf("item error %v is not an *Error", r.Err)
			case e.Kind != KindMalformed && (e.StatusCode == 0 || isSuccess(e.StatusCode) || e.Kind != KindForStatus(e.StatusCode)):
				t.Fatalf("item error %+v does not follow its status", e)
			}
		}
	})
}

func FuzzErrorFromAnswer(f *testing.F) {
	seedAnswers(f, func(status int, body []byte) { f.Add(status, body) })
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := errorFromAnswer(status, body)
		if e.Kind != KindForStatus(status) || e.StatusCode != status {
			t.Fatalf("status %d typed as %s (%d)", status, e.Kind, e.StatusCode)
		}
		var env envelope
		fromEnvelope := decodeJSON(body, &env) == nil && (env.Message != "" || env.StatusCode != 0)
		if fromEnvelope && e.Message != shorten(env.Message) {
			t.Fatalf("message %q, EdgeX said %q", e.Message, env.Message)
		}
		if !fromEnvelope && (!utf8.ValidString(e.Message) || utf8.RuneCountInString(e.Message) > maxExcerpt+100 || strings.ContainsAny(e.Message, "<\n")) {
			t.Fatalf("unreadable message %q", e.Message)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	seedAnswers(f, func(_ int, body []byte) { f.Add(body) })
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := decodeOne[dtos.Event](body, "event")
		wantMalformedOrNil(t, err)
		_, err = decodeOne[dtos.DeviceCoreCommand](body, "deviceCoreCommand")
		wantMalformedOrNil(t, err)
		wantMalformedOrNil(t, decodePing(body))
	})
}

// A putURL comes from a user's custom resource: whatever it is, an accepted
// one must name a device command on the configured core-command and on
// nothing else.
func FuzzParseCommandURL(f *testing.F) {
	const base = "http://127.0.0.1:59882"
	for _, s := range []string{
		base + "/api/v3/device/name/test-device-01/gpio_out_1",
		base + "/api/v3/device/name/cam%2F1/snap%20shot",
		"http://127.0.0.1:59882/api/v3/device/name/../gpio",
		"http://evil.example:59882/api/v3/device/name/d/c",
		"http://127.0.0.1:59882@evil.example/api/v3/device/name/d/c",
		"HTTP://127.0.0.1:59882/api/v3/device/name/d/c?x=1#y",
		"//127.0.0.1:59882/api/v3/device/name/d/c",
	} {
		f.Add(s)
	}
	cmd, err := NewCommand(Options{CommandURL: base})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		device, command, err := cmd.parseCommandURL(raw)
		if err != nil {
			if KindOf(err) != KindInvalid {
				t.Fatalf("refused with %v, want KindInvalid", err)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil || !sameOrigin(u, cmd.svc.base) || u.User != nil {
			t.Fatalf("accepted %q outside core-command", raw)
		}
		again, err := url.Parse(cmd.URL(device, command))
		if err != nil || again.Host != "127.0.0.1:59882" {
			t.Fatalf("rebuilt URL %v", again)
		}
		d2, c2, err := cmd.parseCommandURL(again.String())
		if err != nil || d2 != device || c2 != command {
			t.Fatalf("%q -> (%q, %q) -> %s -> (%q, %q, %v)", raw, device, command, again, d2, c2, err)
		}
	})
}
