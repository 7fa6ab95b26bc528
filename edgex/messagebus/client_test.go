package messagebus

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"go.uber.org/goleak"

	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/hack/testenv/broker"
	"github.com/edgebridge/edgebridge/hack/testenv/captures"
)

type received struct {
	topic string
	event dtos.Event
}

type receivedSystemEvent struct {
	topic string
	se    SystemEvent
}

type handlerError struct {
	topic string
	err   error
}

// Everything a real EdgeX put on the bus arrives, decoded and in order:
// every device event (JSON and CBOR) and every system event; a second
// subscriber to the same topics sees the same raw messages.
func TestCapturedTrafficIsDelivered(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	events := make(chan received, 1000)
	systemEvents := make(chan receivedSystemEvent, 1000)
	raw := make(chan string, 1000)
	errs := make(chan handlerError, 1000)
	c := newClient(t, fastOptions(b.URL()))
	onError := func(topic string, err error) { errs <- handlerError{topic, err} }
	must(t, c.SubscribeEvents(func(topic string, ev dtos.Event) { events <- received{topic, ev} }, onError))
	must(t, c.SubscribeSystemEvents(func(topic string, se SystemEvent) { systemEvents <- receivedSystemEvent{topic, se} }, onError))
	must(t, c.Subscribe(Topics{}.AllEvents(), func(topic string, _ []byte) { raw <- topic }))
	startClient(t, c)

	wantEvents := capturedMessages(t, "edgex/events/device/")
	wantSystem := capturedMessages(t, "edgex/system-events/")
	edgexSide := rawClient(t, b.URL())
	for _, m := range append(append([]captures.Message(nil), wantEvents...), wantSystem...) {
		publishRaw(t, edgexSide, m.Topic, false, m.Payload)
	}

	gotEvents := receive(t, events, len(wantEvents), "events")
	for i, got := range gotEvents {
		want := wantEvents[i]
		if got.topic != want.Topic || !strings.HasSuffix(want.Topic, "/"+got.event.DeviceName+"/"+got.event.SourceName) || len(got.event.Readings) == 0 {
			t.Errorf("event %d: got %s %s/%s with %d readings, want the one captured at %s:%d on %s",
				i, got.topic, got.event.DeviceName, got.event.SourceName, len(got.event.Readings), want.File, want.Line, want.Topic)
		}
		// Checked after every later event was decoded: the subscription
		// reuses its decoding memory, and must never hand out an event
		// that still points into it.
		if alone := decodeCaptured(t, want); !reflect.DeepEqual(got.event, alone) {
			t.Errorf("event %d (captured at %s:%d) changed after later events were decoded:\n got %+v\nwant %+v", i, want.File, want.Line, got.event, alone)
		}
	}
	if !hasBinaryReading(gotEvents) {
		t.Error("the captured CBOR snapshot event did not arrive with its binary reading")
	}
	gotSystem := receive(t, systemEvents, len(wantSystem), "system events")
	for i, got := range gotSystem {
		want := wantSystem[i]
		if got.topic != want.Topic || !strings.Contains(want.Topic, "/"+got.se.Type+"/"+got.se.Action+"/") {
			t.Errorf("system event %d: got %s %s/%s, want the one captured on %s", i, got.topic, got.se.Type, got.se.Action, want.Topic)
		}
	}
	rawTopics := receive(t, raw, len(wantEvents), "raw event messages")
	for i, topic := range rawTopics {
		if topic != wantEvents[i].Topic {
			t.Errorf("raw subscriber: message %d on %s, want %s", i, topic, wantEvents[i].Topic)
		}
	}
	select {
	case e := <-errs:
		t.Errorf("a captured message was refused: %s: %v", e.topic, e.err)
	default:
	}
}

