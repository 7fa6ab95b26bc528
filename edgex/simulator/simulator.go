package simulator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgebridge/edgebridge/edgex/messagebus"
)

// Options configure a simulator. Zero values mean the documented defaults.
type Options struct {
	// MetadataAddr and CommandAddr are listen addresses; default
	// "127.0.0.1:0" (a free port).
	MetadataAddr, CommandAddr string
	// BrokerURL is the MQTT broker (tcp:// or ssl://) for system events,
	// device events and core-command's external MQTT API; "" means no
	// message bus.
	BrokerURL                      string
	BrokerUsername, BrokerPassword string
	// BrokerTLS overrides the TLS settings for an ssl:// broker: a custom
	// CA, a client certificate. Nil means Go's defaults (system roots).
	BrokerTLS *tls.Config
	// TopicPrefix is the base topic; default "edgex".
	TopicPrefix string
	// Token, when set, is required on every REST call except ping as
	// "Authorization: Bearer <Token>"; SetToken rotates it at run time.
	Token string
	// TLSCertFile and TLSKeyFile make both services serve HTTPS.
	TLSCertFile, TLSKeyFile string
	// MaxResultCount is core-metadata's (and core-command's) cap on a
	// list's limit; default 1024 as in EdgeX.
	MaxResultCount int
	// AutoEvents runs every device's autoEvents: readings are published on
	// their intervals and read-only sensor values drift.
	AutoEvents bool
	// Logger receives what the services would log; nil discards it.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MetadataAddr == "" {
		o.MetadataAddr = "127.0.0.1:0"
	}
	if o.CommandAddr == "" {
		o.CommandAddr = "127.0.0.1:0"
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = messagebus.DefaultTopicPrefix
	}
	if o.MaxResultCount <= 0 {
		o.MaxResultCount = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// Write is one accepted write to a device resource.
type Write struct {
	Device, Resource string
	// Value is the written value as later reads return it ("true",
	// "4.200000e+01").
	Value string
	// Via is "rest" or "mqtt" (core-command's external MQTT API).
	Via string
	At  time.Time
}

// Simulator is a running EdgeX stand-in. Create it with New, Start it, Close
// it. All methods are safe for concurrent use.
type Simulator struct {
	opts   Options
	log    *slog.Logger
	topics messagebus.Topics
	faults *Faults

	// mu guards the database: everything core-metadata stores and every
	// virtual device's current values.
	mu sync.Mutex
	db *database
	// provisioned is what each device service had registered when the
	// database was last wiped: a device service does not notice a wipe, and
	// registers the same again (with new ids) when it restarts.
	provisioned map[string]*database

	token     atomic.Pointer[string]
	requests  atomic.Int64
	countsMu  sync.Mutex
	counts    map[string]int64
	hooksMu   sync.Mutex
	hooks     map[int]func(Write)
	nextHook  int
	originsMu sync.Mutex
	lastNanos int64

	metadataURL, commandURL string
	// serversMu guards servers and commandServer, which SetCommandDown
	// replaces while the simulator runs.
	serversMu       sync.Mutex
	servers         []*http.Server
	commandServer   *http.Server
	serverTLSConf   *tls.Config
	bus             *bus
	autoEvents      *autoEvents
	lifetime        context.Context
	stop            context.CancelFunc
	wg              sync.WaitGroup
	started, closed atomic.Bool
}

// New prepares a simulator with an empty database.
func New(opts Options) *Simulator {
	opts = opts.withDefaults()
	s := &Simulator{
		opts:   opts,
		log:    opts.Logger,
		topics: messagebus.Topics{Prefix: opts.TopicPrefix},
		db:     newDatabase(),
		counts: map[string]int64{},
		hooks:  map[int]func(Write){},
	}
	s.faults = &Faults{sim: s}
	s.SetToken(opts.Token)
	s.lifetime, s.stop = context.WithCancel(context.Background())
	s.bus = newBus(s)
	s.autoEvents = newAutoEvents(s)
	return s
}

// Start listens on both addresses and connects to the broker. It returns
// once both services answer and the external command topics are
// subscribed. Changes made before Start announce nothing on the bus.
func (s *Simulator) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("simulator already started")
	}
	tlsConfig, err := s.serverTLS()
	if err != nil {
		return err
	}
	if s.metadataURL, err = s.listen(s.opts.MetadataAddr, s.metadataHandler(), tlsConfig, false); err != nil {
		return fmt.Errorf("start core-metadata: %w", err)
	}
	s.serverTLSConf = tlsConfig
	if s.commandURL, err = s.listen(s.opts.CommandAddr, s.commandHandler(), tlsConfig, true); err != nil {
		s.shutdownServers()
		return fmt.Errorf("start core-command: %w", err)
	}
	if s.opts.BrokerURL != "" {
		if err := s.bus.start(ctx); err != nil {
			s.shutdownServers()
			return err
		}
	}
	if s.opts.AutoEvents {
		s.autoEvents.enable()
	}
	s.log.Info("EdgeX simulator started", "core-metadata", s.metadataURL, "core-command", s.commandURL, "broker", s.opts.BrokerURL)
	return nil
}

