package messagebus

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/go-logr/logr"

	"github.com/edgebridge/edgebridge/edgex"
)

// Defaults for Options fields left zero.
const (
	DefaultConnectTimeout       = 10 * time.Second
	DefaultKeepAlive            = 30 * time.Second
	DefaultMaxReconnectInterval = 30 * time.Second
	DefaultCommandTimeout       = 10 * time.Second
	DefaultHandlerQueue         = 8192
)

// minReconnectDelay is the first pause after a failed attempt; it doubles up
// to Options.MaxReconnectInterval.
const minReconnectDelay = 250 * time.Millisecond

// stableConnection is how long a connection must last for the backoff to
// start again from its shortest pause.
const stableConnection = 10 * time.Second

// disconnectQuiesce bounds how long a disconnect waits for paho to flush,
// in milliseconds (paho's unit).
const disconnectQuiesce = 250

var (
	// ErrClosed is returned once Close was called or Start's context ended.
	ErrClosed = errors.New("message bus client closed")
	// ErrNotConnected is returned by calls that need the broker while the
	// client is (re)connecting.
	ErrNotConnected = errors.New("not connected to the MQTT broker")
)

// Options configure a Client. Zero values take the documented defaults.
type Options struct {
	// BrokerURL is the broker's address: tcp://host:1883, or ssl://host:8883
	// for TLS.
	BrokerURL string
	// ClientID names the MQTT session; default "edgebridge-" and 12 random
	// hex digits. Two clients with the same id knock each other off the
	// broker, so leave it empty unless the broker's ACLs need a fixed one.
	ClientID string
	// Username and Password, when the broker requires them.
	Username, Password string
	// TLS overrides the TLS settings for ssl:// brokers: a custom CA, a
	// client certificate.
	TLS *tls.Config
	// TopicPrefix is EdgeX's base topic; default "edgex".
	TopicPrefix string
	// ConnectTimeout bounds each connection attempt and each subscription
	// round trip; default 10s.
	ConnectTimeout time.Duration
	// KeepAlive is the MQTT keep-alive period; default 30s.
	KeepAlive time.Duration
	// MaxReconnectInterval caps the pause between connection attempts,
	// which starts at 250ms and doubles; default 30s. The client retries
	// forever.
	MaxReconnectInterval time.Duration
	// CommandTimeout bounds each Command (and each Publish) unless its
	// context ends sooner; default 10s.
	CommandTimeout time.Duration
	// HandlerQueue is how many messages each subscription buffers for its
	// handler; default 8192, about a second of events at the rates a pool
	// is sized for, so that a garbage collection or a busy moment of the
	// node does not cost readings. A handler that falls further behind
	// loses messages, reported to its onError, rather than stalling the
	// others.
	HandlerQueue int
	// Logger receives connection changes and dropped messages; the zero
	// value discards.
	Logger logr.Logger
	// OnConnectionChange is called, from one goroutine and in order, each
	// time the client becomes ready (connected with every subscription in
	// place) or stops being ready.
	OnConnectionChange func(connected bool)
}