// decodeCaptured decodes one captured event on its own.
func decodeCaptured(t *testing.T, m captures.Message) dtos.Event {
	t.Helper()
	env, err := DecodeEnvelope(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := DecodeEvent(env)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func hasBinaryReading(events []received) bool {
	for _, e := range events {
		for _, r := range e.event.Readings {
			if r.ValueType == "Binary" && len(r.BinaryValue) > 0 {
				return true
			}
		}
	}
	return false
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A message that does not decode goes to onError with a reason, and the
// handler keeps receiving the messages after it.
func TestUndecodableMessagesGoToOnError(t *testing.T) {
	goodEvent := capturedMessages(t, "edgex/events/device/device-virtual/Test-GPIO-Sensor-Camera/test-device-01/temperature")[0]
	goodSystem := capturedMessages(t, "edgex/system-events/core-metadata/device/add/")[0]
	eventTopic := goodEvent.Topic
	systemTopic := goodSystem.Topic
	envelopeWith := func(contentType, body string) []byte {
		data, _ := Envelope{APIVersion: "v3", ContentType: contentType, Payload: []byte(body)}.Encode()
		return data
	}
	cases := []struct {
		name    string
		topic   string
		payload []byte
		want    string // in the error text
		wantIs  error
	}{
		{name: "truncated envelope", topic: eventTopic, payload: goodEvent.Payload[:40], want: "decode message envelope"},
		{name: "envelope from EdgeX 2", topic: eventTopic, payload: bytes.Replace(goodEvent.Payload, []byte(`"v3"`), []byte(`"v2"`), 1), want: `apiVersion "v2"`},
		{name: "event without deviceName", topic: eventTopic, payload: envelopeWith(ContentTypeJSON, `{"apiVersion":"v3","event":{"readings":[]}}`), want: "no deviceName"},
		{name: "JSON body labelled CBOR", topic: eventTopic, payload: envelopeWith(ContentTypeCBOR, `{"apiVersion":"v3"}`), want: "decode CBOR event"},
		{name: "payload is not base64", topic: eventTopic, payload: []byte(`{"apiVersion":"v3","payload":"%%%"}`), want: "decode message envelope"},
		{name: "system event with unknown action", topic: systemTopic, payload: envelopeWith(ContentTypeJSON, `{"apiVersion":"v3","type":"device","action":"rename"}`), want: `unknown action "rename"`},
		{name: "message over MaxMessageSize", topic: eventTopic, payload: bytes.Repeat([]byte("x"), MaxMessageSize+1), wantIs: ErrMessageTooLarge},
	}
	b := broker.Start(t, broker.Options{})
	events := make(chan received, 10)
	systemEvents := make(chan receivedSystemEvent, 10)
	errs := make(chan handlerError, 10)
	c := newClient(t, fastOptions(b.URL()))
	onError := func(topic string, err error) { errs <- handlerError{topic, err} }
	must(t, c.SubscribeEvents(func(topic string, ev dtos.Event) { events <- received{topic, ev} }, onError))
	must(t, c.SubscribeSystemEvents(func(topic string, se SystemEvent) { systemEvents <- receivedSystemEvent{topic, se} }, onError))
	startClient(t, c)
	edgexSide := rawClient(t, b.URL())

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			publishRaw(t, edgexSide, tc.topic, false, tc.payload)
			got := receive(t, errs, 1, "errors")[0]
			if got.topic != tc.topic || !strings.Contains(got.err.Error(), tc.want) || (tc.wantIs != nil && !errors.Is(got.err, tc.wantIs)) {
				t.Errorf("onError(%s, %v), want an error on %s mentioning %q", got.topic, got.err, tc.topic, tc.want)
			}
			if tc.topic == systemTopic {
				publishRaw(t, edgexSide, goodSystem.Topic, false, goodSystem.Payload)
				receive(t, systemEvents, 1, "system events after the bad one")
			} else {
				publishRaw(t, edgexSide, goodEvent.Topic, false, goodEvent.Payload)
				receive(t, events, 1, "events after the bad one")
			}
		})
	}
}

