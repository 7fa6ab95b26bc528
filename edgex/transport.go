package edgex

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
)

// maxAnswer bounds what one answer may make us hold in memory; a page of
// 500 devices or a camera snapshot event is far below it.
const maxAnswer = 64 << 20

// errAttemptTimeout tells our own per-attempt timeout apart from the
// caller's deadline.
var errAttemptTimeout = errors.New("attempt timed out")

// service is the HTTP side shared by the core-metadata and core-command
// clients: one base URL, auth, timeouts, retries and error typing.
type service struct {
	name  string
	base  *url.URL
	rest  *resty.Client
	token *tokenFile
	opts  Options
}

// call is one logical request; route is the pattern with {placeholders}
// that params fill in (escaped), which is also what metrics see.
type call struct {
	op     string
	method string
	route  string
	params map[string]string
	query  map[string]string
	body   []byte
	// repeatable marks calls that may be sent again after a failure because
	// doing them twice means the same as doing them once.
	repeatable bool
	// decode reads a 2xx answer; its failure is the call's failure.
	decode func(status int, body []byte) error
}

func newService(name, rawURL string, opts Options) (*service, error) {
	base, err := parseBaseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s URL: %w", name, err)
	}
	tlsCfg, err := opts.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("%s TLS: %w", name, err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if tlsCfg != nil {
		transport.TLSClientConfig = tlsCfg
	}
	httpClient := &http.Client{Transport: transport, CheckRedirect: refuseRedirects}
	rest := resty.NewWithClient(httpClient).
		SetBaseURL(base.String()).
		SetHeader("User-Agent", opts.UserAgent).
		SetHeader("Accept", "application/json").
		SetResponseBodyLimit(maxAnswer).
		SetDisableWarn(true)
	return &service{name: name, base: base, rest: rest, token: newTokenFile(opts.TokenFile), opts: opts}, nil
}

// refuseRedirects keeps the bearer token from following a redirect to
// another host; EdgeX itself never redirects.
func refuseRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// callerRetries marks a context whose caller retries failed calls itself.
type callerRetries struct{}

// WithoutRetries returns a context under which every call is attempted
// once, each within Options.Timeout, whatever Options.Retries says: for
// callers that own retrying, such as a controller's reconcile, which its
// work queue retries with backoff. Retrying inside such a caller as well
// would multiply the attempts a struggling EdgeX receives and hold the
// caller's worker for several timeouts in a row.
func WithoutRetries(ctx context.Context) context.Context {
	return context.WithValue(ctx, callerRetries{}, true)
}

// do runs a call, repeating it with backoff while that is safe, the
// failure may be transient and the caller does not retry itself, and
// stopping as soon as ctx is done.
func (s *service) do(ctx context.Context, c call) error {
	attempts := 1
	if c.repeatable && ctx.Value(callerRetries{}) == nil {
		attempts += s.opts.Retries
	}
	for i := 0; ; i++ {
		err := s.attempt(ctx, c)
		if err == nil || i+1 >= attempts || !Retryable(err) || !s.wait(ctx, i) {
			return err
		}
	}
}

// wait sleeps before retry number i+1; false when ctx ended first.
func (s *service) wait(ctx context.Context, i int) bool {
	d := s.opts.Backoff << min(i, 3)
	d = d/2 + rand.N(d/2+1) // jitter keeps many bridges from retrying in step
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *service) attempt(ctx context.Context, c call) error {
	ctx, cancel := context.WithTimeoutCause(ctx, s.opts.Timeout, errAttemptTimeout)
	defer cancel()
	start := time.Now()
	status, err := s.send(ctx, c)
	if s.opts.Observer != nil {
		s.opts.Observer(RequestInfo{Service: s.name, Method: c.method, Route: c.route, Status: status, Duration: time.Since(start), Err: err})
	}
	return err
}

// send performs one HTTP exchange and types its outcome.
func (s *service) send(ctx context.Context, c call) (int, error) {
	token, err := s.token.current()
	if err != nil {
		return 0, &Error{Kind: KindUnauthorized, Op: c.op, Message: "cannot read the bearer token", Err: err}
	}
	req := s.rest.R().SetContext(ctx).SetPathParams(c.params).SetQueryParams(c.query)
	if token != "" {
		req.SetAuthToken(token)
	}
	if c.body != nil {
		req.SetHeader("Content-Type", "application/json").SetBody(c.body)
	}
	resp, err := req.Execute(c.method, c.route)
	if err != nil {
		return 0, s.transportError(ctx, c.op, err)
	}
	status, body := resp.StatusCode(), resp.Body()
	if !isSuccess(status) {
		return status, stamp(errorFromAnswer(status, body), c.op, status)
	}
	if c.decode == nil {
		return status, nil
	}
	return status, stamp(c.decode(status, body), c.op, status)
}

// transportError types a failure where no (complete) answer arrived.
func (s *service) transportError(ctx context.Context, op string, err error) *Error {
	if errors.Is(err, resty.ErrResponseBodyTooLarge) {
		return &Error{Kind: KindMalformed, Op: op, Message: fmt.Sprintf("answer larger than %d bytes", maxAnswer), Err: err}
	}
	e := &Error{Kind: KindUnavailable, Op: op, Err: err}
	if errors.Is(context.Cause(ctx), errAttemptTimeout) {
		e.Message = fmt.Sprintf("%s did not answer within %s", s.name, s.opts.Timeout)
	}
	return e
}

// stamp completes a decoder's *Error with the operation and HTTP status.
func stamp(err error, op string, status int) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	if e.Op == "" {
		e.Op = op
	}
	if e.StatusCode == 0 {
		e.StatusCode = status
	}
	return e
}

// nameParam refuses names that cannot be a path segment: empty ones, and
// "." or ".." which servers and proxies resolve instead of passing on.
// CheckName reports whether name can address an object of the kind what
// in EdgeX's REST paths. EdgeX accepts some names in request bodies (such as
// "..") that no path can reach afterwards, so callers refuse them before
// creating anything they could not update or delete.
func CheckName(what, name string) error {
	return nameParam("check name", what, name)
}

func nameParam(op, what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, 0) {
		return &Error{Kind: KindInvalid, Op: op, Message: fmt.Sprintf("%s %q cannot be used in a URL path", what, name)}
	}
	return nil
}
