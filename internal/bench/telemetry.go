package bench

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/edgebridge/edgebridge/edgex/simulator"
)

// telemetryGen plays the device services' autoEvents for a pool's fleet:
// each event carries perEvent readings of the device's profile (all three
// unless -readings-per-event says fewer), published by the simulator on
// the message bus exactly as EdgeX would.
type telemetryGen struct {
	sim      *simulator.Simulator
	devices  []telemetryDevice
	perEvent int
	interval time.Duration
	// round numbers events so that changing devices report new values
	// every time, across phases.
	round    atomic.Int64
	readings atomic.Int64
	events   atomic.Int64
	failures atomic.Int64
}

type telemetryDevice struct {
	name, profile string
	changing      bool
}

// newTelemetryGen makes changingShare of the fleet report new values at
// every event (sensors, meters) and the rest the same values every time
// (switches nobody touches); the two kinds are interleaved.
func newTelemetryGen(p *pool, changingShare float64) *telemetryGen {
	g := &telemetryGen{sim: p.sim, perEvent: p.rig.cfg.readingsPerEvent, interval: p.rig.cfg.telemetryInterval}
	for i, name := range p.fleet {
		g.devices = append(g.devices, telemetryDevice{
			name: name, profile: fleetDevice(name, i).ProfileName,
			changing: float64(i%100) < changingShare*100,
		})
	}
	return g
}

func (g *telemetryGen) publish(ctx context.Context, device int, round int64) {
	d := g.devices[device]
	values := eventValues(d.profile, int(round), d.changing, g.perEvent)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.sim.PublishReadings(ctx, d.name, values); err != nil {
		g.failures.Add(1)
		return
	}
	g.events.Add(1)
	g.readings.Add(int64(len(values)))
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
