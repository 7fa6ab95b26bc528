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
func Wait(timeout time.Duration, cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	interval := 10 * time.Millisecond
	var last error
	for {
		callCtx, callCancel := context.WithTimeout(ctx, 10*time.Second)
		last = cond(callCtx)
		callCancel()
		if last == nil {
			return nil
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
