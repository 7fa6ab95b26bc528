package edgex

import (
	"errors"
	"fmt"
	"testing"
)

func TestKindForStatus(t *testing.T) {
	cases := map[int]ErrorKind{
		400: KindInvalid, 401: KindUnauthorized, 403: KindUnauthorized, 404: KindNotFound,
		405: KindNotAllowed, 409: KindConflict, 423: KindLocked, 500: KindInternal,
		502: KindUnavailable, 503: KindUnavailable, 504: KindUnavailable,
	}
	for code, want := range cases {
		if got := KindForStatus(code); got != want {
			t.Errorf("KindForStatus(%d) = %s, want %s", code, got, want)
		}
	}
}

func TestKindSurvivesWrapping(t *testing.T) {
	base := &Error{Kind: KindNotFound, StatusCode: 404, Op: `get device "x"`, Message: "fail to query device by name x"}
	wrapped := fmt.Errorf("reconcile: %w", base)
	if !IsNotFound(wrapped) {
		t.Fatal("kind lost through wrapping")
	}
	if Retryable(wrapped) {
		t.Error("not found must not be retried as it stands")
	}
	if !Retryable(&Error{Kind: KindUnavailable}) || !Retryable(errors.New("plain")) {
		t.Error("unavailable and unknown failures are retryable")
	}
	if Retryable(nil) || KindOf(nil) != "" {
		t.Error("nil is no failure")
	}
}
