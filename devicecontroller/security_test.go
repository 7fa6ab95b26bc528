package devicecontroller_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"

	"github.com/edgebridge/edgebridge/api/v1alpha1"
	"github.com/edgebridge/edgebridge/devicecontroller"
	"github.com/edgebridge/edgebridge/edgex"
	"github.com/edgebridge/edgebridge/edgex/convert"
	"github.com/edgebridge/edgebridge/edgex/messagebus"
	"github.com/edgebridge/edgebridge/edgex/simulator"
	"github.com/edgebridge/edgebridge/hack/testenv"
	"github.com/edgebridge/edgebridge/hack/testenv/broker"
)

// EdgeX's REST APIs behind TLS with a private CA: the bridge trusts that CA
// (and only it) and syncs both ways; a client that does not trust it gets
// nothing.
func TestEdgeXOverTLSWithAPrivateCA(t *testing.T) {
	pki := newPKI(t)
	p := startPool(t, poolConfig{seedDemo: true,
		simOptions:  func(o *simulator.Options) { o.TLSCertFile, o.TLSKeyFile = pki.serverCert, pki.serverKey },
		restOptions: func(o *edgex.Options) { o.CAFile = pki.caFile },
	})
	demoImports(p)
	dev := commandDevice(p, "over-tls", simulator.ProfileGPIO)
	if _, ok := p.sim.Device(dev.Name); !ok {
		t.Fatal("the managed device did not reach EdgeX over TLS")
	}
	setDesired(p, dev.Name, "pin_17", "true")
	waitProperty(p, dev.Name, "pin_17", "Bool", "true")

	untrusting, err := edgex.NewMetadata(edgex.Options{MetadataURL: p.sim.MetadataURL(), CommandURL: p.sim.CommandURL(), Retries: -1, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if devices, err := untrusting.Devices.List(ctx); err == nil {
		t.Fatalf("a client without the private CA listed %d devices", len(devices))
	}
}

// The message bus behind TLS with a private CA and required client
// certificates, set up from files as cmd/devicecontroller does: system
// events, readings and MQTT commands all flow.
func TestMessageBusWithPrivateCAAndClientCertificates(t *testing.T) {
	pki := newPKI(t)
	b := broker.Start(t, broker.Options{CAFile: pki.caFile, CertFile: pki.serverCert, KeyFile: pki.serverKey, RequireClientCert: true})
	bridgeTLS, err := edgex.TLSConfig(pki.caFile, pki.clientCert, pki.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	simTLS, err := edgex.TLSConfig(pki.caFile, pki.clientCert, pki.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	p := startPool(t, poolConfig{seedDemo: true, transport: "mqtt", broker: b,
		simOptions: func(o *simulator.Options) { o.BrokerTLS = simTLS },
		busOptions: func(o *messagebus.Options) { o.TLS = bridgeTLS },
	})
	imported := demoImports(p)

	sensor := simulator.DemoDevices()[1].Name
	desc := "changed at the edge, announced over TLS"
	if err := p.sim.UpdateDevice(updateDescription(sensor, desc)); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.Device{}, imported[sensor], func(d *v1alpha1.Device) error {
		if d.Spec.Description != desc {
			return fmt.Errorf("description %q: the system event did not arrive", d.Spec.Description)
		}
		return nil
	})
	if err := p.sim.PublishReadings(context.Background(), sensor, map[string]string{"temperature": "17.5"}); err != nil {
		t.Fatal(err)
	}
	waitFor(p, &v1alpha1.Device{}, imported[sensor], func(d *v1alpha1.Device) error {
		if got := d.Status.DeviceProperties["temperature"].ActualValue; !convert.EqualValues("Float32", got, "17.5") {
			return fmt.Errorf("temperature %q: the reading did not arrive", got)
		}
		return nil
	})
	commandDevice(p, "cmd-over-tls", simulator.ProfileGPIO)
	setDesired(p, "cmd-over-tls", "pin_18", "true")
	waitProperty(p, "cmd-over-tls", "pin_18", "Bool", "true")
}

// EdgeX 3 secure mode: the bearer token comes from a file (a mounted
// Secret) and is read again when the file is replaced. While EdgeX rejects
// the token, edits say Unauthorized and a resync deletes nothing; once the
// new token is in the file, the edit lands without a restart.
func TestRotatedTokenIsReadFromTheFile(t *testing.T) {
	secret := newMountedSecret(t, "token", "first-token")
	p := startPool(t, poolConfig{seedDemo: true,
		simOptions:  func(o *simulator.Options) { o.Token = "first-token" },
		restOptions: func(o *edgex.Options) { o.TokenFile = secret.path },
	})
	imported := demoImports(p)
	dev := commandDevice(p, "secured", simulator.ProfileGPIO)

	p.sim.SetToken("second-token") // EdgeX rotated; the Secret is not updated yet
	const desc = "edited while the token was stale"
	update(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) { d.Spec.Description = desc })
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
		return reason(d.Status.Conditions, v1alpha1.ConditionSynced, v1alpha1.ReasonUnauthorized)
	})
	failedLists := resyncs(t, p, "error")
	p.bridge.ResyncNow()
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if resyncs(t, p, "error") == failedLists {
			return fmt.Errorf("no resync refused yet")
		}
		return nil
	})
	assertStays(t, time.Second, func() error { return allPresent(p, imported) })

	secret.update("second-token")
	waitFor(p, &v1alpha1.Device{}, dev.Name, func(d *v1alpha1.Device) error {
		if edge, _ := p.sim.Device(dev.Name); edge.Description != desc {
			return fmt.Errorf("EdgeX holds %q", edge.Description)
		}
		return reason(d.Status.Conditions, v1alpha1.ConditionSynced, v1alpha1.ReasonInSync)
	})
}

