package simulator

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"

	"github.com/edgebridge/edgebridge/hack/testenv/broker"
)

// waitTimeout bounds every wait on the simulator or the broker. A passing
// wait returns as soon as its condition holds.
const waitTimeout = 20 * time.Second

// startSim starts a simulator for one test and closes it at the end.
func startSim(t testing.TB, opts Options) *Simulator {
	t.Helper()
	sim := New(opts)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := sim.Start(ctx); err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// startWithBroker starts mosquitto and a simulator connected to it.
func startWithBroker(t testing.TB, opts Options) (*Simulator, *broker.Broker) {
	t.Helper()
	b := broker.Start(t, broker.Options{})
	opts.BrokerURL = b.URL()
	return startSim(t, opts), b
}

type answer struct {
	status int
	header http.Header
	body   string
}

var httpClient = &http.Client{Timeout: waitTimeout}

// call makes one REST call; headers are "Name: value" strings.
func call(t testing.TB, method, url, body string, headers ...string) answer {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, reader)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

func decodeAs[T any](t testing.TB, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(a.body), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, a.body, err)
	}
	return v
}

// received is one message a test subscriber got.
type received struct {
	topic   string
	payload []byte
}

// subscriber records every message on a topic filter.
type subscriber struct {
	client mqtt.Client
	mu     sync.Mutex
	msgs   []received
	more   chan struct{}
}

func subscribe(t testing.TB, brokerURL string, filters ...string) *subscriber {
	t.Helper()
	sub := &subscriber{more: make(chan struct{}, 1)}
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("test-" + uuid.NewString()[:8]).
		SetCleanSession(true).SetOrderMatters(true)
	sub.client = mqtt.NewClient(opts)
	if tok := sub.client.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("test subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { sub.client.Disconnect(0) })
	for _, f := range filters {
		tok := sub.client.Subscribe(f, 0, func(_ mqtt.Client, m mqtt.Message) {
			sub.mu.Lock()
			sub.msgs = append(sub.msgs, received{topic: m.Topic(), payload: append([]byte(nil), m.Payload()...)})
			sub.mu.Unlock()
			select {
			case sub.more <- struct{}{}:
			default:
			}
		})
		if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	return sub
}

func (s *subscriber) publish(t testing.TB, topic string, payload []byte) {
	t.Helper()
	if tok := s.client.Publish(topic, 0, false, payload); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// messages returns what arrived so far that matches keep.
func (s *subscriber) messages(keep func(received) bool) []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []received
	for _, m := range s.msgs {
		if keep == nil || keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// waitFor waits until n matching messages arrived and returns them.
func (s *subscriber) waitFor(t testing.TB, n int, keep func(received) bool) []received {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		if got := s.messages(keep); len(got) >= n {
			return got
		}
		select {
		case <-s.more:
		case <-deadline.C:
			got := s.messages(keep)
			t.Fatalf("got %d matching messages within %s, want %d: %s", len(got), waitTimeout, n, topicsOf(got))
			return nil
		}
	}
}

func topicsOf(msgs []received) string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.topic
	}
	return strings.Join(out, ", ")
}

func onTopicPrefix(prefix string) func(received) bool {
	return func(m received) bool { return strings.HasPrefix(m.topic, prefix) }
}

// wireOf decodes an envelope with its payload as-is.
func wireOf(t testing.TB, data []byte) wireEnvelope {
	t.Helper()
	var env wireEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("decode envelope %s: %v", data, err)
	}
	return env
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	interval := 5 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, waitTimeout, err)
		}
		timer := time.NewTimer(interval)
		<-timer.C
		if interval < 100*time.Millisecond {
			interval *= 2
		}
	}
}