func (o Options) withDefaults() (Options, error) {
	if err := checkBrokerURL(o.BrokerURL); err != nil {
		return o, err
	}
	if o.ClientID == "" {
		o.ClientID = "edgebridge-" + randomHex(6)
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = DefaultTopicPrefix
	}
	o.ConnectTimeout = orDefault(o.ConnectTimeout, DefaultConnectTimeout)
	o.KeepAlive = orDefault(o.KeepAlive, DefaultKeepAlive)
	o.MaxReconnectInterval = orDefault(o.MaxReconnectInterval, DefaultMaxReconnectInterval)
	o.CommandTimeout = orDefault(o.CommandTimeout, DefaultCommandTimeout)
	if o.HandlerQueue <= 0 {
		o.HandlerQueue = DefaultHandlerQueue
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return o, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func checkBrokerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("broker URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return fmt.Errorf("broker URL %q: scheme must be tcp, ssl (or mqtt, mqtts, tls, ws, wss)", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("broker URL %q has no host", raw)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// Client is the bridge's connection to EdgeX's MQTT message bus: it receives
// device events and system events and runs commands through core-command.
// It keeps itself connected, re-placing every subscription on each new
// connection, until Close.
type Client struct {
	opts   Options
	topics Topics
	log    logr.Logger
	mqtt   paho.Client

	// life ends at Close or when Start's context ends; every goroutine of
	// the client watches it.
	life       context.Context
	endLife    context.CancelFunc
	stopFollow func() bool
	wg         sync.WaitGroup
	closeOnce  sync.Once

	// lost is signalled by paho when the connection drops; replace by a
	// live Subscribe that could not be placed, asking for a fresh
	// connection on which every subscription is placed again.
	lost    chan struct{}
	replace chan struct{}

	mu        sync.Mutex
	started   bool
	closed    bool
	connected bool
	// changed is closed and replaced whenever connected or closed changes.
	changed chan struct{}
	lastErr error
	// filters are the remembered subscriptions, placed on every connection;
	// routes fan each filter's messages out to its subscribers.
	filters []string
	routes  map[string][]func(topic string, payload []byte)

	commands pendingCommands

	// listeners are told of every change of readiness, as
	// Options.OnConnectionChange is (see NotifyConnection).
	listenersMu  sync.Mutex
	listeners    map[int]func(connected bool)
	nextListener int
}

// New checks the options and builds a client; nothing touches the network
// until Start.
func New(opts Options) (*Client, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("new message bus client: %w", err)
	}
	c := &Client{
		opts:     opts,
		topics:   Topics{Prefix: opts.TopicPrefix},
		log:      opts.Logger.WithValues("broker", opts.BrokerURL),
		lost:     make(chan struct{}, 1),
		replace:  make(chan struct{}, 1),
		changed:  make(chan struct{}),
		routes:   map[string][]func(string, []byte){},
		commands: pendingCommands{waiting: map[string]chan Envelope{}},
	}
	c.life, c.endLife = context.WithCancel(context.Background())
	c.mqtt = paho.NewClient(c.pahoOptions())
	// Command and command-query responses are subscribed once, for the
	// client's whole life, and correlated on paho's router without passing
	// through any handler queue, so that no event handler can delay them.
	c.addRoute(c.topics.AllCommandResponses(), c.commands.resolve(c.log))
	c.addRoute(c.topics.CommandQueryResponse(), c.commands.resolve(c.log))
	return c, nil
}

func (c *Client) pahoOptions() *paho.ClientOptions {
	o := paho.NewClientOptions()
	if u, err := url.Parse(c.opts.BrokerURL); err == nil && bufferedScheme(u.Scheme) {
		o.SetCustomOpenConnectionFn(openBuffered)
	}
	return o.
		AddBroker(c.opts.BrokerURL).
		SetClientID(c.opts.ClientID).
		SetUsername(c.opts.Username).
		SetPassword(c.opts.Password).
		SetTLSConfig(c.opts.TLS).
		// Without an explicit version paho retries every refused connection
		// as MQTT 3.1, doubling the cost of each failed attempt.
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetOrderMatters(true).
		SetDefaultPublishHandler(c.dispatch).
		// The client runs its own reconnect loop: paho's sleeps between
		// attempts cannot be interrupted, so Close could not stop them.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetConnectTimeout(c.opts.ConnectTimeout).
		SetKeepAlive(c.opts.KeepAlive).
		SetWriteTimeout(c.opts.CommandTimeout).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.log.Info("lost connection to the MQTT broker", "reason", err)
			signal(c.lost)
		})
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// Start begins connecting in the background and returns at once; the
// broker may be down. The client stops, as by Close, when ctx ends.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.life.Err() != nil {
		return ErrClosed
	}
	if c.started {
		return errors.New("message bus client already started")
	}
	c.started = true
	c.stopFollow = context.AfterFunc(ctx, c.endLife)
	c.wg.Add(1)
	go c.supervise()
	return nil
}

// WaitConnected waits until the client is connected with every subscription
// in place. Its error names the last connection failure, if any.
func (c *Client) WaitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		ready, closed, changed, lastErr := c.connected, c.closed, c.changed, c.lastErr
		c.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case ready:
			return nil
		}
		select {
		case <-changed:
		case <-c.life.Done():
			return ErrClosed
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("wait for MQTT connection to %s: %w (last attempt: %w)", c.opts.BrokerURL, ctx.Err(), lastErr)
			}
			return fmt.Errorf("wait for MQTT connection to %s: %w", c.opts.BrokerURL, ctx.Err())
		}
	}
}

// Connected reports whether the client is connected with every
// subscription in place, for health checks.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected && c.mqtt.IsConnectionOpen()
}

// Close disconnects, fails commands still waiting for an answer, and stops
// every goroutine of the client, waiting for running handlers to return.
// It takes at most about ConnectTimeout (a connection attempt in progress
// is let finish) plus the time running handlers need to return. Close is safe to call more than once, but not from a handler or
// OnConnectionChange, which Close waits for.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.notifyLocked()
		stopFollow := c.stopFollow
		c.mu.Unlock()
		if stopFollow != nil {
			stopFollow()
		}
		c.endLife()
		c.wg.Wait()
	})
}

func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// supervise keeps the client connected until its life ends: connect, place
// subscriptions, wait for the connection to drop, and retry with backoff.
func (c *Client) supervise() {
	defer c.wg.Done()
	defer c.teardown()
	retry := backoff{max: c.opts.MaxReconnectInterval}
	for {
		err := c.connect()
		if err == nil {
			c.announce(true)
			since := time.Now()
			ended := c.awaitLoss()
			c.setConnected(false)
			if ended {
				return
			}
			// After a connection that lasted, the first new attempt goes at
			// once. One dropped at once (say, by another client using the
			// same id) backs off like a failed attempt, or two bridges
			// would knock each other off in a tight loop.
			if time.Since(since) >= stableConnection {
				retry.reset()
				continue
			}
		} else {
			if c.life.Err() != nil {
				return
			}
			c.recordFailure(err)
		}
		if !c.pause(retry.next()) {
			return
		}
	}
}