// A handler that falls behind loses messages rather than stalling the
// client, and is told how many it lost.
func TestHandlerThatFallsBehindIsToldWhatItLost(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	opts := fastOptions(b.URL())
	opts.HandlerQueue = 4
	c := newClient(t, opts)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	delivered := make(chan string, 100)
	errs := make(chan handlerError, 100)
	first := true
	must(t, c.SubscribeEvents(func(topic string, ev dtos.Event) {
		if first {
			first = false
			entered <- struct{}{}
			<-release
		}
		delivered <- ev.Id
	}, func(topic string, err error) { errs <- handlerError{topic, err} }))
	// A second subscriber on its own filter shows the router kept going.
	others := make(chan string, 100)
	must(t, c.Subscribe("edgex/other/#", func(topic string, _ []byte) { others <- topic }))
	startClient(t, c)
	edgexSide := rawClient(t, b.URL())
	event := capturedMessages(t, "edgex/events/device/")[0]

	publishRaw(t, edgexSide, event.Topic, false, event.Payload)
	receive(t, entered, 1, "handler entries")
	const burst = 20
	for range burst {
		publishRaw(t, edgexSide, event.Topic, false, event.Payload)
	}
	publishRaw(t, edgexSide, "edgex/other/ping", false, []byte("ping"))
	receive(t, others, 1, "messages for the other subscriber while the handler is stuck")
	close(release)

	// The handler gets the event it was stuck on and the queued ones; it
	// is told, before the first queued one, how many were dropped.
	receive(t, delivered, 1, "the event the handler was stuck on")
	got := receive(t, errs, 1, "reports of dropped messages")[0]
	wantDropped := fmt.Sprintf(": %d", burst-opts.HandlerQueue)
	if !errors.Is(got.err, ErrHandlerBehind) || !strings.HasSuffix(got.err.Error(), wantDropped) {
		t.Fatalf("onError got %v, want ErrHandlerBehind%s", got.err, wantDropped)
	}
	var dropped *DroppedError
	if !errors.As(got.err, &dropped) || dropped.Count != int64(burst-opts.HandlerQueue) {
		t.Fatalf("onError got %#v, want a DroppedError counting %d", got.err, burst-opts.HandlerQueue)
	}
	receive(t, delivered, opts.HandlerQueue, "queued events")
}

// A subscription added while connected takes effect at once; one added
// before Start takes effect on connecting. Malformed filters are refused.
func TestSubscribe(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	c := newClient(t, fastOptions(b.URL()))
	early := make(chan string, 10)
	must(t, c.Subscribe("app/early", func(topic string, _ []byte) { early <- topic }))
	startClient(t, c)
	late := make(chan string, 10)
	must(t, c.Subscribe("app/+/late/#", func(topic string, _ []byte) { late <- topic }))
	ctx := context.Background()
	must(t, c.Publish(ctx, "app/early", []byte("1")))
	must(t, c.Publish(ctx, "app/x/late/y/z", []byte("2")))
	receive(t, early, 1, "messages for the subscription made before Start")
	if got := receive(t, late, 1, "messages for the subscription made while connected")[0]; got != "app/x/late/y/z" {
		t.Errorf("got topic %s", got)
	}

	for _, filter := range []string{"", "app/#/x", "app/x#", "app/x+/y"} {
		if err := c.Subscribe(filter, func(string, []byte) {}); err == nil {
			t.Errorf("Subscribe(%q) accepted a malformed filter", filter)
		}
	}
	for _, topic := range []string{"", "app/+", "app/#"} {
		if err := c.Publish(ctx, topic, nil); err == nil {
			t.Errorf("Publish(%q) accepted a topic with wildcards", topic)
		}
	}
}

// A retained message reaches a client that subscribes after it was sent;
// a plain one does not, and does not replace the retained one.
func TestPublishRetainedReachesLaterSubscribers(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	ctx := context.Background()
	sender := newClient(t, fastOptions(b.URL()))
	startClient(t, sender)
	must(t, sender.PublishRetained(ctx, "app/last-word", []byte("kept")))
	must(t, sender.Publish(ctx, "app/last-word", []byte("passing")))
	must(t, sender.Publish(ctx, "app/plain", []byte("gone")))
	// The sender hears its own retained message back once the broker has
	// stored it, so that the late subscriber below cannot race the store.
	stored := make(chan string, 10)
	must(t, sender.Subscribe("app/last-word", func(_ string, p []byte) { stored <- string(p) }))
	receive(t, stored, 1, "the retained message, by its sender")

	late := newClient(t, fastOptions(b.URL()))
	got := make(chan string, 10)
	must(t, late.Subscribe("app/#", func(topic string, p []byte) { got <- topic + "=" + string(p) }))
	startClient(t, late)
	if msg := receive(t, got, 1, "retained messages for a later subscriber")[0]; msg != "app/last-word=kept" {
		t.Errorf("a later subscriber got %q, want the retained app/last-word=kept", msg)
	}
	select {
	case msg := <-got:
		t.Errorf("a later subscriber also got %q, which was not retained", msg)
	default:
	}
}

