package edgex

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
)

const timeoutPage = `<html><head><title>Timeout</title></head><body><h1>Timeout</h1></body></html>`

func TestAnswersBecomeTypedErrors(t *testing.T) {
	cases := []struct {
		name        string
		status      int
		body        string
		wantKind    ErrorKind
		wantMessage string
	}{
		{"invalid request", 400, `{"apiVersion":"v3","message":"invalid name","statusCode":400}`, KindInvalid, "invalid name"},
		{"no token", 401, `{"apiVersion":"v3","message":"unauthorized","statusCode":401}`, KindUnauthorized, "unauthorized"},
		{"token refused by the gateway", 403, `Forbidden`, KindUnauthorized, "Forbidden; answer was not EdgeX JSON: Forbidden"},
		{"not found", 404, `{"apiVersion":"v3","message":"fail to query device by name x","statusCode":404}`, KindNotFound, "fail to query device by name x"},
		{"read-only resource", 405, `{"apiVersion":"v3","message":"read-only","statusCode":405}`, KindNotAllowed, "read-only"},
		{"in use", 409, `{"apiVersion":"v3","message":"still referenced","statusCode":409}`, KindConflict, "still referenced"},
		{"locked", 423, `{"apiVersion":"v3","message":"device x locked","statusCode":423}`, KindLocked, "device x locked"},
		{"EdgeX failed", 500, `{"apiVersion":"v3","message":"redis down","statusCode":500}`, KindInternal, "redis down"},
		{"bad gateway", 502, ``, KindUnavailable, "Bad Gateway"},
		{"device service validation timeout", 503, timeoutPage, KindUnavailable, "Service Unavailable; answer was not EdgeX JSON: Timeout Timeout"},
		{"gateway timeout", 504, `{"apiVersion":"v3","message":"upstream timed out","statusCode":504}`, KindUnavailable, "upstream timed out"},
		{"redirect is not followed", 302, ``, KindInternal, "Found"},
		{"error envelope with 200", 200, `{"apiVersion":"v3","message":"fail to query","statusCode":500}`, KindMalformed, ""},
		{"truncated JSON with 200", 200, `{"apiVersion":"v3","statusCode":200,"device":{"name":"x","serv`, KindMalformed, ""},
		{"trailing garbage with 200", 200, `{"apiVersion":"v3","statusCode":200,"device":{"name":"x"}} {}`, KindMalformed, ""},
		{"no device in a 200", 200, `{"apiVersion":"v3","statusCode":200}`, KindMalformed, ""},
		{"null device in a 200", 200, `{"apiVersion":"v3","statusCode":200,"device":null}`, KindMalformed, ""},
		{"HTML with 200", 200, `<html>login</html>`, KindMalformed, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 302 {
					w.Header().Set("Location", "http://example.invalid/steal")
				}
				answer(w, tc.status, tc.body)
			})
			opts := fastOptions(srv.URL, "")
			opts.Retries = -1
			_, err := newMetadata(t, opts).Devices.Get(context.Background(), "x")
			wantError(t, err, tc.wantKind, tc.status, tc.wantMessage)
			if !strings.Contains(err.Error(), `get device "x"`) {
				t.Errorf("error %q does not say what was attempted", err)
			}
		})
	}
}

func TestNetworkFailuresAreUnavailable(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	release := make(chan struct{})
	hanging := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })

	cases := []struct {
		name    string
		url     string
		message string
	}{
		{"connection refused", closed.URL, ""},
		{"no answer within the timeout", hanging.URL, "core-metadata did not answer within 100ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := fastOptions(tc.url, "")
			opts.Timeout = 100 * time.Millisecond
			opts.Retries = -1
			_, err := newMetadata(t, opts).Devices.Get(context.Background(), "x")
			wantError(t, err, KindUnavailable, 0, tc.message)
		})
	}
}

