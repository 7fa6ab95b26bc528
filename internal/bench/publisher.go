package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// busPublisher is one device service's connection to the broker, as the
// generator plays it: MQTT 3.1.1 publishes at QoS 0, as EdgeX's device
// services publish events by default, written through a buffer that is
// flushed whenever no message waits. A device service's client writes
// each message with a system call of its own; the generator shares two
// cores with the bridge it measures, so it writes what is queued at once.
type busPublisher struct {
	conn  net.Conn
	queue chan []byte
	done  chan struct{}

	mu  sync.Mutex
	err error
}

// publisherQueue bounds the messages waiting for the connection: a
// generator that outruns it waits, and says so by falling behind its
// schedule.
const publisherQueue = 1024

func dialPublisher(ctx context.Context, brokerURL, clientID string) (*busPublisher, error) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return nil, fmt.Errorf("publisher: broker URL %q: %w", brokerURL, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("publisher %s: %w", clientID, err)
	}
	if err := mqttConnect(ctx, conn, clientID); err != nil {
		conn.Close()
		return nil, fmt.Errorf("publisher %s: %w", clientID, err)
	}
	p := &busPublisher{conn: conn, queue: make(chan []byte, publisherQueue), done: make(chan struct{})}
	go p.write()
	return p, nil
}

// mqttConnect opens the MQTT session: a clean session without keep-alive
// (the generator's connections live only as long as the run).
func mqttConnect(ctx context.Context, conn net.Conn, clientID string) error {
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	connect := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	connect.ProtocolName, connect.ProtocolVersion = "MQTT", 4
	connect.CleanSession, connect.ClientIdentifier = true, clientID
	if err := connect.Write(conn); err != nil {
		return fmt.Errorf("send CONNECT: %w", err)
	}
	answer, err := packets.ReadPacket(conn)
	if err != nil {
		return fmt.Errorf("read CONNACK: %w", err)
	}
	ack, ok := answer.(*packets.ConnackPacket)
	if !ok {
		return fmt.Errorf("broker answered CONNECT with %s", answer)
	}
	if ack.ReturnCode != packets.Accepted {
		return fmt.Errorf("broker refused the connection: %s", packets.ConnackReturnCodes[ack.ReturnCode])
	}
	return nil
}

// publish queues one message; it waits only while the queue is full.
func (p *busPublisher) publish(ctx context.Context, topic string, payload []byte) error {
	if err := p.failed(); err != nil {
		return err
	}
	select {
	case p.queue <- appendPublish(make([]byte, 0, 8+len(topic)+len(payload)), topic, payload):
		return nil
	case <-p.done:
		return p.failed()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *busPublisher) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *busPublisher) write() {
	w := bufio.NewWriterSize(p.conn, 64<<10)
	fail := func(err error) {
		p.mu.Lock()
		if p.err == nil {
			p.err = fmt.Errorf("publish: %w", err)
		}
		p.mu.Unlock()
		close(p.done)
	}
	for packet := range p.queue {
		if _, err := w.Write(packet); err != nil {
			fail(err)
			return
		}
		if len(p.queue) == 0 {
			if err := w.Flush(); err != nil {
				fail(err)
				return
			}
		}
	}
	// Closed: say goodbye, so that the broker does not log a lost client.
	_ = w.Flush()
	_ = packets.NewControlPacket(packets.Disconnect).Write(p.conn)
	fail(errPublisherClosed)
}

var errPublisherClosed = errors.New("publisher closed")

// close sends what is queued and ends the session. No publish may run
// meanwhile or after.
func (p *busPublisher) close() {
	close(p.queue)
	<-p.done
	p.conn.Close()
}

// appendPublish appends an MQTT 3.1.1 PUBLISH packet at QoS 0.
func appendPublish(dst []byte, topic string, payload []byte) []byte {
	dst = append(dst, packets.Publish<<4)
	for n := 2 + len(topic) + len(payload); ; {
		b := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if n == 0 {
			break
		}
	}
	dst = append(dst, byte(len(topic)>>8), byte(len(topic)))
	dst = append(dst, topic...)
	return append(dst, payload...)
}