// When the broker restarts (losing every subscription), the client notices,
// reconnects with backoff, places its subscriptions again, and events and
// command responses flow again.
func TestReconnectsAfterBrokerRestart(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	changes := make(chan bool, 10)
	opts := fastOptions(b.URL())
	opts.OnConnectionChange = func(connected bool) { changes <- connected }
	c := newClient(t, opts)
	events := make(chan received, 10)
	must(t, c.SubscribeEvents(func(topic string, ev dtos.Event) { events <- received{topic, ev} }, nil))
	startClient(t, c)
	event := capturedMessages(t, "edgex/events/device/")[0]
	publishRaw(t, rawClient(t, b.URL()), event.Topic, false, event.Payload)
	receive(t, events, 1, "events before the restart")
	if got := receive(t, changes, 1, "connection changes"); !got[0] {
		t.Fatalf("first connection change reported %v", got[0])
	}

	must(t, b.Restart())
	if got := receive(t, changes, 2, "connection changes"); got[0] || !got[1] {
		t.Fatalf("connection changes after restart: %v, want [false true]", got)
	}
	if !c.Connected() {
		t.Error("Connected() is false after reconnecting")
	}
	publishRaw(t, rawClient(t, b.URL()), event.Topic, false, event.Payload)
	receive(t, events, 1, "events after the restart")

	startFakeCoreCommand(t, b.URL(), func(req commandCall) Envelope { return getAnswer(t, req, "true") })
	res, err := c.Command(context.Background(), "test-device-01", "gpio_out_1", MethodGet, nil, nil)
	if err != nil || res.Event == nil {
		t.Fatalf("command after restart: %+v, %v", res, err)
	}
}

// The broker may be down when the bridge starts: Start returns at once,
// WaitConnected says why it is not connected yet, and the client connects
// as soon as the broker is up.
func TestStartsWhileBrokerIsDown(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	b.Stop()
	c := newClient(t, fastOptions(b.URL()))
	events := make(chan received, 10)
	must(t, c.SubscribeEvents(func(topic string, ev dtos.Event) { events <- received{topic, ev} }, nil))
	must(t, c.Start(context.Background()))
	if c.Connected() {
		t.Fatal("Connected() with the broker down")
	}
	// The first attempt fails at once (connection refused); waiting for it
	// shows up in WaitConnected's error.
	eventually(t, "a failed connection attempt recorded", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.lastErr != nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.WaitConnected(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !edgex.IsUnavailable(err) {
		t.Fatalf("WaitConnected with the broker down: %v, want a deadline and an Unavailable last attempt", err)
	}

	must(t, b.Restart())
	startCtx, cancelStart := context.WithTimeout(context.Background(), waitTimeout)
	defer cancelStart()
	must(t, c.WaitConnected(startCtx))
	event := capturedMessages(t, "edgex/events/device/")[0]
	publishRaw(t, rawClient(t, b.URL()), event.Topic, false, event.Payload)
	receive(t, events, 1, "events once the broker is up")
}

// Brokers that require a password or TLS (with a private CA, and with
// client certificates) accept the client with the right settings and
// refuse it, with a typed reason, with the wrong ones.
func TestBrokerCredentialsAndTLS(t *testing.T) {
	files := newTestPKI(t)
	passwordFile := filepath.Join(files.dir, "passwords")
	out, err := exec.Command("mosquitto_passwd", "-b", "-c", passwordFile, "bridge", "s3cret").CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_passwd (Debian's mosquitto package ships it): %v: %s", err, out)
	}
	must(t, os.Chmod(passwordFile, 0o644))

	passwordBroker := broker.Options{PasswordFile: passwordFile}
	tlsBroker := broker.Options{CAFile: files.caFile, CertFile: files.certFile, KeyFile: files.keyFile}
	mutualTLSBroker := tlsBroker
	mutualTLSBroker.RequireClientCert = true
	trustCA := &tls.Config{RootCAs: files.pool, MinVersion: tls.VersionTLS12}
	withClientCert := &tls.Config{RootCAs: files.pool, Certificates: []tls.Certificate{files.client}, MinVersion: tls.VersionTLS12}
	cases := []struct {
		name      string
		broker    broker.Options
		configure func(*Options)
		// wantKind is the kind WaitConnected's error names when the client
		// must not get in; "" when it must.
		wantKind edgex.ErrorKind
	}{
		{"password accepted", passwordBroker, func(o *Options) { o.Username, o.Password = "bridge", "s3cret" }, ""},
		{"wrong password", passwordBroker, func(o *Options) { o.Username, o.Password = "bridge", "guess" }, edgex.KindUnauthorized},
		{"no credentials", passwordBroker, func(o *Options) {}, edgex.KindUnauthorized},
		{"TLS with the private CA", tlsBroker, func(o *Options) { o.TLS = trustCA }, ""},
		{"TLS without trusting the CA", tlsBroker, func(o *Options) { o.TLS = &tls.Config{MinVersion: tls.VersionTLS12} }, edgex.KindUnavailable},
		{"TLS with a client certificate", mutualTLSBroker, func(o *Options) { o.TLS = withClientCert }, ""},
		{"TLS missing the required client certificate", mutualTLSBroker, func(o *Options) { o.TLS = trustCA }, edgex.KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := broker.Start(t, tc.broker)
			opts := fastOptions(b.URL())
			tc.configure(&opts)
			c := newClient(t, opts)
			must(t, c.Start(context.Background()))
			if tc.wantKind == "" {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				must(t, c.WaitConnected(ctx))
				echo := make(chan []byte, 1)
				must(t, c.Subscribe("app/echo", func(_ string, p []byte) { echo <- p }))
				must(t, c.Publish(ctx, "app/echo", []byte("hello")))
				if got := receive(t, echo, 1, "echoed messages")[0]; string(got) != "hello" {
					t.Errorf("echo: %q", got)
				}
				return
			}
			eventually(t, "a refused connection attempt recorded", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.lastErr != nil
			})
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			err := c.WaitConnected(ctx)
			if edgex.KindOf(err) != tc.wantKind || c.Connected() {
				t.Errorf("WaitConnected: %v (kind %q), want kind %q and not connected", err, edgex.KindOf(err), tc.wantKind)
			}
		})
	}
}

