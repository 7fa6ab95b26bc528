package messagebus

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
	"github.com/go-logr/logr"

	"github.com/edgebridge/edgebridge/edgex"
)

// maxQueuedBytes bounds the payload bytes one subscription holds for a
// handler that is behind, whatever HandlerQueue says.
const maxQueuedBytes = 64 << 20

// maxReusedPayload bounds the decoding buffer a subscription keeps between
// messages; events are a few kilobytes.
const maxReusedPayload = 64 << 10

// ErrHandlerBehind is reported to onError when a handler fell so far behind
// that messages for it were dropped.
var ErrHandlerBehind = errors.New("handler is behind, messages dropped")

// DroppedError is how ErrHandlerBehind reaches onError: with the number of
// messages lost since the last report, so that a caller can count lost
// messages rather than reports.
type DroppedError struct {
	Count int64
}

func (e *DroppedError) Error() string { return fmt.Sprintf("%v: %d", ErrHandlerBehind, e.Count) }

func (e *DroppedError) Unwrap() error { return ErrHandlerBehind }

// Subscribe delivers every message matching the MQTT filter to handler, in
// arrival order, on a goroutine of its own. The subscription is remembered
// and placed again on every new connection. When the client is connected,
// Subscribe returns once the broker acknowledged the filter; an error means
// the filter is invalid, the client is closed, or the broker refused the
// filter (which is then forgotten).
func (c *Client) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	if handler == nil {
		return fmt.Errorf("subscribe to %q: nil handler", filter)
	}
	return c.subscribeQueued(filter, func(topic string, payload []byte) error {
		handler(topic, payload)
		return nil
	}, nil)
}

// SubscribeEvents delivers every device event, decoded, to handler. Messages
// that do not decode go to onError (or the log when onError is nil).
func (c *Client) SubscribeEvents(handler func(topic string, ev dtos.Event), onError func(topic string, err error)) error {
	if handler == nil {
		return errors.New("subscribe to events: nil handler")
	}
	var dec EventDecoder
	return c.subscribeQueued(c.topics.AllEvents(), func(topic string, payload []byte) error {
		ev, err := dec.Decode(payload)
		if err != nil {
			return err
		}
		handler(topic, ev)
		return nil
	}, onError)
}

// SubscribeSystemEvents delivers every core-metadata system event, decoded,
// to handler. Messages that do not decode go to onError (or the log when
// onError is nil).
func (c *Client) SubscribeSystemEvents(handler func(topic string, se SystemEvent), onError func(topic string, err error)) error {
	if handler == nil {
		return errors.New("subscribe to system events: nil handler")
	}
	return c.subscribeQueued(c.topics.AllSystemEvents(), func(topic string, payload []byte) error {
		env, err := DecodeEnvelope(payload)
		if err != nil {
			return err
		}
		se, err := DecodeSystemEvent(env)
		if err != nil {
			return err
		}
		handler(topic, se)
		return nil
	}, onError)
}

func (c *Client) subscribeQueued(filter string, handle func(topic string, payload []byte) error, onError func(topic string, err error)) error {
	if err := checkFilter(filter); err != nil {
		return fmt.Errorf("subscribe to %q: %w", filter, err)
	}
	if onError == nil {
		onError = func(topic string, err error) {
			c.log.Error(err, "dropped a message", "topic", topic)
		}
	}
	box := &inbox{
		filter:  filter,
		items:   make(chan delivery, c.opts.HandlerQueue),
		handle:  handle,
		onError: onError,
		quit:    make(chan struct{}),
		log:     c.log.WithValues("filter", filter),
	}
	c.mu.Lock()
	if c.closed || c.life.Err() != nil {
		c.mu.Unlock()
		return fmt.Errorf("subscribe to %q: %w", filter, ErrClosed)
	}
	isNew := c.addRouteLocked(filter, box.offer)
	live := c.connected
	// Added under mu, which Close takes before waiting, so that the
	// worker is always waited for.
	c.wg.Add(1)
	go box.run(c.life.Done(), &c.wg)
	c.mu.Unlock()
	if !isNew || !live {
		return nil
	}
	return c.placeLive(filter, box)
}

// placeLive subscribes a filter added while connected. A refusal is final;
// any other failure is left to a fresh connection, which places every
// filter again.
func (c *Client) placeLive(filter string, box *inbox) error {
	err := c.place([]string{filter})
	var refused *edgex.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refused) && refused.Kind == edgex.KindUnauthorized:
		c.forget(filter)
		close(box.quit)
		return err
	default:
		c.log.Error(err, "could not subscribe; reconnecting to place every subscription again", "filter", filter)
		signal(c.replace)
		return nil
	}
}

func (c *Client) addRoute(filter string, deliver func(topic string, payload []byte)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addRouteLocked(filter, deliver)
}

// addRouteLocked remembers a subscriber and reports whether its filter is
// new. paho keeps one route per filter, so the client fans out itself.
func (c *Client) addRouteLocked(filter string, deliver func(topic string, payload []byte)) bool {
	isNew := len(c.routes[filter]) == 0
	c.routes[filter] = append(c.routes[filter], deliver)
	if isNew {
		c.filters = append(c.filters, filter)
	}
	return isNew
}

