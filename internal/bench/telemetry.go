package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// telemetryGen plays the device services' autoEvents for a pool's fleet:
// each event carries perEvent readings of the device's profile (all three
// unless -readings-per-event says fewer), published on the message bus as
// EdgeX's device services publish them, each service on its own
// connection.
type telemetryGen struct {
	devices  []telemetryDevice
	perEvent int
	// interval is how often each device sends an event in steady state.
	interval time.Duration
	// services are the fleet's device services' connections.
	services []*busPublisher
	ids      *idSource
	clock    originClock
	// round numbers events so that changing devices report new values
	// every time, across phases.
	round    atomic.Int64
	readings atomic.Int64
	events   atomic.Int64
	failures atomic.Int64
}

type telemetryDevice struct {
	name, profile, source, topic string
	service                      int
	resources                    []resourceSpec
	changing                     bool
}

// newTelemetryGen plans the fleet's telemetry and connects its device
// services to the pool's broker.
func newTelemetryGen(ctx context.Context, p *pool, changingShare float64) (*telemetryGen, error) {
	g, err := planTelemetry(p.fleet, p.prefix, p.rig.cfg.readingsPerEvent, changingShare)
	if err != nil {
		return nil, err
	}
	g.interval = p.rig.cfg.telemetryInterval
	for i := range servicesInFleet {
		pub, err := dialPublisher(ctx, p.rig.broker.URL(), fmt.Sprintf("%s-%s-%d", p.prefix, serviceName(i), rand.Uint32()))
		if err != nil {
			g.close()
			return nil, err
		}
		g.services = append(g.services, pub)
	}
	return g, nil
}

// planTelemetry works out what each device of the fleet publishes, and
// where: changingShare of the fleet reports new values at every event
// (sensors, meters) and the rest the same values every time (switches
// nobody touches); the two kinds are interleaved.
func planTelemetry(fleet []string, prefix string, perEvent int, changingShare float64) (*telemetryGen, error) {
	g := &telemetryGen{perEvent: perEvent, ids: newIDSource(rand.Uint64())}
	topics := messagebus.Topics{Prefix: prefix}
	for i, name := range fleet {
		d := fleetDevice(name, i)
		spec, ok := profileSpecNamed(d.ProfileName)
		if !ok {
			return nil, fmt.Errorf("device %s: no benchmark profile %q", name, d.ProfileName)
		}
		resources := spec.resources[:min(g.perEvent, len(spec.resources))]
		// An autoEvent reads a device command; one of a single resource
		// is named after it.
		source := allSource
		if len(resources) < len(spec.resources) {
			source = resources[0].name
		}
		g.devices = append(g.devices, telemetryDevice{
			name: name, profile: d.ProfileName, source: source,
			topic:   topics.Event(d.ServiceName, d.ProfileName, name, source),
			service: i % servicesInFleet, resources: resources,
			changing: float64(i%100) < changingShare*100,
		})
	}
	return g, nil
}

// close ends the device services' connections once what they queued is
// sent.
func (g *telemetryGen) close() {
	for _, s := range g.services {
		s.close()
	}
	g.services = nil
}

func (g *telemetryGen) publish(ctx context.Context, device int, round int64) {
	d := &g.devices[device]
	message := g.message(device, round)
	if err := g.services[d.service].publish(ctx, d.topic, message); err != nil {
		g.failures.Add(1)
		return
	}
	g.events.Add(1)
	g.readings.Add(int64(len(d.resources)))
}

// event is what a device reports in a round.
func (g *telemetryGen) event(device int, round int64) wireEvent {
	d := &g.devices[device]
	values := readings(d.profile, int(round), d.changing)
	ev := wireEvent{device: d.name, profile: d.profile, source: d.source, origin: g.clock.now(),
		readings: make([]wireReading, len(d.resources))}
	for i, r := range d.resources {
		ev.readings[i] = wireReading{resource: r.name, valueType: r.valueType, units: r.units, value: edgexValue(r.valueType, values[r.name])}
	}
	return ev
}

// message is the bus message of a device's event in a round.
func (g *telemetryGen) message(device int, round int64) []byte {
	body := appendEventRequest(make([]byte, 0, 1024), g.ids, g.event(device, round))
	return appendEnvelope(make([]byte, 0, 128+base64.StdEncoding.EncodedLen(len(body))), g.ids, body)
}

// burst publishes one event for every device as fast as it can.
func (g *telemetryGen) burst(ctx context.Context) {
	round := g.round.Add(1)
	_ = parallel(ctx, len(g.devices), 8, func(ctx context.Context, i int) error {
		g.publish(ctx, i, round)
		return nil
	})
}

// run publishes eventsPerSecond events, cycling through the devices, for
// window. One cycle through the fleet is one round.
func (g *telemetryGen) run(ctx context.Context, eventsPerSecond float64, window time.Duration, workers int) paceResult {
	n := len(g.devices)
	total := int(eventsPerSecond * window.Seconds())
	rounds := int64(total/n + 1)
	base := g.round.Add(rounds) - rounds + 1
	return pace(ctx, total, eventsPerSecond, workers, func(ctx context.Context, k int) {
		g.publish(ctx, k%n, base+int64(k/n))
	})
}

// changing counts the devices that report new values at every event.
func (g *telemetryGen) changing() int {
	n := 0
	for _, d := range g.devices {
		if d.changing {
			n++
		}
	}
	return n
}

// steadyRate is the steady state's events per second: one per device per
// telemetry interval.
func (g *telemetryGen) steadyRate() float64 {
	return float64(len(g.devices)) / g.interval.Seconds()
}