// Only calls that mean the same when repeated are retried: reads, patches,
// deletes. Adds and command writes may have taken effect already.
func TestOnlySafeCallsAreRetried(t *testing.T) {
	val := "LOCKED"
	name := "x"
	cases := []struct {
		name         string
		status       int
		call         func(md *Metadata, cmd *Command) error
		wantAttempts int
	}{
		{"get device, service unavailable", 503, func(md *Metadata, _ *Command) error {
			_, err := md.Devices.Get(context.Background(), "x")
			return err
		}, 3},
		{"list devices, internal error", 500, func(md *Metadata, _ *Command) error {
			_, err := md.Devices.List(context.Background())
			return err
		}, 3},
		{"patch device, bad gateway", 502, func(md *Metadata, _ *Command) error {
			_, err := md.Devices.Update(context.Background(), dtos.UpdateDevice{Name: &name, AdminState: &val})
			return err
		}, 3},
		{"delete profile, gateway timeout", 504, func(md *Metadata, _ *Command) error {
			return md.Profiles.Delete(context.Background(), "x")
		}, 3},
		{"read command, service unavailable", 503, func(_ *Metadata, cmd *Command) error {
			_, err := cmd.Read(context.Background(), "dev", "temperature", ReadOptions{})
			return err
		}, 3},
		{"add device, service unavailable", 503, func(md *Metadata, _ *Command) error {
			_, err := md.Devices.Add(context.Background(), testDevice("x"))
			return err
		}, 1},
		{"write command, service unavailable", 503, func(_ *Metadata, cmd *Command) error {
			return cmd.Write(context.Background(), "dev", "gpio_out_1", map[string]string{"gpio_out_1": "true"})
		}, 1},
		{"get device, not found is an answer", 404, func(md *Metadata, _ *Command) error {
			_, err := md.Devices.Get(context.Background(), "x")
			return err
		}, 1},
		{"get device, refused token", 401, func(md *Metadata, _ *Command) error {
			_, err := md.Devices.Get(context.Background(), "x")
			return err
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var attempts atomic.Int32
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				attempts.Add(1)
				answer(w, tc.status, `{"apiVersion":"v3","message":"nope","statusCode":0}`)
			})
			obs := &observed{}
			opts := fastOptions(srv.URL, srv.URL)
			opts.Observer = obs.observe
			err := tc.call(newMetadata(t, opts), newCommand(t, opts))
			if KindOf(err) != KindForStatus(tc.status) {
				t.Errorf("error %v, want kind %s", err, KindForStatus(tc.status))
			}
			if n := int(attempts.Load()); n != tc.wantAttempts {
				t.Errorf("%d attempts, want %d", n, tc.wantAttempts)
			}
			infos := obs.all()
			if len(infos) != tc.wantAttempts {
				t.Fatalf("observer called %d times, want once per attempt (%d)", len(infos), tc.wantAttempts)
			}
			for _, info := range infos {
				if info.Status != tc.status || info.Err == nil || strings.Contains(info.Route, "dev/") || info.Service == "" {
					t.Errorf("observed %+v", info)
				}
			}
		})
	}
}

func TestRetrySucceedsAfterATransientFailure(t *testing.T) {
	var attempts atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			answer(w, 503, timeoutPage)
			return
		}
		answer(w, 200, `{"apiVersion":"v3","statusCode":200,"device":{"name":"x"}}`)
	})
	d, err := newMetadata(t, fastOptions(srv.URL, "")).Devices.Get(context.Background(), "x")
	mustNot(t, err)
	if d.Name != "x" || attempts.Load() != 2 {
		t.Errorf("device %q after %d attempts", d.Name, attempts.Load())
	}
}

// A caller that retries itself (a reconcile, retried by its work queue)
// gets one attempt per call, so a failing EdgeX holds it for one timeout,
// not one per retry.
func TestNoRetriesForCallersThatRetry(t *testing.T) {
	var attempts atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		answer(w, 503, timeoutPage)
	})
	opts := fastOptions(srv.URL, "")
	opts.Retries = 5
	_, err := newMetadata(t, opts).Devices.Get(WithoutRetries(context.Background()), "x")
	if !IsUnavailable(err) || attempts.Load() != 1 {
		t.Errorf("error %v after %d attempts, want unavailable after 1", err, attempts.Load())
	}
}

