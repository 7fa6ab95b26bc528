package messagebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/google/uuid"

	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/hack/testenv/broker"
	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// Gets and sets travel as core-command expects them (the captured request
// envelopes) and their answers come back decoded.
func TestCommandRoundTrip(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	fake := startFakeCoreCommand(t, b.URL(), func(req commandCall) Envelope {
		if req.method == MethodSet {
			return setAnswer(t, req)
		}
		if req.env.QueryParams["ds-returnevent"] == "false" {
			ans := setAnswer(t, req) // EdgeX answers such a get with no event
			ans.ReceivedTopic = Topics{}.CommandResponse(req.device, req.command, req.method)
			return ans
		}
		return getAnswer(t, req, "true")
	})
	c := newClient(t, fastOptions(b.URL()))
	startClient(t, c)

	cases := []struct {
		name          string
		device, cmd   string
		method        string
		values, query map[string]string
		// capture is the request EdgeX accepted, whose shape ours must have.
		capture     string
		wantPayload string
		wantValue   string // of the returned event's reading; "" for no event
	}{
		{name: "get returning the event", device: "test-device-01", cmd: "gpio_out_1", method: MethodGet,
			query: map[string]string{"ds-returnevent": "true"}, capture: "exchanges/50-ext-get-request.json", wantValue: "true"},
		{name: "get asking for no event", device: "test-device-01", cmd: "gpio_out_1", method: MethodGet,
			query: map[string]string{"ds-returnevent": "false"}, capture: "exchanges/50-ext-get-request.json"},
		{name: "set one resource", device: "test-device-01", cmd: "gpio_out_1", method: MethodSet,
			values: map[string]string{"gpio_out_1": "false"}, capture: "exchanges/51-ext-set-request.json", wantPayload: `{"gpio_out_1":"false"}`},
		{name: "set a multi-resource command", device: "test-device-01", cmd: "sensors", method: MethodSet,
			values: map[string]string{"counter": "7", "temperature": "2.150000e+01"}, capture: "exchanges/51-ext-set-request.json",
			wantPayload: `{"counter":"7","temperature":"2.150000e+01"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fake.seen())
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			res, err := c.Command(ctx, tc.device, tc.cmd, tc.method, tc.values, tc.query)
			if err != nil {
				t.Fatal(err)
			}
			seen := fake.seen()
			if len(seen) != before+1 {
				t.Fatalf("core-command saw %d requests, want 1", len(seen)-before)
			}
			req := seen[before]
			checkRequestShape(t, req, tc.capture)
			if req.device != tc.device || req.command != tc.cmd || req.method != tc.method {
				t.Errorf("request went to %s/%s/%s", req.device, req.command, req.method)
			}
			if string(req.env.Payload) != tc.wantPayload || !reflect.DeepEqual(req.env.QueryParams, tc.query) {
				t.Errorf("request payload %q query %v, want %q %v", req.env.Payload, req.env.QueryParams, tc.wantPayload, tc.query)
			}
			if res.Envelope.RequestID != req.env.RequestID {
				t.Errorf("response for request %s, sent %s", res.Envelope.RequestID, req.env.RequestID)
			}
			switch {
			case tc.wantValue == "" && res.Event != nil:
				t.Errorf("got an event %+v, want none", res.Event)
			case tc.wantValue != "" && (res.Event == nil || res.Event.DeviceName != tc.device || res.Event.Readings[0].Value != tc.wantValue):
				t.Errorf("got event %+v, want %s's %s = %s", res.Event, tc.device, tc.cmd, tc.wantValue)
			}
		})
	}
}

// checkRequestShape compares a request with the one a real core-command
// accepted: every field it had, with the same JSON type, and the values
// core-command insists on.
func checkRequestShape(t *testing.T, req commandCall, capture string) {
	t.Helper()
	data, err := captures.File(capture)
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string]any
	must(t, json.Unmarshal(data, &want))
	must(t, json.Unmarshal(req.raw, &got))
	for key, v := range want {
		if reflect.TypeOf(got[key]) != reflect.TypeOf(v) {
			t.Errorf("request field %q is %T, the accepted request had %T", key, got[key], v)
		}
	}
	if req.env.APIVersion != "v3" || req.env.ContentType != ContentTypeJSON {
		t.Errorf("request apiVersion %q contentType %q", req.env.APIVersion, req.env.ContentType)
	}
	for _, id := range []string{req.env.RequestID, req.env.CorrelationID} {
		if _, err := uuid.Parse(id); err != nil {
			t.Errorf("request id %q is not a UUID", id)
		}
	}
}

// Every refusal core-command sends becomes an *edgex.Error whose kind comes
// from the status inside the text, and unreadable answers are Malformed.
func TestCommandErrorsAreTyped(t *testing.T) {
	captured := capturedEnvelope(t, "edgex/command/response/no-such-device/gpio_out_1/get")
	cases := []struct {
		name       string
		answer     func(t testing.TB, req commandCall) Envelope
		wantKind   edgex.ErrorKind
		wantStatus int
		wantInMsg  string
	}{
		{"unknown device (captured)", func(t testing.TB, req commandCall) Envelope { return errorAnswer(t, req, string(captured.Payload)) },
			edgex.KindNotFound, 404, "fail to query device by name no-such-device"},
		{"write to a read-only resource", func(t testing.TB, req commandCall) Envelope {
			return errorAnswer(t, req, edgexErrorText("failed to set command", 405, "DeviceResource temperature is marked as read-only"))
		}, edgex.KindNotAllowed, 405, "read-only"},
		{"locked device", func(t testing.TB, req commandCall) Envelope {
			return errorAnswer(t, req, edgexErrorText("failed to get command", 423, "device test-device-01 locked"))
		}, edgex.KindLocked, 423, "locked"},
		{"device service down", func(t testing.TB, req commandCall) Envelope {
			return errorAnswer(t, req, edgexErrorText("failed to get command", 503, "device service device-virtual unreachable"))
		}, edgex.KindUnavailable, 503, "unreachable"},
		{"value the device cannot parse, status nested twice", func(t testing.TB, req commandCall) Envelope {
			inner := edgexErrorText("failed to create CommandValue", 500, `parsing "notabool": invalid syntax`)
			return errorAnswer(t, req, edgexErrorText("failed to set command", 400, inner))
		}, edgex.KindInvalid, 400, "notabool"},
		{"error text without an EdgeX envelope", func(t testing.TB, req commandCall) Envelope {
			return errorAnswer(t, req, "nil Device Client")
		}, edgex.KindInternal, 0, "nil Device Client"},
		{"status words but no envelope", func(t testing.TB, req commandCall) Envelope {
			return errorAnswer(t, req, "request failed, status code: 404, not found")
		}, edgex.KindInternal, 0, "status code: 404"},
		{"get answer that is not JSON", func(t testing.TB, req commandCall) Envelope {
			ans := getAnswer(t, req, "true")
			ans.Payload = ans.Payload[:len(ans.Payload)/2]
			return ans
		}, edgex.KindMalformed, 0, ""},
		{"get answer about another device", func(t testing.TB, req commandCall) Envelope {
			req.device = "someone-else"
			return getAnswer(t, req, "true")
		}, edgex.KindMalformed, 0, "someone-else"},
		{"get answer with an error status", func(t testing.TB, req commandCall) Envelope {
			ans := setAnswer(t, req)
			ans.Payload = []byte(`{"apiVersion":"v3","requestId":"` + req.env.RequestID + `","statusCode":404,"message":"no such resource"}`)
			return ans
		}, edgex.KindNotFound, 404, "no such resource"},
	}
	b := broker.Start(t, broker.Options{})
	answers := make(chan func(testing.TB, commandCall) Envelope, 1)
	startFakeCoreCommand(t, b.URL(), func(req commandCall) Envelope { return (<-answers)(t, req) })
	c := newClient(t, fastOptions(b.URL()))
	startClient(t, c)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			answers <- tc.answer
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			_, err := c.Command(ctx, "test-device-01", "gpio_out_1", MethodGet, nil, nil)
			var e *edgex.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *edgex.Error", err)
			}
			if e.Kind != tc.wantKind || e.StatusCode != tc.wantStatus || !strings.Contains(e.Error(), tc.wantInMsg) {
				t.Errorf("got %v (kind %s, status %d), want kind %s, status %d, mentioning %q", e, e.Kind, e.StatusCode, tc.wantKind, tc.wantStatus, tc.wantInMsg)
			}
		})
	}
}

// core-command's responses are retained: a client subscribing receives old
// answers, and answers to other clients' requests arrive on the same
// topics. Only the answer carrying the command's own requestID counts.
func TestCommandIgnoresOtherResponses(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	edgexSide := rawClient(t, b.URL())
	// A stale answer, retained on the very topic, from an earlier run.
	stale := capturedMessages(t, "edgex/command/response/test-device-01/gpio_out_1/get")[0]
	publishRaw(t, edgexSide, stale.Topic, true, stale.Payload)
	startFakeCoreCommand(t, b.URL(), func(req commandCall) Envelope {
		// Another client's answer arrives first, while ours is pending.
		other := req
		other.env.RequestID = uuid.NewString()
		data, err := getAnswer(t, other, "false").Encode()
		must(t, err)
		publishRaw(t, edgexSide, stale.Topic, true, data)
		return getAnswer(t, req, "true")
	})
	c := newClient(t, fastOptions(b.URL()))
	startClient(t, c)
	for i := range 3 {
		res, err := c.Command(context.Background(), "test-device-01", "gpio_out_1", MethodGet, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Event == nil || res.Event.Readings[0].Value != "true" {
			t.Fatalf("command %d got another request's answer: %+v", i, res.Event)
		}
	}
}

// A command without an answer ends at the sooner of CommandTimeout and the
// caller's context, as Unavailable, and leaves nothing registered.
func TestCommandTimeouts(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	startFakeCoreCommand(t, b.URL(), nil) // never answers
	cases := []struct {
		name           string
		commandTimeout time.Duration
		ctx            func() (context.Context, context.CancelFunc)
		want           error
		maxTook        time.Duration
	}{
		{"CommandTimeout elapses", 100 * time.Millisecond, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, context.DeadlineExceeded, 5 * time.Second},
		{"caller's deadline is sooner", time.Hour, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, context.DeadlineExceeded, 5 * time.Second},
		{"caller cancels", time.Hour, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled, 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := fastOptions(b.URL())
			opts.CommandTimeout = tc.commandTimeout
			c := newClient(t, opts)
			startClient(t, c)
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := c.Command(ctx, "test-device-01", "gpio_out_1", MethodSet, map[string]string{"gpio_out_1": "true"}, nil)
			took := time.Since(start)
			if !edgex.IsUnavailable(err) || !errors.Is(err, tc.want) || !edgex.Retryable(err) {
				t.Errorf("got %v, want a retryable Unavailable error wrapping %v", err, tc.want)
			}
			if took > tc.maxTook {
				t.Errorf("took %s", took)
			}
			if n := c.commands.inFlight(); n != 0 {
				t.Errorf("%d commands still registered", n)
			}
		})
	}
}

// Over a hundred commands in flight at once all complete while one device
// answers slowly and an event handler is stuck: nothing waits behind them.
func TestManyCommandsWithASlowDeviceAndAStuckHandler(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	releaseDevice := make(chan struct{})
	startFakeCoreCommand(t, b.URL(), func(req commandCall) Envelope {
		if req.device == "slow-device" {
			<-releaseDevice
		}
		return getAnswer(t, req, req.device)
	})
	t.Cleanup(func() { closeOnce(releaseDevice) }) // before the fake waits for its answers
	c := newClient(t, fastOptions(b.URL()))
	handlerEntered := make(chan struct{}, 1)
	releaseHandler := make(chan struct{})
	t.Cleanup(func() { closeOnce(releaseHandler) })
	must(t, c.SubscribeEvents(func(string, dtos.Event) {
		select {
		case handlerEntered <- struct{}{}:
		default:
		}
		<-releaseHandler
	}, nil))
	startClient(t, c)
	event := capturedMessages(t, "edgex/events/device/")[0]
	edgexSide := rawClient(t, b.URL())
	publishRaw(t, edgexSide, event.Topic, false, event.Payload)
	receive(t, handlerEntered, 1, "handler entries")

	const fast = 120
	type result struct {
		device string
		res    CommandResponse
		err    error
	}
	results := make(chan result, fast+1)
	run := func(device string) {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		res, err := c.Command(ctx, device, "gpio_out_1", MethodGet, nil, map[string]string{"ds-returnevent": "true"})
		results <- result{device, res, err}
	}
	go run("slow-device")
	for i := range fast {
		go run(fmt.Sprintf("device-%03d", i))
		publishRaw(t, edgexSide, event.Topic, false, event.Payload) // more events for the stuck handler
	}
	for _, r := range receive(t, results, fast, "fast command results") {
		if r.device == "slow-device" {
			t.Fatal("the slow device answered before being released")
		}
		if r.err != nil || r.res.Event == nil || r.res.Event.Readings[0].Value != r.device {
			t.Errorf("%s: %+v, %v", r.device, r.res.Event, r.err)
		}
	}
	closeOnce(releaseDevice)
	if r := receive(t, results, 1, "slow command results")[0]; r.err != nil || r.device != "slow-device" {
		t.Errorf("slow device: %+v, %v", r.res.Event, r.err)
	}
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// Requests core-command could not route are refused before anything is
// sent, and a command while disconnected fails at once as Unavailable.
func TestCommandArguments(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	fake := startFakeCoreCommand(t, b.URL(), func(req commandCall) Envelope { return setAnswer(t, req) })
	c := newClient(t, fastOptions(b.URL()))
	startClient(t, c)
	cases := []struct {
		name                    string
		device, command, method string
		values                  map[string]string
	}{
		{"unknown method", "d", "c", "put", nil},
		{"upper-case method", "d", "c", "GET", nil},
		{"set without values", "d", "c", MethodSet, nil},
		{"get with values", "d", "c", MethodGet, map[string]string{"c": "1"}},
		{"device name with a slash", "a/b", "c", MethodGet, nil},
		{"command name with a wildcard", "d", "c#", MethodGet, nil},
		{"empty device name", "", "c", MethodGet, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Command(context.Background(), tc.device, tc.command, tc.method, tc.values, nil)
			if err == nil || edgex.KindOf(err) != "" {
				t.Errorf("got %v, want a plain argument error", err)
			}
		})
	}
	if n := len(fake.seen()); n != 0 {
		t.Errorf("%d invalid requests reached core-command", n)
	}

	b.Stop()
	eventually(t, "client notices the broker is gone", func() bool { return !c.Connected() })
	_, err := c.Command(context.Background(), "test-device-01", "gpio_out_1", MethodGet, nil, nil)
	if !edgex.IsUnavailable(err) || !errors.Is(err, ErrNotConnected) {
		t.Errorf("command while disconnected: %v, want Unavailable: not connected", err)
	}
}