// A bridge whose token EdgeX rejects from the start must say so: objects
// show Unauthorized (not "waiting for the first list"), and nothing is
// imported or deleted on the strength of the refused lists. (It found that
// objects said only "waiting for the first complete list"; the edge view
// now keeps why the list fails.)
func TestTokenRejectedFromTheStartIsReported(t *testing.T) {
	secret := newMountedSecret(t, "token", "wrong-token")
	p := startPool(t, poolConfig{seedDemo: true, noBridge: true,
		simOptions:  func(o *simulator.Options) { o.Token = "right-token" },
		restOptions: func(o *edgex.Options) { o.TokenFile = secret.path },
	})
	dev := managedDevice(p, "never-listed", simulator.DemoServiceName, simulator.ProfileGPIO)
	p.create(dev)
	r := p.launchBridge()
	testenv.Eventually(t, testenv.DefaultTimeout, func(context.Context) error {
		if resyncs(t, p, "error") == 0 {
			return fmt.Errorf("no list refused yet")
		}
		return nil
	})
	if err := r.bridge.Ready(); err == nil {
		t.Error("the bridge reports ready although EdgeX refuses every list")
	}
	if n := countDevices(t, p); n != 1 {
		t.Errorf("%d devices in the namespace, want only the managed one", n)
	}
	// Every refused list is a chance to say why; 20s is many of them.
	testenv.Eventually(t, 20*time.Second, func(context.Context) error {
		d := &v1alpha1.Device{}
		if err := p.get(d, dev.Name); err != nil {
			return err
		}
		return reason(d.Status.Conditions, v1alpha1.ConditionSynced, v1alpha1.ReasonUnauthorized)
	})
}

// A runaway loop of desired-value edits cannot hammer a device: over any
// stretch the device receives at most CommandBurst + CommandRate x time
// commands. The same loop against a bridge with a lax limit shows the loop
// could send far more, and in both cases the last value wins.
func TestRunawayEditLoopIsRateLimited(t *testing.T) {
	const (
		loop       = 3 * time.Second
		tightRate  = 2
		tightBurst = 3
	)
	cases := []struct {
		name  string
		rate  float64
		burst int
		// bounded says the writes must stay within the limit; the control
		// case must exceed the tight limit by far.
		bounded bool
	}{
		{"rate 2/s, burst 3", tightRate, tightBurst, true},
		{"lax limit (control)", 1000, 1000, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startPool(t, poolConfig{seedDemo: true, options: func(o *devicecontroller.Options) {
				o.CommandRate, o.CommandBurst = tc.rate, tc.burst
			}})
			w := recordWrites(t, p)
			dev := commandDevice(p, "hammered", simulator.ProfileSensor)
			started := time.Now()
			edits := 0
			for value := 2; time.Since(started) < loop; value++ {
				setDesired(p, dev.Name, "sample_rate", fmt.Sprint(value))
				edits++
			}
			last := fmt.Sprint(edits + 1)
			waitProperty(p, dev.Name, "sample_rate", "Int32", last)

			writes := w.to(dev.Name, "sample_rate")
			limit := float64(tc.burst) + tc.rate*time.Since(started).Seconds()
			t.Logf("%d edits, %d writes in %s (limit %.0f)", edits, len(writes), time.Since(started).Round(time.Millisecond), limit)
			switch {
			case tc.bounded && float64(len(writes)) > limit:
				t.Fatalf("%d writes, more than the limit of %.0f", len(writes), limit)
			case tc.bounded:
				assertRateBound(t, writes, started, tc.rate, tc.burst)
			case float64(len(writes)) <= 2*(tightBurst+tightRate*time.Since(started).Seconds()):
				t.Fatalf("only %d writes for %d edits without a tight limit: the loop is too slow to prove the bound", len(writes), edits)
			}
		})
	}
}

