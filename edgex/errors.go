package edgex

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrorKind classifies an EdgeX failure so that callers decide what to do
// (retry, report, give up) without ever matching message text.
type ErrorKind string

const (
	// KindNotFound: the object, device or resource does not exist (404).
	KindNotFound ErrorKind = "NotFound"
	// KindConflict: a duplicate name, or an object still in use (409).
	KindConflict ErrorKind = "Conflict"
	// KindInvalid: EdgeX refused the request as malformed or invalid (400).
	KindInvalid ErrorKind = "Invalid"
	// KindNotAllowed: a write to a read-only resource (405).
	KindNotAllowed ErrorKind = "NotAllowed"
	// KindLocked: the device or service is administratively locked (423).
	KindLocked ErrorKind = "Locked"
	// KindUnauthorized: missing or rejected credentials (401, 403).
	KindUnauthorized ErrorKind = "Unauthorized"
	// KindUnavailable: EdgeX or a device service could not be reached or
	// did not answer in time (network errors, timeouts, 502, 503, 504).
	KindUnavailable ErrorKind = "Unavailable"
	// KindMalformed: EdgeX answered with something that is not what the API
	// promises (truncated JSON, an error body on a success status).
	KindMalformed ErrorKind = "Malformed"
	// KindInternal: EdgeX failed (500 and anything else unexpected).
	KindInternal ErrorKind = "Internal"
)

// Error is an EdgeX failure with its kind, the HTTP (or per-item) status
// code when there was one, and EdgeX's own message.
type Error struct {
	Kind ErrorKind
	// StatusCode is the HTTP status, or the per-item status inside a 207
	// multi-status answer; 0 when no answer arrived.
	StatusCode int
	// Op says what was attempted, such as `add device "gpio-01"`.
	Op string
	// Message is EdgeX's message, when it sent one.
	Message string
	// Err is the underlying cause, such as a network error.
	Err error
}

func (e *Error) Error() string {
	msg := e.Op
	if msg == "" {
		msg = "edgex"
	}
	msg += ": " + string(e.Kind)
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(" (%d)", e.StatusCode)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindForStatus maps an HTTP status code (or a per-item status code) to the
// kind of failure it means in EdgeX v3.
func KindForStatus(code int) ErrorKind {
	switch code {
	case http.StatusNotFound:
		return KindNotFound
	case http.StatusConflict:
		return KindConflict
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		return KindInvalid
	case http.StatusMethodNotAllowed:
		return KindNotAllowed
	case http.StatusLocked:
		return KindLocked
	case http.StatusUnauthorized, http.StatusForbidden:
		return KindUnauthorized
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return KindUnavailable
	default:
		return KindInternal
	}
}

// KindOf returns the kind of an EdgeX error anywhere in err's chain, or ""
// when err is nil or not an EdgeX error.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// IsNotFound reports whether EdgeX said the thing does not exist. Only this
// answer, never a failed call, is evidence that an object is gone.
func IsNotFound(err error) bool { return KindOf(err) == KindNotFound }

// IsConflict reports a duplicate name or an object still in use.
func IsConflict(err error) bool { return KindOf(err) == KindConflict }

// IsUnavailable reports that EdgeX could not be reached or timed out.
func IsUnavailable(err error) bool { return KindOf(err) == KindUnavailable }

// Retryable reports whether trying the same call again later may succeed.
// Invalid requests, missing objects and refusals are not retryable as they
// stand; unreachable, failing or garbled answers are.
func Retryable(err error) bool {
	switch KindOf(err) {
	case KindUnavailable, KindInternal, KindMalformed, "":
		return err != nil
	default:
		return false
	}
}
