// Package broker starts a real mosquitto for tests, on a free loopback port,
// and stops it when they are done. It knows nothing of Kubernetes, so the
// edgex package's tests can use it.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Broker is a running mosquitto.
type Broker struct {
	// Port it listens on, on 127.0.0.1.
	Port int
	dir  string
	conf string

	mu  sync.Mutex
	cmd *exec.Cmd
	log *os.File
}

// Options configure the broker. The zero value is an anonymous plain-TCP
// broker.
type Options struct {
	// PasswordFile, when set, requires username and password (a file made by
	// mosquitto_passwd).
	PasswordFile string
	// TLS, when CertFile is set, serves TLS instead of plain TCP.
	CAFile, CertFile, KeyFile string
	// RequireClientCert asks clients for a certificate signed by CAFile.
	RequireClientCert bool
}

// URL is the address MQTT clients connect to.
func (b *Broker) URL() string {
	if strings.Contains(b.confText(), "certfile") {
		return fmt.Sprintf("ssl://127.0.0.1:%d", b.Port)
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", b.Port)
}

func (b *Broker) confText() string {
	data, _ := os.ReadFile(b.conf)
	return string(data)
}

// Start starts mosquitto for one test and stops it at the test's end.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	b, err := StartIn(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

// StartIn starts mosquitto with its config and log in dir (for TestMain and
// programs that have no testing.TB).
func StartIn(dir string, opts Options) (*Broker, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &Broker{Port: port, dir: dir, conf: filepath.Join(dir, "mosquitto.conf")}
	var conf strings.Builder
	fmt.Fprintf(&conf, "listener %d 127.0.0.1\npersistence false\n", port)
	if os.Geteuid() == 0 {
		// Run as root, mosquitto would switch to its own user, which cannot
		// read the password and certificate files tests write.
		conf.WriteString("user root\n")
	}
	// Tests publish bursts; the defaults would drop QoS 0 messages to a
	// subscriber that is briefly busy.
	conf.WriteString("max_queued_messages 0\nmax_inflight_messages 0\n")
	if opts.PasswordFile != "" {
		fmt.Fprintf(&conf, "allow_anonymous false\npassword_file %s\n", opts.PasswordFile)
	} else {
		conf.WriteString("allow_anonymous true\n")
	}
	if opts.CertFile != "" {
		fmt.Fprintf(&conf, "cafile %s\ncertfile %s\nkeyfile %s\n", opts.CAFile, opts.CertFile, opts.KeyFile)
		if opts.RequireClientCert {
			conf.WriteString("require_certificate true\n")
		}
	}
	if err := os.WriteFile(b.conf, []byte(conf.String()), 0o600); err != nil {
		return nil, fmt.Errorf("write mosquitto config: %w", err)
	}
	if err := b.start(); err != nil {
		return nil, err
	}
	return b, nil
}

// Path finds mosquitto, which Debian installs in /usr/sbin.
func Path() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", nil
	}
	return "", errors.New("mosquitto not installed (run `make test-deps`, which installs Debian's mosquitto)")
}

func (b *Broker) start() error {
	bin, err := Path()
	if err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(b.dir, "mosquitto.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open mosquitto log: %w", err)
	}
	cmd := exec.Command(bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start mosquitto: %w", err)
	}
	b.mu.Lock()
	b.cmd, b.log = cmd, log
	b.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.Port), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case err := <-exited:
			logText, _ := os.ReadFile(filepath.Join(b.dir, "mosquitto.log"))
			return fmt.Errorf("mosquitto exited at start (%v): %s", err, logText)
		case <-ctx.Done():
			return fmt.Errorf("mosquitto did not listen on %d: %w", b.Port, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop kills mosquitto; a stopped broker can be restarted on the same port.
func (b *Broker) Stop() {
	b.mu.Lock()
	cmd, log := b.cmd, b.log
	b.cmd, b.log = nil, nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	// Wait until the port is free, so a restart can bind it again.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.Port), 200*time.Millisecond)
		if err != nil {
			break
		}
		conn.Close()
		time.Sleep(10 * time.Millisecond)
	}
	log.Close()
}

// Restart stops the broker and starts it again on the same port, dropping
// every client connection and (persistence being off) every subscription.
func (b *Broker) Restart() error {
	b.Stop()
	return b.start()
}

// Bounce restarts the broker as Restart does and runs whileDown (when not
// nil) in between, for tests of what a short outage loses: a restart of
// mosquitto takes well under a second.
func (b *Broker) Bounce(whileDown func()) error {
	b.Stop()
	if whileDown != nil {
		whileDown()
	}
	return b.start()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
