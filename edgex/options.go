package edgex

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Options configures the core-metadata and core-command clients. Zero values
// mean the documented defaults.
type Options struct {
	// MetadataURL and CommandURL are the services' base URLs, such as
	// http://127.0.0.1:59881 and http://127.0.0.1:59882. A path prefix (an API
	// gateway route) is kept.
	MetadataURL, CommandURL string
	// Timeout bounds each attempt; default 10s.
	Timeout time.Duration
	// Retries is how many extra attempts a call that is safe to repeat (GET,
	// PATCH, DELETE, the full profile PUT) gets after a failure that may be
	// transient; default 2, negative for none. Adds (POST) and command PUTs
	// are never repeated: EdgeX may have acted on the first one.
	Retries int
	// Backoff is the wait before the first retry; it doubles per retry up to
	// 8 times that, with jitter. Default 250ms.
	Backoff time.Duration
	// PageSize is the limit asked for per list page; default 500. EdgeX's
	// limit=-1 ("everything") is never used: it is unbounded on both sides.
	PageSize int
	// TokenFile holds the EdgeX secure-mode bearer JWT. It is read on first
	// use and read again whenever the file changes (rotation), never on a
	// call where it did not.
	TokenFile string
	// CAFile is a PEM bundle of the only CAs trusted for EdgeX's TLS
	// certificates; CertFile and KeyFile are an optional client certificate.
	CAFile, CertFile, KeyFile string
	// UserAgent is sent with every request; default "edgebridge".
	UserAgent string
	// Observer, when set, is called once per attempt (metrics). It runs on
	// the caller's goroutine and must be quick and safe for concurrent use.
	Observer func(RequestInfo)
}

// RequestInfo describes one attempt of one call, for metrics.
type RequestInfo struct {
	// Service is "core-metadata" or "core-command".
	Service string
	Method  string
	// Route is the route pattern, such as /api/v3/device/name/{name}; never
	// the actual name, so that it is safe as a metric label.
	Route string
	// Status is the HTTP status, or 0 when no answer arrived.
	Status   int
	Duration time.Duration
	// Err is the attempt's failure, nil on success.
	Err error
}

const (
	defaultTimeout   = 10 * time.Second
	defaultRetries   = 2
	defaultBackoff   = 250 * time.Millisecond
	defaultPageSize  = 500
	defaultUserAgent = "edgebridge"
)

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	switch {
	case o.Retries == 0:
		o.Retries = defaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = defaultBackoff
	}
	if o.PageSize <= 0 {
		o.PageSize = defaultPageSize
	}
	if o.UserAgent == "" {
		o.UserAgent = defaultUserAgent
	}
	return o
}

// parseBaseURL accepts only what can safely receive the bearer token: an
// absolute http(s) URL without credentials, query or fragment.
func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("no URL given")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q: no host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: credentials, query and fragment are not allowed", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}

// tlsConfig returns nil when no TLS file is configured, so that the standard
// transport defaults (system roots) apply.
func (o Options) tlsConfig() (*tls.Config, error) {
	if o.CAFile == "" && o.CertFile == "" && o.KeyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pool, err := loadCAPool(o.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		if o.CertFile == "" || o.KeyFile == "" {
			return nil, errors.New("client certificate needs both CertFile and KeyFile")
		}
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func loadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// TLSConfig builds the TLS settings of the REST clients from the same files
// for other connections to the pool's EdgeX, such as its MQTT broker: a
// custom CA (the only one trusted when set) and an optional client
// certificate. It returns nil when no file is given.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	return Options{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}.tlsConfig()
}
