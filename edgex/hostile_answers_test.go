package edgex

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
)

// Ten megabytes of hostile answer cost a bounded multiple of their own
// size and end in a short KindMalformed error from every REST decoder,
// never in an empty list or a NotFound.
//
// Found by this test (fixed: decodeJSON refuses numbers over maxNumberLength
// characters before decoding, and shortens decoder errors): a JSON number of ten million
// digits (here totalCount) costs the page decoders 136 MB, 13 times the
// answer, and the results and event decoders 64 and 73 MB; answers may be
// up to maxAnswer (64 MB). decodeJSON runs a json.Decoder over the bytes,
// which copies them into a buffer it grows by doubling, once per nested
// decode, and the error of a number that does not fit quotes the whole
// literal (encoding/json's UnmarshalTypeError), so a 10 MB error reaches the
// bridge's logs on every retry.
func TestRESTDecodersRefuseHugeHostileAnswers(t *testing.T) {
	const size = 10 << 20
	random := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(random)
	nested := func(open, close string, depth int) []byte {
		return []byte(strings.Repeat(open, depth) + strings.Repeat(close, depth))
	}
	page := func(items string) []byte {
		return []byte(`{"apiVersion":"v3","statusCode":200,"totalCount":1,"devices":` + items + `,"profiles":` + items + `}`)
	}
	cases := []struct {
		name   string
		answer []byte
		// successEnvelope says the answer is a well-formed v3 success
		// envelope, which a ping rightly accepts.
		successEnvelope bool
	}{
		{"nested JSON arrays", nested(`[`, `]`, size/2), false},
		{"nested JSON objects", nested(`{"a":`, `}`, size/6), false},
		{"a page whose items nest ten megabytes deep", page(string(nested(`[`, `]`, size/2))), true},
		{"a totalCount of ten million digits", []byte(`{"apiVersion":"v3","statusCode":200,"totalCount":` + strings.Repeat("9", size) + `,"devices":[]}`), true},
		{"random bytes", random, false},
		{"a valid page followed by ten megabytes of garbage", append(page(`[]`), random...), false},
	}
	decoders := []struct {
		name   string
		decode func(answer []byte) error
		// acceptsEnvelopes says a success envelope is all it needs.
		acceptsEnvelopes bool
	}{
		{"device page", func(a []byte) error { _, err := decodePage[dtos.Device](a, "devices"); return err }, false},
		{"profile page", func(a []byte) error { _, err := decodePage[dtos.DeviceProfile](a, "profiles"); return err }, false},
		{"per-item results", func(a []byte) error { _, err := decodeResults(a, 1); return err }, false},
		{"command event", func(a []byte) error { _, err := decodeOne[dtos.Event](a, "event"); return err }, false},
		{"ping", decodePing, true},
	}
	const readable = 64 << 10
	for _, tc := range cases {
		for _, d := range decoders {
			var err error
			allocated := measureAlloc(func() { err = d.decode(tc.answer) })
			switch {
			case err == nil && tc.successEnvelope && d.acceptsEnvelopes:
			case err == nil || KindOf(err) != KindMalformed:
				t.Errorf("%s decoder gave %v for %s, want a KindMalformed error", d.name, truncateErr(err), tc.name)
			case len(err.Error()) > readable:
				t.Errorf("%s decoder's error for %s is %d bytes long: %s", d.name, tc.name, len(err.Error()), truncateErr(err))
			}
			// Parsing keeps the raw fields of an answer once besides the
			// answer itself; more than a few copies would mean the decoder
			// builds what the answer claims to hold.
			if limit := uint64(4*len(tc.answer) + 1<<20); allocated > limit {
				t.Errorf("%s decoder allocated %d MB for %s of %d MB", d.name, allocated>>20, tc.name, len(tc.answer)>>20)
			}
		}
	}
}

// Errors carry a message a person can read in a condition, an Event or a
// log line, whatever the answer held.
//
// Found by this test (fixed: errorFromAnswer shortens messages to maxMessage): an EdgeX JSON
// error envelope's message is kept whole, so a broken or hostile EdgeX that
// answers a 10 MB message makes every failed call's error 10 MB long, and
// the bridge logs it on each retry ("Reconciler error", "resync failed").
// (FuzzErrorFromAnswer asserts the message is kept verbatim; a fix that
// caps it must relax that check.)
func TestHugeErrorAnswersGiveReadableErrors(t *testing.T) {
	const size = 10 << 20
	const readable = 64 << 10 // the bound TestRESTDecodersRefuseHugeHostileAnswers uses too
	cases := []struct {
		name   string
		status int
		answer []byte
	}{
		{"an HTML error page of ten megabytes", 502, []byte("<html><body>" + strings.Repeat("<p>Bad Gateway</p>", size/18) + "</body></html>")},
		{"an EdgeX error whose message is ten megabytes", 500,
			[]byte(`{"apiVersion":"v3","statusCode":500,"message":"` + strings.Repeat("x", size) + `"}`)},
		{"ten megabytes of random bytes", 503, func() []byte {
			b := make([]byte, size)
			_, _ = rand.NewChaCha8([32]byte{9}).Read(b)
			return b
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := errorFromAnswer(tc.status, tc.answer)
			if e.Kind != KindForStatus(tc.status) {
				t.Errorf("kind %s for status %d", e.Kind, tc.status)
			}
			if n := len(e.Error()); n > readable {
				t.Errorf("the error is %d bytes long, more than the %d a person can read", n, readable)
			}
		})
	}
}

// An answer larger than the client holds in memory is refused as
// malformed, on a real connection, without reading it whole.
func TestAnswerOverTheSizeLimitIsMalformed(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"apiVersion":"v3","statusCode":200,"totalCount":1,"devices":[{"description":"`))
		chunk := bytes.Repeat([]byte("y"), 1<<20)
		for written := 0; written <= maxAnswer; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client hung up, as it should
			}
		}
		_, _ = w.Write([]byte(`"}]}`))
	})
	opts := fastOptions(srv.URL, srv.URL)
	opts.Retries, opts.Timeout = -1, 30*time.Second
	md := newMetadata(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	devices, err := md.Devices.List(ctx)
	if err == nil || KindOf(err) != KindMalformed {
		t.Fatalf("listing an answer of more than %d MB gave %d devices and %v, want a KindMalformed error", maxAnswer>>20, len(devices), err)
	}
}

func measureAlloc(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func truncateErr(err error) string {
	if err == nil {
		return "no error"
	}
	s := err.Error()
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
