package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/google/uuid"

	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// wireEnvelope is the message envelope exactly as EdgeX's go-mod-messaging
// marshals it: receivedTopic is always present, queryParams only when set.
type wireEnvelope struct {
	APIVersion    string            `json:"apiVersion"`
	ReceivedTopic string            `json:"receivedTopic"`
	CorrelationID string            `json:"correlationID"`
	RequestID     string            `json:"requestID"`
	ErrorCode     int               `json:"errorCode"`
	Payload       []byte            `json:"payload"`
	ContentType   string            `json:"contentType"`
	QueryParams   map[string]string `json:"queryParams,omitempty"`
}

type outMessage struct {
	topic   string
	payload []byte
	retain  bool
}

// errNoBus is returned by calls that need the message bus when the
// simulator has none, or while the bus is dropped.
var errNoBus = errors.New("simulator: message bus not connected")

// bus is the simulator's MQTT connection. Announcements go through one
// ordered queue so that subscribers see them in the order changes happened;
// messages published while disconnected are lost, as QoS 0 ones are.
type bus struct {
	s *Simulator

	mu      sync.Mutex
	client  mqtt.Client
	queue   []outMessage
	wake    chan struct{}
	running bool

	// inflight bounds concurrently served external command requests.
	inflight chan struct{}
}

func newBus(s *Simulator) *bus {
	return &bus{s: s, wake: make(chan struct{}, 1), inflight: make(chan struct{}, 256)}
}

// start connects and waits until the command request topics are subscribed.
func (b *bus) start(ctx context.Context) error {
	b.mu.Lock()
	b.running = true
	b.mu.Unlock()
	b.s.wg.Add(1)
	go b.publishLoop()
	return b.connect(ctx)
}

func (b *bus) connect(ctx context.Context) error {
	ready := make(chan struct{})
	var once sync.Once
	opts := mqtt.NewClientOptions().
		AddBroker(b.s.opts.BrokerURL).
		SetClientID("edgex-simulator-" + uuid.NewString()[:8]).
		SetUsername(b.s.opts.BrokerUsername).
		SetPassword(b.s.opts.BrokerPassword).
		SetTLSConfig(b.s.opts.BrokerTLS).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(time.Second).
		SetConnectTimeout(5 * time.Second).
		SetOrderMatters(false).
		SetOnConnectHandler(func(c mqtt.Client) {
			// A clean session forgets subscriptions: every (re)connect
			// subscribes again, as core-command does.
			if err := b.subscribe(c); err != nil {
				b.s.log.Error("subscribe to command request topics", "err", err)
				return
			}
			once.Do(func() { close(ready) })
		})
	client := mqtt.NewClient(opts)
	token := client.Connect()
	if err := waitToken(ctx, token); err != nil {
		client.Disconnect(0)
		return fmt.Errorf("connect to broker %s: %w", b.s.opts.BrokerURL, err)
	}
	select {
	case <-ready:
	case <-ctx.Done():
		client.Disconnect(0)
		return fmt.Errorf("subscribe on broker %s: %w", b.s.opts.BrokerURL, ctx.Err())
	}
	b.mu.Lock()
	b.client = client
	b.mu.Unlock()
	return nil
}

func (b *bus) subscribe(c mqtt.Client) error {
	topics := map[string]byte{
		b.s.topics.AllCommandRequests():     0,
		b.s.topics.CommandQueryRequest("#"): 0,
	}
	return waitTokenTimeout(c.SubscribeMultiple(topics, b.onMessage), 10*time.Second)
}

// onMessage serves each request on its own goroutine, so a slow device does
// not hold up requests for others.
func (b *bus) onMessage(_ mqtt.Client, m mqtt.Message) {
	topic, payload := m.Topic(), append([]byte(nil), m.Payload()...)
	select {
	case b.inflight <- struct{}{}:
	case <-b.s.lifetime.Done():
		return
	}
	b.s.wg.Add(1)
	go func() {
		defer b.s.wg.Done()
		defer func() { <-b.inflight }()
		b.s.serveExternal(b.s.lifetime, topic, payload)
	}()
}

