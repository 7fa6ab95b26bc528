package demo

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// progress prints one line per step, and a heartbeat while a step is slow,
// so that a first run (etcd and kube-apiserver starting on a small
// machine) never looks stuck.
type progress struct {
	mu  sync.Mutex
	out io.Writer
	// heartbeat is how often a running step says it is still running.
	heartbeat time.Duration
}

func newProgress(out io.Writer) *progress {
	return &progress{out: out, heartbeat: 10 * time.Second}
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format, args...)
}

// step runs fn under a progress line and reports how long it took.
func (p *progress) step(what string, fn func() error) error {
	p.printf("==> %s\n", what)
	start := time.Now()
	done := make(chan struct{})
	go p.beat(what, start, done)
	err := fn()
	close(done)
	if err != nil {
		p.printf("    failed after %s\n", since(start))
		return fmt.Errorf("%s: %w", what, err)
	}
	p.printf("    done in %s\n", since(start))
	return nil
}

func (p *progress) beat(what string, start time.Time, done <-chan struct{}) {
	t := time.NewTicker(p.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			p.printf("    ... still %s (%s)\n", what, since(start))
		}
	}
}

func since(t time.Time) time.Duration {
	return time.Since(t).Round(100 * time.Millisecond)
}

// cleanups undo the steps that succeeded, last first: the bridge stops
// before the broker and the API server it talks to.
type cleanups struct {
	steps []cleanup
}

type cleanup struct {
	what string
	fn   func() error
}

func (c *cleanups) add(what string, fn func() error) {
	c.steps = append(c.steps, cleanup{what, fn})
}

// run undoes every step, even when one fails, and reports them all.
func (c *cleanups) run(p *progress) error {
	var errs []error
	for i := len(c.steps) - 1; i >= 0; i-- {
		s := c.steps[i]
		p.printf("    stopping %s\n", s.what)
		if err := s.fn(); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.what, err))
		}
	}
	c.steps = nil
	return errors.Join(errs...)
}
