package devicecontroller

import (
	"context"
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
	p := newStatusPacer(4, 0, gauge)
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
	p := newStatusPacer(4, 0, gauge)
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

// The operator's budget lets a pool write its first readings at once, up
// to statusBudgetWindow's worth, and then only at the budget's rate; the
// writes that empty managedFields never draw on it.
func TestStatusBudgetAllowsAWindowAtOnceThenItsRate(t *testing.T) {
	for _, tc := range []struct {
		name        string
		budget      float64
		atOnce      int
		thenBlocked bool
	}{
		{"no budget: only the pacing", 0, 2000, false},
		{"two a second: 75 seconds' worth at once", 2, 150, true},
		{"a fraction still allows one", 0.001, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newStatusPacer(tc.atOnce, tc.budget, prometheus.NewGauge(prometheus.GaugeOpts{Name: "limit"}))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for i := range tc.atOnce {
				if err := p.waitBudgeted(ctx); err != nil {
					t.Fatalf("write %d of %d waited: %v", i+1, tc.atOnce, err)
				}
			}
			// The next one would wait at least 1/budget: longer than the
			// deadline below, so Wait refuses at once rather than sleeping.
			short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancelShort()
			err := p.waitBudgeted(short)
			if blocked := err != nil; blocked != tc.thenBlocked {
				t.Fatalf("write after the burst: error %v, want blocked %v", err, tc.thenBlocked)
			}
			if err := p.wait(short); err != nil {
				t.Fatalf("an unbudgeted write waited on the budget: %v", err)
			}
		})
	}
}
