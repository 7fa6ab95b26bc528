package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"

	commonDTO "github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/common"
	contracts "github.com/edgexfoundry/go-mod-core-contracts/v3/errors"
)

// Error is the simulated EdgeX refusing an edge-side change (AddDevice,
// UpdateDevice...): the status and message the REST API would have answered.
type Error struct {
	// Op says what was attempted, such as `add device "gpio-01"`.
	Op string
	// StatusCode is the HTTP status, or the per-item status of a batch call.
	StatusCode int
	// Message is EdgeX's message.
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: edgex answered %d: %s", e.Op, e.StatusCode, e.Message)
}

// apiError is an EdgeX answer other than success: its status and message.
type apiError struct {
	status  int
	message string
	// html marks core-metadata's answer when a device service did not
	// validate a device in time: the HTTP server's own timeout page, not an
	// EdgeX body.
	html bool
}

func newAPIError(status int, format string, args ...any) *apiError {
	return &apiError{status: status, message: fmt.Sprintf(format, args...)}
}

// apiErrorOf maps an error from go-mod-core-contracts (DTO validation, JSON
// decoding) to what EdgeX answers for it, exactly as its HTTP layer does.
func apiErrorOf(err error) *apiError {
	wrapped := contracts.NewCommonEdgeXWrapper(err)
	return &apiError{status: wrapped.Code(), message: wrapped.Message()}
}

// statusForRemote is the status core-command answers when a service it
// called answered status: the same kind, mapped back by go-mod-core-contracts.
func statusForRemote(status int) int {
	return contracts.NewCommonEdgeX(contracts.KindMapping(status), "", nil).Code()
}

// body is the EdgeX JSON error body, without the encoder's trailing newline.
func (e *apiError) body() []byte {
	data, _ := json.Marshal(commonDTO.NewBaseResponse("", e.message, e.status))
	return data
}

// asError turns the answer into the edge-side API's error.
func (e *apiError) asError(op string) error {
	if e == nil {
		return nil
	}
	return &Error{Op: op, StatusCode: e.status, Message: e.message}
}

// remoteFailure is how go-mod-core-contracts' HTTP client reports an answer
// of another EdgeX service, and so how core-command wraps core-metadata's
// and the device service's errors. Bodies written by core-metadata end in
// the JSON encoder's newline; the device service's do not.
func remoteFailure(remote *apiError, trailingNewline bool) *apiError {
	body := string(remote.body())
	if trailingNewline {
		body += "\n"
	}
	return &apiError{
		status:  statusForRemote(remote.status),
		message: fmt.Sprintf("request failed, status code: %d, err: %s", remote.status, body),
	}
}

// Messages core-metadata answers for missing objects.
func deviceNotFound(name string) *apiError {
	return newAPIError(http.StatusNotFound, "fail to query device by name %s", name)
}

func profileNotFound(name string) *apiError {
	return newAPIError(http.StatusNotFound, "fail to query device profile by name %s", name)
}

func serviceNotFound(name string) *apiError {
	return newAPIError(http.StatusNotFound, "fail to query device service by name %s", name)
}

// validationTimeout is core-metadata's answer when the device service did not
// answer its validation request: the HTTP server's request timeout fires
// first and writes Go's default timeout page.
func validationTimeout() *apiError {
	return &apiError{status: http.StatusServiceUnavailable, html: true,
		message: "<html><head><title>Timeout</title></head><body><h1>Timeout</h1></body></html>"}
}