func (c *Client) teardown() {
	c.setConnected(false)
	c.mqtt.Disconnect(disconnectQuiesce)
}

// connect makes one connection attempt and places every subscription.
func (c *Client) connect() error {
	drain(c.lost)
	drain(c.replace)
	tok := c.mqtt.Connect()
	// paho bounds the attempt by ConnectTimeout; waiting for it even after
	// Close keeps paho from connecting behind the client's back.
	<-tok.Done()
	if err := tok.Error(); err != nil {
		return connectError(c.opts.BrokerURL, err)
	}
	if err := c.placeAll(); err != nil {
		c.mqtt.Disconnect(disconnectQuiesce)
		return err
	}
	return nil
}

func connectError(broker string, err error) error {
	kind := edgex.KindUnavailable
	if errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		kind = edgex.KindUnauthorized
	}
	return &edgex.Error{Kind: kind, Op: "connect to MQTT broker " + broker, Err: err}
}

// placeAll subscribes every remembered filter and marks the client
// connected in the same critical section that finds nothing left to place,
// so that a Subscribe racing with it is either placed here or by itself.
func (c *Client) placeAll() error {
	placed := map[string]bool{}
	for {
		c.mu.Lock()
		var todo []string
		for _, f := range c.filters {
			if !placed[f] {
				todo = append(todo, f)
			}
		}
		if len(todo) == 0 {
			c.connected = true
			c.lastErr = nil
			c.notifyLocked()
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		if err := c.place(todo); err != nil {
			return err
		}
		for _, f := range todo {
			placed[f] = true
		}
	}
}

// awaitLoss waits for the connection to end; it reports whether the
// client's life ended.
func (c *Client) awaitLoss() bool {
	for {
		select {
		case <-c.life.Done():
			return true
		case <-c.replace:
			c.mqtt.Disconnect(disconnectQuiesce)
			return false
		case <-c.lost:
			// paho reports a loss from its own goroutine, which may run
			// late, after the connection it is about was already replaced.
			if c.mqtt.IsConnectionOpen() {
				continue
			}
			return false
		}
	}
}

func (c *Client) announce(connected bool) {
	if connected {
		c.log.Info("connected to the MQTT broker")
	} else {
		c.log.Info("disconnected from the MQTT broker")
	}
	if c.opts.OnConnectionChange != nil {
		c.opts.OnConnectionChange(connected)
	}
	c.listenersMu.Lock()
	listeners := make([]func(bool), 0, len(c.listeners))
	for _, fn := range c.listeners {
		listeners = append(listeners, fn)
	}
	c.listenersMu.Unlock()
	for _, fn := range listeners {
		fn(connected)
	}
}

// NotifyConnection calls fn each time the client becomes ready (connected
// with every subscription in place) or stops being ready, like
// Options.OnConnectionChange, for users that come after New. Calls come
// from one goroutine, in order, and must return quickly: a reconnect that
// takes less than a second, which no polling of Connected would see, is
// still two calls. remove stops the calls.
func (c *Client) NotifyConnection(fn func(connected bool)) (remove func()) {
	c.listenersMu.Lock()
	defer c.listenersMu.Unlock()
	if c.listeners == nil {
		c.listeners = map[int]func(bool){}
	}
	id := c.nextListener
	c.nextListener++
	c.listeners[id] = fn
	return func() {
		c.listenersMu.Lock()
		delete(c.listeners, id)
		c.listenersMu.Unlock()
	}
}

func (c *Client) setConnected(connected bool) {
	c.mu.Lock()
	changed := c.connected != connected
	if changed {
		c.connected = connected
		c.notifyLocked()
	}
	c.mu.Unlock()
	if changed {
		c.announce(connected)
	}
}

func (c *Client) recordFailure(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
	c.log.Error(err, "MQTT connection attempt failed; retrying")
}

// pause waits d, or until the client's life ends (then it returns false).
func (c *Client) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.life.Done():
		return false
	}
}

// waitToken waits for a paho token within timeout; the client's end
// interrupts the wait.
func (c *Client) waitToken(tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("no answer from the broker within %s", timeout)
	case <-c.life.Done():
		return ErrClosed
	}
}

// backoff doubles the pause between connection attempts, shortened by up
// to a quarter at random so that bridges restarted together do not
// reconnect in lockstep.
type backoff struct {
	cur, max time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = minReconnectDelay
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	b.cur = min(b.cur, b.max)
	jitter := 0.75 + 0.25*mathrand.Float64()
	return time.Duration(float64(b.cur) * jitter)
}