func TestRetryStopsWhenTheContextEnds(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { answer(w, 503, "") })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := fastOptions(srv.URL, "")
	opts.Backoff = time.Hour
	opts.Retries = 5
	var attempts atomic.Int32
	opts.Observer = func(RequestInfo) {
		attempts.Add(1)
		cancel() // the caller gives up while the client waits to retry
	}
	done := make(chan error, 1)
	go func() {
		_, err := newMetadata(t, opts).Devices.Get(ctx, "x")
		done <- err
	}()
	select {
	case err := <-done:
		if !IsUnavailable(err) || attempts.Load() != 1 {
			t.Errorf("error %v after %d attempts", err, attempts.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call kept waiting after its context ended")
	}
}

func TestTokenFileIsFollowedWhenRotated(t *testing.T) {
	var accepted atomic.Value
	accepted.Store("Bearer token-one")
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != accepted.Load().(string) {
			answer(w, 401, `{"apiVersion":"v3","message":"invalid token","statusCode":401}`)
			return
		}
		answer(w, 200, `{"apiVersion":"v3","statusCode":200,"device":{"name":"x"}}`)
	})
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	writeFile(t, file, "token-one\n")
	opts := fastOptions(srv.URL, "")
	opts.TokenFile = file
	md := newMetadata(t, opts)
	get := func() error {
		_, err := md.Devices.Get(context.Background(), "x")
		return err
	}

	mustNot(t, get())

	accepted.Store("Bearer token-two") // EdgeX rotated; the file not yet
	wantError(t, get(), KindUnauthorized, 401, "invalid token")

	writeFile(t, file, "token-two\n")
	bumpMtime(t, file)
	mustNot(t, get())

	// Kubernetes rotates a mounted secret by swapping a symlink.
	dataOne, dataTwo := filepath.Join(dir, "data-3"), filepath.Join(dir, "data-4")
	writeFile(t, dataOne, "token-three")
	writeFile(t, dataTwo, "token-four")
	link := filepath.Join(dir, "token-link")
	mustNot(t, os.Symlink(dataOne, link))
	opts.TokenFile = link
	md = newMetadata(t, opts)
	accepted.Store("Bearer token-three")
	mustNot(t, get())
	accepted.Store("Bearer token-four")
	swap := filepath.Join(dir, "token-link.new")
	mustNot(t, os.Symlink(dataTwo, swap))
	mustNot(t, os.Rename(swap, link))
	mustNot(t, get())
}

// The file is read again only when it changed: a rewrite that keeps the
// same file, size and mtime is invisible, which proves there is no read per
// call.
func TestUnchangedTokenFileIsNotReread(t *testing.T) {
	rec := &seen{}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		answer(w, 200, `{"apiVersion":"v3","statusCode":200,"device":{"name":"x"}}`)
	})
	file := filepath.Join(t.TempDir(), "token")
	writeFile(t, file, "aaaa")
	info, err := os.Stat(file)
	mustNot(t, err)
	opts := fastOptions(srv.URL, "")
	opts.TokenFile = file
	md := newMetadata(t, opts)
	_, err = md.Devices.Get(context.Background(), "x")
	mustNot(t, err)

	writeFile(t, file, "bbbb")
	mustNot(t, os.Chtimes(file, info.ModTime(), info.ModTime()))
	_, err = md.Devices.Get(context.Background(), "x")
	mustNot(t, err)

	bumpMtime(t, file)
	_, err = md.Devices.Get(context.Background(), "x")
	mustNot(t, err)

	var auths []string
	for _, r := range rec.all() {
		auths = append(auths, r.Auth)
	}
	want := []string{"Bearer aaaa", "Bearer aaaa", "Bearer bbbb"}
	if strings.Join(auths, ",") != strings.Join(want, ",") {
		t.Errorf("Authorization headers %v, want %v", auths, want)
	}
}

func TestMissingTokenFileIsUnauthorizedWithoutARequest(t *testing.T) {
	rec := &seen{}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { rec.record(r) })
	opts := fastOptions(srv.URL, "")
	opts.TokenFile = filepath.Join(t.TempDir(), "absent")
	_, err := newMetadata(t, opts).Devices.Get(context.Background(), "x")
	wantError(t, err, KindUnauthorized, 0, "")
	if !errors.Is(err, os.ErrNotExist) || rec.count() != 0 {
		t.Errorf("error %v, %d requests", err, rec.count())
	}
}

// bumpMtime moves a file's mtime clearly forward, as a rotation does, so
// the test does not depend on the filesystem's timestamp resolution.
func bumpMtime(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	mustNot(t, err)
	later := info.ModTime().Add(time.Minute)
	mustNot(t, os.Chtimes(path, later, later))
}

func TestTLSWithCustomCAAndClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, `{"apiVersion":"v3","timestamp":"now","serviceName":"core-metadata"}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.ServerCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.ClientCAs}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	cases := []struct {
		name    string
		opts    func(o *Options)
		wantErr ErrorKind
	}{
		{"custom CA and client certificate", func(o *Options) {
			o.CAFile, o.CertFile, o.KeyFile = pki.CAFile, pki.CertFile, pki.KeyFile
		}, ""},
		{"no client certificate", func(o *Options) { o.CAFile = pki.CAFile }, KindUnavailable},
		{"system roots do not know the CA", func(o *Options) { o.CertFile, o.KeyFile = pki.CertFile, pki.KeyFile }, KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := fastOptions(srv.URL, "")
			opts.Retries = -1
			tc.opts(&opts)
			if err := newMetadata(t, opts).Ping(context.Background()); KindOf(err) != tc.wantErr {
				t.Errorf("ping: %v, want kind %q", err, tc.wantErr)
			}
		})
	}
}

func TestOptionsThatCannotWork(t *testing.T) {
	pki := newTestPKI(t)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, notPEM, "not a certificate")
	cases := []struct {
		name string
		opts Options
	}{
		{"no URL", Options{}},
		{"not http", Options{MetadataURL: "ftp://127.0.0.1:59881"}},
		{"credentials in the URL", Options{MetadataURL: "http://user:pw@127.0.0.1:59881"}},
		{"relative URL", Options{MetadataURL: "/api/v3"}},
		{"certificate without key", Options{MetadataURL: "https://127.0.0.1:59881", CertFile: pki.CertFile}},
		{"CA file without certificates", Options{MetadataURL: "https://127.0.0.1:59881", CAFile: notPEM}},
		{"missing CA file", Options{MetadataURL: "https://127.0.0.1:59881", CAFile: notPEM + ".absent"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewMetadata(tc.opts); err == nil {
				t.Error("accepted")
			}
			tc.opts.CommandURL, tc.opts.MetadataURL = tc.opts.MetadataURL, ""
			if _, err := NewCommand(tc.opts); err == nil {
				t.Error("accepted as command URL")
			}
		})
	}
}

func TestUserAgentAndContentType(t *testing.T) {
	rec := make(chan http.Header, 2)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		rec <- r.Header.Clone()
		answer(w, 200, `{"apiVersion":"v3","statusCode":200}`)
	})
	opts := fastOptions("", srv.URL)
	mustNot(t, newCommand(t, opts).Write(context.Background(), "dev", "gpio_out_1", map[string]string{"gpio_out_1": "true"}))
	h := <-rec
	if h.Get("User-Agent") != "edgebridge" || h.Get("Content-Type") != "application/json" || h.Get("Authorization") != "" {
		t.Errorf("headers %v", h)
	}
	opts.UserAgent = "edgebridge/test"
	mustNot(t, newCommand(t, opts).Write(context.Background(), "dev", "gpio_out_1", map[string]string{"gpio_out_1": "true"}))
	if h := <-rec; h.Get("User-Agent") != "edgebridge/test" {
		t.Errorf("User-Agent %q", h.Get("User-Agent"))
	}
}

// A success status whose body is an EdgeX error envelope is not a success:
// not for a write, not for a delete, and for a list not an empty list.
func TestSuccessStatusWithAnErrorBodyIsMalformed(t *testing.T) {
	no := false
	const errorBody = `{"apiVersion":"v3","message":"fail to query","statusCode":500,"totalCount":0,"devices":[],"device":{"name":"x"}}`
	cases := []struct {
		name string
		call func(md *Metadata, cmd *Command) error
	}{
		{"list devices", func(md *Metadata, _ *Command) error {
			got, err := md.Devices.List(context.Background())
			if got != nil {
				t.Errorf("list of %d along with the error", len(got))
			}
			return err
		}},
		{"get device", func(md *Metadata, _ *Command) error {
			_, err := md.Devices.Get(context.Background(), "x")
			return err
		}},
		{"delete device", func(md *Metadata, _ *Command) error { return md.Devices.Delete(context.Background(), "x") }},
		{"write command", func(_ *Metadata, cmd *Command) error {
			return cmd.Write(context.Background(), "d", "c", map[string]string{"c": "1"})
		}},
		{"read command without event", func(_ *Metadata, cmd *Command) error {
			_, err := cmd.Read(context.Background(), "d", "c", ReadOptions{ReturnEvent: &no})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) { answer(w, 200, errorBody) })
			opts := fastOptions(srv.URL, srv.URL)
			opts.Retries = -1
			err := tc.call(newMetadata(t, opts), newCommand(t, opts))
			wantError(t, err, KindMalformed, 200, "")
			var e *Error
			if errors.As(err, &e) && !strings.Contains(e.Message, "fail to query") {
				t.Errorf("message %q does not pass on what EdgeX said", e.Message)
			}
		})
	}
}