// assertRateBound checks every prefix of the writes: by each write's time,
// no more than burst + rate x elapsed writes happened.
func assertRateBound(t *testing.T, writes []simulator.Write, started time.Time, rate float64, burst int) {
	t.Helper()
	for i, w := range writes {
		if allowed := float64(burst) + rate*w.At.Sub(started).Seconds(); float64(i+1) > allowed+1e-9 {
			t.Fatalf("write %d came %s after the loop began, beyond the %.1f allowed by then", i+1, w.At.Sub(started), allowed)
		}
	}
}

func updateDescription(name, desc string) dtos.UpdateDevice {
	return dtos.UpdateDevice{Name: &name, Description: &desc}
}

// mountedSecret is a file as Kubernetes mounts a Secret key: a symlink
// into a timestamped directory, replaced by swapping a ..data symlink.
type mountedSecret struct {
	t    *testing.T
	dir  string
	key  string
	path string
	mu   sync.Mutex
	gen  int
}

func newMountedSecret(t *testing.T, key, value string) *mountedSecret {
	s := &mountedSecret{t: t, dir: t.TempDir(), key: key}
	s.path = filepath.Join(s.dir, key)
	s.update(value)
	if err := os.Symlink(filepath.Join("..data", key), s.path); err != nil {
		t.Fatal(err)
	}
	return s
}

// update writes a new version and swaps it in atomically.
func (s *mountedSecret) update(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	version := fmt.Sprintf("..%d", s.gen)
	must(s.t, os.Mkdir(filepath.Join(s.dir, version), 0o700))
	must(s.t, os.WriteFile(filepath.Join(s.dir, version, s.key), []byte(value+"\n"), 0o600))
	tmp := filepath.Join(s.dir, "..data_tmp")
	must(s.t, os.Symlink(version, tmp))
	must(s.t, os.Rename(tmp, filepath.Join(s.dir, "..data")))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pki is a private CA with a server certificate for 127.0.0.1 and a
// client certificate, as PEM files.
type pki struct {
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, ca := issue(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "edgebridge test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	})
	serverKey, server := issue(t, caKey, ca, &x509.Certificate{
		Subject: pkix.Name{CommonName: "edgex"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	clientKey, clientCert := issue(t, caKey, ca, &x509.Certificate{
		Subject:  pkix.Name{CommonName: "edgebridge"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	files := pki{
		caFile:     writeCert(t, dir, "ca.pem", ca),
		serverCert: writeCert(t, dir, "server.pem", server),
		serverKey:  writeKey(t, dir, "server-key.pem", serverKey),
		clientCert: writeCert(t, dir, "client.pem", clientCert),
		clientKey:  writeKey(t, dir, "client-key.pem", clientKey),
	}
	return files
}

// issue makes a certificate from tmpl, signed by parent (self-signed when
// parent is nil).
func issue(t *testing.T, parentKey *ecdsa.PrivateKey, parent, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	must(t, err)
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	return key, cert
}

// writeCert and writeKey write PEM files; mosquitto reads them as root in
// tests (see hack/testenv/broker).
func writeCert(t *testing.T, dir, name string, cert *x509.Certificate) string {
	path := filepath.Join(dir, name)
	must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644))
	return path
}

func writeKey(t *testing.T, dir, name string, key *ecdsa.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	path := filepath.Join(dir, name)
	must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return path
}
