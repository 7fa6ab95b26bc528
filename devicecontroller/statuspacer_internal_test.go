package devicecontroller

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNextStatusRate(t *testing.T) {
	for _, tc := range []struct {
		name          string
		current, done float64
		mean          time.Duration
		want          float64
	}{
		{"a quick API server leaves the ceiling", statusPaceCeiling, 150, 6 * time.Millisecond, statusPaceCeiling},
		{"a busy but healthy one too", statusPaceCeiling, 170, 12 * time.Millisecond, statusPaceCeiling},
		{"a queueing API server halves what went through", statusPaceCeiling, 160, 900 * time.Millisecond, 80},
		{"halving never goes below the allowance's half", 40, 60, 200 * time.Millisecond, 20},
		{"never below the floor", 1.5, 1, time.Second, statusPaceFloor},
		{"quick answers grow the rate back by a quarter and one", 20, 20, 5 * time.Millisecond, 26},
		{"growth stops at the ceiling", statusPaceCeiling - 1, 100, time.Millisecond, statusPaceCeiling},
		{"between slow and quick the rate holds", 30, 30, 17 * time.Millisecond, 30},
		{"a mean over 20 ms is slow", 30, 30, 25 * time.Millisecond, 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextStatusRate(tc.current, tc.done, tc.mean); got != tc.want {
				t.Fatalf("nextStatusRate(%v, %v, %v) = %v, want %v", tc.current, tc.done, tc.mean, got, tc.want)
			}
		})
	}
}

// The pacer reconsiders its rate once a period, from the writes of that
// period, and shows it on the gauge.
func TestStatusPacerFollowsTheAPIServer(t *testing.T) {
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "limit"})
	p := newStatusPacer(4, gauge)
	start := time.Unix(1000, 0)
	writes := func(from time.Time, n int, took time.Duration) time.Time {
		for i := range n {
			p.observe(from.Add(time.Duration(i)*statusPacePeriod/time.Duration(n)), took)
		}
		return from.Add(statusPacePeriod)
	}

	now := writes(start, 100, 800*time.Millisecond)
	if got := testutil.ToFloat64(gauge); got != statusPaceCeiling {
		t.Fatalf("limit %v before a whole period passed, want the ceiling", got)
	}
	p.observe(now, 800*time.Millisecond)
	slowed := testutil.ToFloat64(gauge)
	if want := 0.5 * 101 / statusPacePeriod.Seconds(); slowed != want {
		t.Fatalf("limit %v after a period of 101 slow writes, want half their rate, %v", slowed, want)
	}
	if got := float64(p.limiter.Limit()); got != slowed {
		t.Fatalf("limiter at %v, gauge at %v", got, slowed)
	}

	now = writes(now, 50, 2*time.Millisecond)
	p.observe(now, 2*time.Millisecond)
	if got := testutil.ToFloat64(gauge); got <= slowed {
		t.Fatalf("limit %v after a period of quick writes, want more than %v", got, slowed)
	}
}

// After a cloud outage the held-back statuses go out unpaced for a while,
// however slowly the API server answers them meanwhile.
func TestStatusPacerLetsACatchUpThrough(t *testing.T) {
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "limit"})
	p := newStatusPacer(4, gauge)
	start := time.Unix(1000, 0)
	for i := range 30 {
		p.observe(start.Add(time.Duration(i)*100*time.Millisecond), time.Second)
	}
	if got := testutil.ToFloat64(gauge); got >= statusPaceCeiling {
		t.Fatalf("limit %v after three seconds of slow writes, want it lowered", got)
	}
	back := start.Add(5 * time.Second)
	p.unpace(back)
	for i := range 50 {
		p.observe(back.Add(time.Duration(i)*100*time.Millisecond), time.Second)
	}
	if got := testutil.ToFloat64(gauge); got != statusPaceCeiling {
		t.Fatalf("limit %v during the catch-up, want the ceiling", got)
	}
	after := back.Add(statusCatchUp)
	for i := range 20 {
		p.observe(after.Add(time.Duration(i)*100*time.Millisecond), time.Second)
	}
	if got := testutil.ToFloat64(gauge); got >= statusPaceCeiling {
		t.Fatalf("limit %v after the catch-up with slow writes, want pacing again", got)
	}
}