func (s *Simulator) serverTLS() (*tls.Config, error) {
	if s.opts.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(s.opts.TLSCertFile, s.opts.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load simulator TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// listen serves handler on addr and returns its base URL.
func (s *Simulator) listen(addr string, handler http.Handler, tlsConfig *tls.Config, isCommand bool) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	scheme := "http"
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
		scheme = "https"
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	s.serversMu.Lock()
	s.servers = append(s.servers, srv)
	if isCommand {
		s.commandServer = srv
	}
	s.serversMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("REST server stopped", "addr", l.Addr().String(), "err", err)
		}
	}()
	return fmt.Sprintf("%s://%s", scheme, l.Addr().String()), nil
}

// Close stops the servers, the autoEvents and the bus connection.
func (s *Simulator) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.stop()
	s.autoEvents.disable()
	s.shutdownServers()
	s.bus.close()
	s.wg.Wait()
	return nil
}

func (s *Simulator) shutdownServers() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.serversMu.Lock()
	servers := append([]*http.Server(nil), s.servers...)
	s.serversMu.Unlock()
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
}

// MetadataURL is core-metadata's base URL, such as http://127.0.0.1:41234.
func (s *Simulator) MetadataURL() string { return s.metadataURL }

// CommandURL is core-command's base URL.
func (s *Simulator) CommandURL() string { return s.commandURL }

// SetToken rotates the bearer token REST calls need; "" turns auth off.
func (s *Simulator) SetToken(token string) { s.token.Store(&token) }

// Faults is where tests inject failures.
func (s *Simulator) Faults() *Faults { return s.faults }

// RequestCount is the number of REST requests both services have received.
func (s *Simulator) RequestCount() int64 { return s.requests.Load() }

// RequestCounts counts REST requests by "service METHOD route", such as
// "core-metadata GET /api/v3/device/all".
func (s *Simulator) RequestCounts() map[string]int64 {
	s.countsMu.Lock()
	defer s.countsMu.Unlock()
	out := make(map[string]int64, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

func (s *Simulator) countRequest(key string) {
	s.requests.Add(1)
	s.countsMu.Lock()
	s.counts[key]++
	s.countsMu.Unlock()
}

// OnWrite calls fn, synchronously, for every accepted write; fn must be quick
// and must not call back into the simulator's write paths. cancel removes it.
func (s *Simulator) OnWrite(fn func(Write)) (cancel func()) {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	id := s.nextHook
	s.nextHook++
	s.hooks[id] = fn
	return func() {
		s.hooksMu.Lock()
		delete(s.hooks, id)
		s.hooksMu.Unlock()
	}
}

func (s *Simulator) notifyWrites(writes []Write) {
	if len(writes) == 0 {
		return
	}
	s.hooksMu.Lock()
	hooks := make([]func(Write), 0, len(s.hooks))
	for _, fn := range s.hooks {
		hooks = append(hooks, fn)
	}
	s.hooksMu.Unlock()
	for _, w := range writes {
		for _, fn := range hooks {
			fn(w)
		}
	}
}

// uniqueOrigin is a nanosecond timestamp that never repeats, as
// device-sdk-go makes event origins unique.
func (s *Simulator) uniqueOrigin() int64 {
	s.originsMu.Lock()
	defer s.originsMu.Unlock()
	now := time.Now().UnixNano()
	if now <= s.lastNanos {
		now = s.lastNanos + 1
	}
	s.lastNanos = now
	return now
}

// wait pauses for d, or until ctx ends; it reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// stopCommand closes core-command's listener and connections: clients
// find the port refusing connections, as when the container is stopped.
func (s *Simulator) stopCommand() {
	s.serversMu.Lock()
	srv := s.commandServer
	s.commandServer = nil
	s.serversMu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// startCommand serves core-command again on the port it had.
func (s *Simulator) startCommand() error {
	s.serversMu.Lock()
	running := s.commandServer != nil
	s.serversMu.Unlock()
	if running || s.closed.Load() {
		return nil
	}
	u, err := url.Parse(s.commandURL)
	if err != nil {
		return err
	}
	_, err = s.listen(u.Host, s.commandHandler(), s.serverTLSConf, true)
	return err
}
