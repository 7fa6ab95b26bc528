package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	commonDTO "github.com/edgexfoundry/go-mod-core-contracts/v3/dtos/common"
	"github.com/google/uuid"
)

// Service names as EdgeX reports them (ping, version, request counts).
const (
	serviceMetadata = "core-metadata"
	serviceCommand  = "core-command"
	edgexVersion    = "3.1.1"
)

// maxRequestBody bounds a request body; larger ones are refused, never
// buffered.
const maxRequestBody = 16 << 20

type correlationKey struct{}

func correlationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// recorder buffers an answer so that faults can garble it and so that every
// answer carries an exact Content-Length.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

// serve wraps a service's routes with what every EdgeX REST call goes
// through here: counting, injected faults, the correlation id, the bearer
// token.
func (s *Simulator) serve(service string, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := routeOf(mux, r)
		s.countRequest(service + " " + route)
		if !s.delay(r.Context()) {
			return
		}
		corr := r.Header.Get(common.CorrelationHeader)
		if corr == "" {
			corr = uuid.NewString()
		}
		r = r.WithContext(context.WithValue(r.Context(), correlationKey{}, corr))
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		rec := &recorder{header: http.Header{}}
		s.answer(rec, r, route, mux)
		rec.header.Set(common.CorrelationHeader, corr)
		s.flush(w, rec)
	})
}

// delay waits out the injected latency. It ends early when the simulator
// closes: the server cannot tell that the client of a request with an
// unread body gave up, so without this a closed simulator would keep such
// handlers for the whole latency.
func (s *Simulator) delay(ctx context.Context) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.lifetime, cancel)()
	return wait(ctx, s.faults.latency())
}

// routeOf is the route pattern a request matches, like
// "GET /api/v3/device/all", or "METHOD (no route)".
func routeOf(mux *http.ServeMux, r *http.Request) string {
	if _, pattern := mux.Handler(r); pattern != "" && pattern != "/" {
		return pattern
	}
	return r.Method + " " + noRoute
}

const noRoute = "(no route)"

func isListRoute(route string) bool {
	return strings.HasPrefix(route, http.MethodGet+" ") && strings.HasSuffix(route, "/all")
}

func (s *Simulator) answer(w http.ResponseWriter, r *http.Request, route string, mux *http.ServeMux) {
	if status, ok := s.faults.takeFailure(isListRoute(route)); ok {
		writeError(w, newAPIError(status, "simulated failure: %s", http.StatusText(status)))
		return
	}
	if isListRoute(route) && s.faults.errorBodyOnSuccess() {
		writeJSON(w, http.StatusOK, commonDTO.NewBaseResponse("", "simulated error body on a success status", http.StatusInternalServerError))
		return
	}
	if needsToken(route) && !s.authorized(r) {
		// echo's HTTPError, as go-mod-bootstrap's JWT check returns it.
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": http.StatusText(http.StatusUnauthorized)})
		return
	}
	mux.ServeHTTP(w, r)
}

// needsToken is false for ping, which EdgeX never authenticates, and for
// unknown routes, which echo refuses before any route's middleware runs.
func needsToken(route string) bool {
	return !strings.HasSuffix(route, common.ApiPingRoute) && !strings.HasSuffix(route, noRoute)
}

func (s *Simulator) authorized(r *http.Request) bool {
	token := *s.token.Load()
	if token == "" {
		return true
	}
	scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && value == token
}

// flush writes the recorded answer, cut in the middle when responses are to
// be truncated.
func (s *Simulator) flush(w http.ResponseWriter, rec *recorder) {
	body := rec.body.Bytes()
	if s.faults.truncating() && len(body) > 1 {
		body = body[:len(body)/2]
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(body)
}

// writeJSON answers as EdgeX's services do: JSON with the encoder's
// trailing newline.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set(common.ContentType, common.ContentTypeJSON)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err *apiError) {
	if err.html {
		w.Header().Set(common.ContentType, "text/html; charset=utf-8")
		w.WriteHeader(err.status)
		_, _ = w.Write([]byte(err.message))
		return
	}
	writeJSON(w, err.status, commonDTO.NewBaseResponse("", err.message, err.status))
}

// notFound answers unknown routes and wrong methods as echo does.
func notFound(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "Method Not Allowed"})
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
}

// commonRoutes are ping and version, which every EdgeX service answers.
func commonRoutes(mux *http.ServeMux, service string) {
	mux.HandleFunc("GET "+common.ApiPingRoute, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, commonDTO.NewPingResponse(service))
	})
	mux.HandleFunc("GET "+common.ApiVersionRoute, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, commonDTO.NewVersionResponse(edgexVersion, service))
	})
	mux.HandleFunc("/", notFound(mux))
}
