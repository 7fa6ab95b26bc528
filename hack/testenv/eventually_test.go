package testenv

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A condition whose last poll is cut short by Wait's own timeout must not
// hide why it failed before: the report names the system's last answer.
func TestWaitReportsWhyTheConditionFailed(t *testing.T) {
	notYet := errors.New("3 devices, want 5")
	cases := []struct {
		name string
		// answers are the condition's first answers; later polls block
		// until the timeout cuts them short, as a slow List at the
		// deadline does, unless keepAnswering repeats the last answer.
		answers       []error
		keepAnswering bool
		want          error
	}{
		{"the last poll is cut short by the timeout", []error{notYet, notYet}, false, notYet},
		{"every poll is cut short by the timeout", nil, false, context.DeadlineExceeded},
		{"the condition keeps failing on its own", []error{notYet}, true, notYet},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			polls := 0
			err := Wait(300*time.Millisecond, func(ctx context.Context) error {
				defer func() { polls++ }()
				switch {
				case polls < len(tc.answers):
					return tc.answers[polls]
				case tc.keepAnswering:
					return tc.answers[len(tc.answers)-1]
				}
				<-ctx.Done()
				return ctx.Err()
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Wait returned %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWaitReturnsOnceTheConditionHolds(t *testing.T) {
	polls := 0
	err := Wait(time.Minute, func(context.Context) error {
		polls++
		if polls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || polls != 3 {
		t.Fatalf("Wait returned %v after %d polls, want nil after 3", err, polls)
	}
}