// drop disconnects, as a broker outage or network cut would.
func (b *bus) drop() {
	b.mu.Lock()
	client := b.client
	b.client = nil
	b.mu.Unlock()
	if client != nil {
		client.Disconnect(100)
	}
}

// restore reconnects after drop.
func (b *bus) restore(ctx context.Context) error {
	b.mu.Lock()
	connected, running := b.client != nil, b.running
	b.mu.Unlock()
	if connected || !running {
		return nil
	}
	return b.connect(ctx)
}

func (b *bus) close() {
	b.mu.Lock()
	b.running = false
	b.mu.Unlock()
	b.signal()
	b.drop()
}

func (b *bus) current() mqtt.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.client
}

// enqueue adds a message to the ordered queue. While there is no
// connection (before Start, after DropBus) the message is lost at once, as
// EdgeX's publish would fail.
func (b *bus) enqueue(m outMessage) {
	b.mu.Lock()
	if !b.running || b.client == nil {
		b.mu.Unlock()
		return
	}
	b.queue = append(b.queue, m)
	b.mu.Unlock()
	b.signal()
}

func (b *bus) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *bus) publishLoop() {
	defer b.s.wg.Done()
	for range b.wake {
		b.mu.Lock()
		batch, running := b.queue, b.running
		b.queue = nil
		b.mu.Unlock()
		for _, m := range batch {
			if err := b.publish(m); err != nil {
				b.s.log.Debug("message lost", "topic", m.topic, "err", err)
			}
		}
		if !running {
			return
		}
	}
}

// publish sends one message at QoS 0 and waits until it is written.
func (b *bus) publish(m outMessage) error {
	client := b.current()
	if client == nil || !client.IsConnectionOpen() {
		return errNoBus
	}
	return waitTokenTimeout(client.Publish(m.topic, 0, m.retain, m.payload), 10*time.Second)
}

// publishNow publishes outside the ordered queue and waits, for callers
// that need to know the message left (PublishEvent, PublishReadings).
func (b *bus) publishNow(ctx context.Context, m outMessage) error {
	client := b.current()
	if client == nil || !client.IsConnectionOpen() {
		return errNoBus
	}
	return waitToken(ctx, client.Publish(m.topic, 0, m.retain, m.payload))
}

func waitToken(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func waitTokenTimeout(t mqtt.Token, d time.Duration) error {
	if !t.WaitTimeout(d) {
		return fmt.Errorf("no answer from broker within %s", d)
	}
	return t.Error()
}

func encodeEnvelope(env wireEnvelope) []byte {
	env.APIVersion = messagebus.APIVersion
	data, _ := json.Marshal(env)
	return data
}

// announce queues core-metadata's system event for a change. Callers hold
// s.mu, so announcements are queued in the order changes were made.
func (s *Simulator) announce(kind, action, owner, profile string, details any, corr string) {
	payload, err := messagebus.EncodeSystemEvent(kind, action, owner, details, time.Now().UnixNano())
	if err != nil {
		s.log.Error("encode system event", "err", err)
		return
	}
	s.bus.enqueue(outMessage{
		topic:   s.topics.SystemEvent(kind, action, owner, profile),
		payload: encodeEnvelope(wireEnvelope{CorrelationID: corr, Payload: payload, ContentType: messagebus.ContentTypeJSON}),
	})
}

// eventMessage is a device service's event publication for ev.
func (s *Simulator) eventMessage(service string, ev dtos.Event, corr string) (outMessage, error) {
	contentType, payload, err := messagebus.EncodeEvent(uuid.NewString(), ev)
	if err != nil {
		return outMessage{}, err
	}
	return outMessage{
		topic:   s.topics.Event(service, ev.ProfileName, ev.DeviceName, ev.SourceName),
		payload: encodeEnvelope(wireEnvelope{CorrelationID: corr, Payload: payload, ContentType: contentType}),
	}, nil
}

// sendEvent queues a device event, as device-sdk-go sends one after a
// successful set or a read with ds-pushevent.
func (s *Simulator) sendEvent(service string, ev dtos.Event, corr string) {
	m, err := s.eventMessage(service, ev, corr)
	if err != nil {
		s.log.Error("encode event", "err", err)
		return
	}
	s.bus.enqueue(m)
}