func (c *Client) forget(filter string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.routes, filter)
	for i, f := range c.filters {
		if f == filter {
			c.filters = append(c.filters[:i:i], c.filters[i+1:]...)
			break
		}
	}
}

// dispatch runs on paho's router goroutine, which delivers every message
// in order: it only hands messages over and never waits. paho's own
// routes would split the topic and every filter into levels for each
// message, a dozen allocations an event; the client keeps no route in
// paho and matches the filters itself (see topicMatches).
func (c *Client) dispatch(_ paho.Client, m paho.Message) {
	topic := m.Topic()
	// A message matches one or two filters; the array keeps them off
	// the heap. Subscriber lists are only ever appended to, so the
	// slices taken under mu stay valid after it.
	var found [4][]func(topic string, payload []byte)
	matched := found[:0]
	c.mu.Lock()
	for _, f := range c.filters {
		if topicMatches(f, topic) {
			matched = append(matched, c.routes[f])
		}
	}
	c.mu.Unlock()
	for _, subscribers := range matched {
		for _, deliver := range subscribers {
			deliver(topic, m.Payload())
		}
	}
}

// topicMatches applies MQTT's matching of a topic to a filter whose
// wildcards checkFilter accepted: '+' is any one level, a last '#' any
// number of levels, none included.
func topicMatches(filter, topic string) bool {
	for {
		level, filterRest, filterMore := strings.Cut(filter, "/")
		if level == "#" {
			return true
		}
		name, topicRest, topicMore := strings.Cut(topic, "/")
		if level != "+" && level != name {
			return false
		}
		switch {
		case filterMore && topicMore:
			filter, topic = filterRest, topicRest
		case filterMore:
			return filterRest == "#" // "a/#" matches "a"
		default:
			return !topicMore
		}
	}
}

// place subscribes filters on the current connection and waits for the
// broker's acknowledgement.
func (c *Client) place(filters []string) error {
	qos := make(map[string]byte, len(filters))
	for _, f := range filters {
		qos[f] = 0
	}
	op := "subscribe to " + strings.Join(filters, ", ")
	tok := c.mqtt.SubscribeMultiple(qos, nil)
	if err := c.waitToken(tok, c.opts.ConnectTimeout); err != nil {
		return &edgex.Error{Kind: edgex.KindUnavailable, Op: op, Err: err}
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, granted := range st.Result() {
			if granted == 0x80 { // MQTT 3.1.1's SUBACK failure code
				return &edgex.Error{Kind: edgex.KindUnauthorized, Op: "subscribe to " + f, Message: "the broker refused the subscription"}
			}
		}
	}
	return nil
}

// checkFilter applies MQTT's rules for subscription filters: '#' only as
// the whole last level, '+' only as a whole level.
func checkFilter(filter string) error {
	if filter == "" {
		return errors.New("empty topic filter")
	}
	levels := strings.Split(filter, "/")
	for i, level := range levels {
		switch {
		case strings.Contains(level, "#") && (level != "#" || i != len(levels)-1):
			return errors.New("'#' must be the whole last level")
		case strings.Contains(level, "+") && level != "+":
			return errors.New("'+' must be a whole level")
		}
	}
	return nil
}

// checkTopic refuses what MQTT does not allow as a publish topic.
func checkTopic(topic string) error {
	if topic == "" {
		return errors.New("empty topic")
	}
	if strings.ContainsAny(topic, "#+") {
		return errors.New("wildcards in a publish topic")
	}
	return nil
}

// delivery is one message (or one refusal) waiting for a handler.
type delivery struct {
	topic   string
	payload []byte
	err     error
}

// inbox decouples one subscription's handler from paho's router: offer
// never blocks, and run calls the handler in arrival order.
type inbox struct {
	filter  string
	items   chan delivery
	handle  func(topic string, payload []byte) error
	onError func(topic string, err error)
	quit    chan struct{}
	log     logr.Logger

	queuedBytes atomic.Int64
	dropped     atomic.Int64
}

func (b *inbox) offer(topic string, payload []byte) {
	d := delivery{topic: topic, payload: payload}
	if len(payload) > MaxMessageSize {
		d = delivery{topic: topic, err: ErrMessageTooLarge}
	}
	size := int64(len(d.payload))
	if b.queuedBytes.Add(size) > maxQueuedBytes {
		b.queuedBytes.Add(-size)
		b.drop()
		return
	}
	select {
	case b.items <- d:
	default:
		b.queuedBytes.Add(-size)
		b.drop()
	}
}

func (b *inbox) drop() {
	if b.dropped.Add(1) == 1 {
		b.log.Info("handler is behind; dropping messages until it catches up")
	}
}

func (b *inbox) run(done <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-done:
			return
		case <-b.quit:
			return
		case d := <-b.items:
			b.queuedBytes.Add(-int64(len(d.payload)))
			b.deliver(d)
		}
	}
}

func (b *inbox) deliver(d delivery) {
	if n := b.dropped.Swap(0); n > 0 {
		b.onError(b.filter, &DroppedError{Count: n})
	}
	if d.err == nil {
		d.err = b.handle(d.topic, d.payload)
	}
	if d.err != nil {
		b.onError(d.topic, d.err)
	}
}
