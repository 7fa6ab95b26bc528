package bench

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// transportResult is row 7's physical limit: the benchmark's telemetry
// generator publishing through mosquitto to a subscriber that only counts
// messages, with no bridge running. No bridge ingests more than this
// machine carries to the simplest subscriber, and a row-7 figure at this
// limit says more about the generator and the broker than the bridge.
type transportResult struct {
	// ReadingsPerSecond is the highest rate delivered whole.
	ReadingsPerSecond float64          `json:"readingsPerSecond"`
	Trials            []transportTrial `json:"trials"`
}

// transportTrial is one rate published for one probe window.
type transportTrial struct {
	RequestedPerSecond float64 `json:"requestedReadingsPerSecond"`
	AchievedPerSecond  float64 `json:"publishedReadingsPerSecond"`
	WindowSeconds      float64 `json:"windowSeconds"`
	Published          int64   `json:"readingsPublished"`
	Received           int64   `json:"readingsReceived"`
	// GeneratorCores is the benchmark process (the simulator publishing,
	// the generator and the counting subscriber); BrokerCores mosquitto.
	GeneratorCores float64 `json:"generatorCores"`
	BrokerCores    float64 `json:"brokerCores"`
	OtherCores     float64 `json:"otherProcessesCores"`
}

func (t transportTrial) delivered() bool { return t.Published > 0 && t.Received >= t.Published }

// generatorLimited says the generator fell short of the rate asked for.
func (t transportTrial) generatorLimited() bool {
	return t.AchievedPerSecond < 0.95*t.RequestedPerSecond
}

// measureTransport doubles the rate from -start-rate until the generator
// cannot keep up or the counting subscriber misses messages. It must run
// while no bridge serves the pool, or the bridge's work would be in it.
func (p *pool) measureTransport(ctx context.Context, gen *telemetryGen) (transportResult, error) {
	var res transportResult
	var messages atomic.Int64
	sub, err := p.countingSubscriber(ctx, &messages)
	if err != nil {
		return res, err
	}
	defer sub.Close()
	for rate := p.rig.cfg.startRate; rate <= 1e6 && ctx.Err() == nil; rate *= 2 {
		t := p.transportTrial(ctx, gen, &messages, rate)
		res.Trials = append(res.Trials, t)
		logf("  no bridge, %.0f readings/s: published %.0f/s, counted %d of %d (generator %.2f cores, mosquitto %.2f cores)",
			rate, t.AchievedPerSecond, t.Received, t.Published, t.GeneratorCores, t.BrokerCores)
		if !t.delivered() {
			break
		}
		res.ReadingsPerSecond = max(res.ReadingsPerSecond, t.AchievedPerSecond)
		if t.generatorLimited() {
			break
		}
	}
	return res, nil
}

// countingSubscriber subscribes to every event of the pool and only counts
// messages: no decoding, nothing a bridge would do.
func (p *pool) countingSubscriber(ctx context.Context, messages *atomic.Int64) (*messagebus.Client, error) {
	sub, err := messagebus.New(messagebus.Options{BrokerURL: p.rig.broker.URL(), TopicPrefix: p.prefix, HandlerQueue: 1 << 16})
	if err != nil {
		return nil, err
	}
	if err := sub.Subscribe(messagebus.Topics{Prefix: p.prefix}.AllEvents(), func(string, []byte) { messages.Add(1) }); err != nil {
		sub.Close()
		return nil, err
	}
	if err := sub.Start(context.Background()); err != nil {
		sub.Close()
		return nil, err
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sub.WaitConnected(waitCtx); err != nil {
		sub.Close()
		return nil, fmt.Errorf("counting subscriber: %w", err)
	}
	return sub, nil
}

func (p *pool) transportTrial(ctx context.Context, gen *telemetryGen, messages *atomic.Int64, rate float64) transportTrial {
	t := transportTrial{RequestedPerSecond: rate}
	startEvents, startCounted := gen.events.Load(), messages.Load()
	self, broker := p.rig.generatorAndBroker()
	start := time.Now()
	run := gen.run(ctx, rate/float64(gen.perEvent), p.rig.cfg.probeWindow, 16)
	events := gen.events.Load() - startEvents
	// Messages still in flight arrive within moments; a count that stops
	// moving for a second is final.
	counted := func() int64 { return messages.Load() - startCounted }
	last, still := int64(-1), time.Now()
	_ = poll(ctx, 3*maxLag, 50*time.Millisecond, func(context.Context) (bool, error) {
		n := counted()
		if n != last {
			last, still = n, time.Now()
		}
		return n >= events || time.Since(still) > time.Second, nil
	})
	selfAfter, brokerAfter := p.rig.generatorAndBroker()
	t.WindowSeconds = run.Span.Seconds()
	t.Published = events * int64(gen.perEvent)
	t.Received = counted() * int64(gen.perEvent)
	t.AchievedPerSecond = float64(t.Published) / t.WindowSeconds
	t.GeneratorCores, t.BrokerCores = cores(self, selfAfter), cores(broker, brokerAfter)
	t.OtherCores = p.rig.load.othersCores(start, time.Now())
	return t
}

// generatorAndBroker samples this process and mosquitto.
func (r *rig) generatorAndBroker() (self, broker procSample) {
	self, _ = sampleProc(os.Getpid())
	broker, _ = sampleProc(r.brokerPID)
	return self, broker
}
