package devicecontroller

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/edgebridge/edgebridge/edgex"
)

// edgeHealth remembers whether EdgeX answers. While it does not, reconciles
// skip their EdgeX calls (and say EdgeXUnreachable) instead of each waiting
// for a timeout; a prober pings until EdgeX is back and then the bridge
// resyncs, so every edit made meanwhile lands. In steady state it costs no
// request: it learns from the calls the bridge makes anyway.
type edgeHealth struct {
	ping      func(context.Context) error
	onRecover func()

	// wake asks run to start probing.
	wake chan struct{}

	mu      sync.Mutex
	down    bool
	lastErr error
}

func newEdgeHealth(ping func(context.Context) error, onRecover func()) *edgeHealth {
	return &edgeHealth{ping: ping, onRecover: onRecover, wake: make(chan struct{}, 1)}
}

// unreachable reports whether err says EdgeX did not answer at all: a
// network error or timeout. An HTTP error answer, even a 503 from a device
// service, proves core-metadata is up.
func unreachable(err error) bool {
	var e *edgex.Error
	if !errors.As(err, &e) {
		return false
	}
	if e.Kind != edgex.KindUnavailable {
		return false
	}
	return e.StatusCode == 0 || e.StatusCode == http.StatusBadGateway || e.StatusCode == http.StatusGatewayTimeout
}

// observe records the outcome of an EdgeX call.
func (h *edgeHealth) observe(ctx context.Context, err error) {
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return // our own shutdown says nothing about EdgeX
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if unreachable(err) {
		h.lastErr = err
		if !h.down {
			h.down = true
			h.startProbe()
		}
		return
	}
	h.recovered()
}

// recovered must be called with mu held.
func (h *edgeHealth) recovered() {
	if !h.down {
		return
	}
	h.down, h.lastErr = false, nil
	if h.onRecover != nil {
		h.onRecover() // must not block: it only signals the resync
	}
}

// Down reports whether EdgeX is known unreachable, with the last error.
func (h *edgeHealth) Down() (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down, h.lastErr
}

// startProbe must be called with mu held.
func (h *edgeHealth) startProbe() {
	select {
	case h.wake <- struct{}{}:
	default: // a probe is already due
	}
}

// run pings EdgeX while it is down, backing off from one second to fifteen,
// until it answers or ctx ends. It is a manager runnable.
func (h *edgeHealth) run(ctx context.Context) error {
	down := func() bool { d, _ := h.Down(); return d }
	probeWhileDown(ctx, h.wake, down, time.Second, 15*time.Second, 5*time.Second, func(ctx context.Context) {
		// The loop is the retry: one attempt per probe.
		h.observe(ctx, h.ping(edgex.WithoutRetries(ctx)))
	})
	return nil
}
