package testenv

import (
	"context"
	"testing"
	"time"
)

// DefaultTimeout bounds how long Eventually waits. It is generous because CI
// machines are small and shared; a passing wait returns as soon as its
// condition holds.
const DefaultTimeout = 60 * time.Second

// Eventually polls cond until it returns nil or the timeout passes, then
// fails the test with cond's last error. It never sleeps as a substitute for
// a condition: each poll asks the system for the state the test expects.
func Eventually(t testing.TB, timeout time.Duration, cond func(ctx context.Context) error) {
	t.Helper()
	if err := Wait(timeout, cond); err != nil {
		t.Fatalf("condition not met within %s: %v", timeout, err)
	}
}

// Wait is Eventually without a testing.TB, for helpers and TestMain.
//
// It returns the last error cond gave before the timeout: a poll that is cut
// short by the timeout itself fails with "context deadline exceeded", which
// hides why the condition did not hold, so such an error is reported only
// when no earlier poll said more.
func Wait(timeout time.Duration, cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	interval := 10 * time.Millisecond
	var last error
	for {
		callCtx, callCancel := context.WithTimeout(ctx, 10*time.Second)
		err := cond(callCtx)
		callCancel()
		if err == nil {
			return nil
		}
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(interval):
		}
		if interval < 200*time.Millisecond {
			interval *= 2
		}
	}
}
