package bench

import (
	"context"
	"errors"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// probe measures the time from causes (an EdgeX change, an API write) to
// their effects (a watch event, a system event, a device write). A cause is
// registered under a key before it is made, so its effect can never be seen
// first; each cause counts once, at its first effect.
type probe struct {
	mu      sync.Mutex
	pending map[string]cause
	done    map[string][]time.Duration
	// slow are the causes of effects that took over slowAfter, when set.
	slowAfter time.Duration
	slow      []time.Time
	// settled is signalled whenever an effect removes a pending cause.
	settled chan struct{}
}

type cause struct {
	series string
	at     time.Time
}

func newProbe() *probe {
	return &probe{pending: map[string]cause{}, done: map[string][]time.Duration{}, settled: make(chan struct{}, 1)}
}

// cause registers that something was done now, in a named series, whose
// effect will be reported under key.
func (p *probe) cause(key, series string) {
	p.mu.Lock()
	p.pending[key] = cause{series: series, at: time.Now()}
	p.mu.Unlock()
}

// forget withdraws a cause that could not be made (the call failed).
func (p *probe) forget(key string) {
	p.mu.Lock()
	delete(p.pending, key)
	p.mu.Unlock()
}

// effect reports that what key stands for was observed at at; it returns
// false when no cause was pending under key.
func (p *probe) effect(key string, at time.Time) bool {
	p.mu.Lock()
	c, ok := p.pending[key]
	if ok {
		delete(p.pending, key)
		p.done[c.series] = append(p.done[c.series], at.Sub(c.at))
		if p.slowAfter > 0 && at.Sub(c.at) > p.slowAfter {
			p.slow = append(p.slow, c.at)
		}
	}
	p.mu.Unlock()
	if ok {
		select {
		case p.settled <- struct{}{}:
		default:
		}
	}
	return ok
}

func (p *probe) isPending(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.pending[key]
	return ok
}

func (p *probe) outstanding() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

// slowCauses are when the causes of the effects slower than slowAfter
// were made.
func (p *probe) slowCauses() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.slow)
}

// settle waits until every cause had its effect, or timeout passes.
func (p *probe) settle(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for p.outstanding() > 0 {
		select {
		case <-p.settled:
		case <-ctx.Done():
			return errors.New("effects still missing")
		}
	}
	return nil
}

// stats summarises one series; causes still pending count as missed.
// An empty series name summarises all of them.
func (p *probe) stats(series string) latencyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var samples []time.Duration
	missed := 0
	for name, d := range p.done {
		if series == "" || name == series {
			samples = append(samples, d...)
		}
	}
	for _, c := range p.pending {
		if series == "" || c.series == series {
			missed++
		}
	}
	return summarize(samples, missed)
}

// latencyStats summarise one latency distribution, in milliseconds.
type latencyStats struct {
	Count  int     `json:"count"`
	Missed int     `json:"missed"`
	P50    float64 `json:"p50Ms"`
	P90    float64 `json:"p90Ms"`
	P99    float64 `json:"p99Ms"`
	Max    float64 `json:"maxMs"`
	// SamplesMs are every observed latency, sorted, for charts and for
	// anyone who wants another statistic.
	SamplesMs []float64 `json:"samplesMs,omitempty"`
}

func summarize(samples []time.Duration, missed int) latencyStats {
	ms := make([]float64, len(samples))
	for i, d := range samples {
		ms[i] = math.Round(float64(d.Microseconds())/10) / 100
	}
	slices.Sort(ms)
	st := latencyStats{Count: len(ms), Missed: missed, SamplesMs: ms}
	if len(ms) == 0 {
		return st
	}
	st.P50, st.P90, st.P99 = percentile(ms, 50), percentile(ms, 90), percentile(ms, 99)
	st.Max = ms[len(ms)-1]
	return st
}

// percentile is the nearest-rank percentile of sorted values: the smallest
// value that at least p percent of the values do not exceed.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// sortBy sorts s by key, keeping the order of equal keys.
func sortBy[T any](s []T, key func(T) float64) {
	sort.SliceStable(s, func(i, j int) bool { return key(s[i]) < key(s[j]) })
}
