package messagebus

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

// The whole package must leave no goroutine behind: clients, their
// handlers, and the test-side MQTT clients alike.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait on a condition; a passing wait returns as
// soon as its condition holds.
const waitTimeout = 20 * time.Second

// fastOptions shortens the pauses that would otherwise make broker restarts
// slow to recover from in tests.
func fastOptions(url string) Options {
	return Options{
		BrokerURL:            url,
		ConnectTimeout:       5 * time.Second,
		MaxReconnectInterval: 500 * time.Millisecond,
		CommandTimeout:       10 * time.Second,
	}
}

// newClient builds a client that is closed at the test's end.
func newClient(t testing.TB, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// startClient starts c and waits until it is connected with its
// subscriptions in place.
func startClient(t testing.TB, c *Client) {
	t.Helper()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
}

// rawClient is a plain paho client standing in for EdgeX services: it
// publishes captured traffic and answers commands.
func rawClient(t testing.TB, url string) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID("test-" + randomHex(6)).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("test MQTT client: connect to %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(250) })
	return c
}

func publishRaw(t testing.TB, c paho.Client, topic string, retained bool, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, 0, retained, payload)
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("publish to %s: %v", topic, tok.Error())
	}
}

func subscribeRaw(t testing.TB, c paho.Client, filter string, handler paho.MessageHandler) {
	t.Helper()
	tok := c.Subscribe(filter, 0, handler)
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("subscribe to %s: %v", filter, tok.Error())
	}
}

// receive takes n values from ch, failing the test if they do not all
// arrive in time.
func receive[T any](t testing.TB, ch <-chan T, n int, what string) []T {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	out := make([]T, 0, n)
	for len(out) < n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-deadline.C:
			t.Fatalf("got %d of %d %s within %s", len(out), n, what, waitTimeout)
		}
	}
	return out
}

// eventually polls cond until it holds, failing the test at the deadline.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-poll.C:
		case <-deadline.C:
			t.Fatalf("%s: not true within %s", what, waitTimeout)
		}
	}
}

// capturedMessages returns the captured messages whose topic starts with
// prefix, from every capture file.
func capturedMessages(t testing.TB, prefix string) []captures.Message {
	t.Helper()
	var out []captures.Message
	for _, file := range []string{"mqtt-startup.txt", "mqtt-session1.txt"} {
		msgs, err := captures.MQTT(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if strings.HasPrefix(m.Topic, prefix) {
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no captured message under %s", prefix)
	}
	return out
}

// capturedEnvelope decodes the one captured message on topic.
func capturedEnvelope(t testing.TB, topic string) Envelope {
	t.Helper()
	msgs := capturedMessages(t, topic)
	env, err := DecodeEnvelope(msgs[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// fakeCoreCommand answers command requests the way core-command's external
// MQTT API does: responses on the matching response topic, retained, with
// the request's requestID. answer runs on a goroutine of its own per
// request, so it may hold a request back.
type fakeCoreCommand struct {
	t      testing.TB
	mqtt   paho.Client
	topics Topics
	answer func(req commandCall) Envelope

	mu       sync.Mutex
	requests []commandCall
	wg       sync.WaitGroup
}

type commandCall struct {
	device, command, method string
	env                     Envelope
	raw                     []byte
}

func startFakeCoreCommand(t testing.TB, url string, answer func(req commandCall) Envelope) *fakeCoreCommand {
	t.Helper()
	f := &fakeCoreCommand{t: t, mqtt: rawClient(t, url), topics: Topics{Prefix: "edgex"}, answer: answer}
	// Registered after rawClient's cleanup, so it runs first: answers in
	// progress finish before the test client disconnects.
	t.Cleanup(f.wg.Wait)
	subscribeRaw(t, f.mqtt, f.topics.AllCommandRequests(), func(_ paho.Client, m paho.Message) {
		device, command, method, ok := f.topics.ParseCommandRequest(m.Topic())
		if !ok {
			t.Errorf("fake core-command: request on unexpected topic %s", m.Topic())
			return
		}
		env, err := DecodeEnvelope(m.Payload())
		if err != nil {
			t.Errorf("fake core-command: %v", err)
			return
		}
		call := commandCall{device: device, command: command, method: method, env: env, raw: m.Payload()}
		f.mu.Lock()
		f.requests = append(f.requests, call)
		f.mu.Unlock()
		if f.answer == nil {
			return // a core-command that never answers
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			resp := f.answer(call)
			data, err := resp.Encode()
			if err != nil {
				t.Errorf("fake core-command: %v", err)
				return
			}
			tok := f.mqtt.Publish(f.topics.CommandResponse(device, command, method), 0, true, data)
			tok.WaitTimeout(waitTimeout)
		}()
	})
	return f
}

func (f *fakeCoreCommand) seen() []commandCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]commandCall(nil), f.requests...)
}

// getAnswer is the captured answer to a get of gpio_out_1, rewritten for
// this request: its requestID, device, resource and value.
func getAnswer(t testing.TB, req commandCall, value string) Envelope {
	t.Helper()
	env := capturedEnvelope(t, "edgex/command/response/test-device-01/gpio_out_1/get")
	var body map[string]any
	if err := json.Unmarshal(env.Payload, &body); err != nil {
		t.Fatal(err)
	}
	body["requestId"] = req.env.RequestID
	event := body["event"].(map[string]any)
	event["deviceName"], event["sourceName"] = req.device, req.command
	reading := event["readings"].([]any)[0].(map[string]any)
	reading["deviceName"], reading["resourceName"], reading["value"] = req.device, req.command, value
	payload, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	env.Payload = payload
	env.RequestID = req.env.RequestID
	env.CorrelationID = req.env.CorrelationID
	env.ReceivedTopic = Topics{}.CommandResponse(req.device, req.command, req.method)
	return env
}

// setAnswer is the captured answer to a successful set: no payload.
func setAnswer(t testing.TB, req commandCall) Envelope {
	t.Helper()
	env := capturedEnvelope(t, "edgex/command/response/test-device-01/gpio_out_1/set")
	env.RequestID = req.env.RequestID
	env.CorrelationID = req.env.CorrelationID
	env.ReceivedTopic = Topics{}.CommandResponse(req.device, req.command, req.method)
	return env
}

// errorAnswer is core-command's error answer: errorCode 1, text payload,
// a fresh correlation id, as captured for an unknown device.
func errorAnswer(t testing.TB, req commandCall, text string) Envelope {
	t.Helper()
	env := capturedEnvelope(t, "edgex/command/response/no-such-device/gpio_out_1/get")
	env.RequestID = req.env.RequestID
	env.CorrelationID = randomHex(16)
	env.Payload = []byte(text)
	return env
}

// edgexErrorText is core-command's wrapping of a service's error envelope,
// as in the captures.
func edgexErrorText(prefix string, status int, message string) string {
	inner, _ := json.Marshal(map[string]any{"apiVersion": "v3", "message": message, "statusCode": status})
	return fmt.Sprintf("%s: request failed, status code: %d, err: %s\n", prefix, status, inner)
}