// testPKI is a private CA with a server certificate for 127.0.0.1 and a
// client certificate, in files mosquitto can read.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	// mosquitto started as root drops to the mosquitto user, which must be
	// able to read these files.
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	must(t, os.Chmod(dir, 0o755))
	caKey, caCert, caDER := makeCert(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "edgebridge test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	})
	serverKey, _, serverDER := makeCert(t, caKey, caCert, &x509.Certificate{
		Subject: pkix.Name{CommonName: "mosquitto"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	clientKey, _, clientDER := makeCert(t, caKey, caCert, &x509.Certificate{
		Subject:  pkix.Name{CommonName: "edgebridge"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p := testPKI{dir: dir, caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server-key.pem"), pool: x509.NewCertPool()}
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	writePEM(t, p.certFile, "CERTIFICATE", serverDER)
	keyDER, err := x509.MarshalPKCS8PrivateKey(serverKey)
	must(t, err)
	writePEM(t, p.keyFile, "PRIVATE KEY", keyDER)
	p.pool.AddCert(caCert)
	p.client = tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}
	return p
}

func makeCert(t *testing.T, parentKey *ecdsa.PrivateKey, parent, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	must(t, err)
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	return key, cert, der
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o644))
}

// Close ends every goroutine of the client, fails commands still waiting,
// and returns promptly, whatever state the client is in.
func TestCloseLeavesNothingBehind(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, b *broker.Broker, fake *fakeCoreCommand, c *Client) (afterClose func(t *testing.T))
	}{
		{"never started", func(t *testing.T, b *broker.Broker, fake *fakeCoreCommand, c *Client) func(*testing.T) { return nil }},
		{"retrying while the broker is down", func(t *testing.T, b *broker.Broker, fake *fakeCoreCommand, c *Client) func(*testing.T) {
			b.Stop()
			must(t, c.Start(context.Background()))
			eventually(t, "a failed attempt", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.lastErr != nil
			})
			return nil
		}},
		{"connected, commands waiting for answers", func(t *testing.T, b *broker.Broker, fake *fakeCoreCommand, c *Client) func(*testing.T) {
			events := make(chan received, 1)
			must(t, c.SubscribeEvents(func(topic string, ev dtos.Event) { events <- received{topic, ev} }, nil))
			startClient(t, c)
			const inFlight = 5
			results := make(chan error, inFlight)
			for range inFlight {
				go func() {
					_, err := c.Command(context.Background(), "test-device-01", "gpio_out_1", MethodGet, nil, nil)
					results <- err
				}()
			}
			eventually(t, "core-command has every request", func() bool { return len(fake.seen()) == inFlight })
			return func(t *testing.T) {
				for _, err := range receive(t, results, inFlight, "command results") {
					if !edgex.IsUnavailable(err) || !errors.Is(err, ErrClosed) {
						t.Errorf("in-flight command ended with %v, want Unavailable: closed", err)
					}
				}
				if _, err := c.Command(context.Background(), "test-device-01", "gpio_out_1", MethodGet, nil, nil); !errors.Is(err, ErrClosed) {
					t.Errorf("command after Close: %v, want ErrClosed", err)
				}
				if err := c.Subscribe("app/x", func(string, []byte) {}); !errors.Is(err, ErrClosed) {
					t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := broker.Start(t, broker.Options{})
			fake := startFakeCoreCommand(t, b.URL(), nil) // a core-command that never answers
			before := goleak.IgnoreCurrent()
			c, err := New(fastOptions(b.URL()))
			must(t, err)
			afterClose := tc.run(t, b, fake, c)
			start := time.Now()
			c.Close()
			c.Close() // idempotent
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Close took %s", took)
			}
			if c.Connected() {
				t.Error("Connected() after Close")
			}
			if afterClose != nil {
				afterClose(t)
			}
			if err := c.WaitConnected(context.Background()); !errors.Is(err, ErrClosed) {
				t.Errorf("WaitConnected after Close: %v", err)
			}
			if n := c.commands.inFlight(); n != 0 {
				t.Errorf("%d commands still registered after Close", n)
			}
			goleak.VerifyNone(t, before)
		})
	}
}

// Start's context bounds the client's life, as controller-runtime's
// runnables expect.
func TestStartContextEndsTheClient(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	c := newClient(t, fastOptions(b.URL()))
	ctx, cancel := context.WithCancel(context.Background())
	must(t, c.Start(ctx))
	wait, cancelWait := context.WithTimeout(context.Background(), waitTimeout)
	defer cancelWait()
	must(t, c.WaitConnected(wait))
	cancel()
	eventually(t, "client stopped by its context", func() bool {
		return !c.Connected() && errors.Is(c.Publish(context.Background(), "app/x", nil), ErrClosed)
	})
	if err := c.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after the context ended: %v", err)
	}
}

// New refuses options it cannot work with, before touching the network.
func TestNewChecksOptions(t *testing.T) {
	for _, url := range []string{"", "127.0.0.1:1883", "http://broker:1883", "tcp://"} {
		if _, err := New(Options{BrokerURL: url}); err == nil {
			t.Errorf("New accepted broker URL %q", url)
		}
	}
	c, err := New(Options{BrokerURL: "tcp://127.0.0.1:1883"})
	must(t, err)
	defer c.Close()
	if !strings.HasPrefix(c.opts.ClientID, "edgebridge-") || len(c.opts.ClientID) > 23 {
		t.Errorf("default client id %q: want edgebridge- and at most MQTT 3.1.1's guaranteed 23 characters", c.opts.ClientID)
	}
	if c.opts.CommandTimeout != DefaultCommandTimeout || c.opts.TopicPrefix != "edgex" {
		t.Errorf("defaults not applied: %+v", c.opts)
	}
}

// Listeners added after New hear every change of readiness, in order, like
// OnConnectionChange, and stop hearing once removed.
func TestNotifyConnectionAfterNew(t *testing.T) {
	b := broker.Start(t, broker.Options{})
	c := newClient(t, fastOptions(b.URL()))
	first, second := make(chan bool, 10), make(chan bool, 10)
	c.NotifyConnection(func(connected bool) { first <- connected })
	removeSecond := c.NotifyConnection(func(connected bool) { second <- connected })
	startClient(t, c)
	for _, ch := range []chan bool{first, second} {
		if got := receive(t, ch, 1, "connection changes"); !got[0] {
			t.Fatalf("first connection change reported %v", got[0])
		}
	}
	removeSecond()
	must(t, b.Restart())
	if got := receive(t, first, 2, "connection changes"); got[0] || !got[1] {
		t.Fatalf("connection changes after restart: %v, want [false true]", got)
	}
	if len(second) != 0 {
		t.Errorf("a removed listener heard %d changes", len(second))
	}
}
