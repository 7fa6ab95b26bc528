package edgex

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fastOptions keep failing tests quick: short attempts, tiny backoff.
func fastOptions(metadataURL, commandURL string) Options {
	return Options{MetadataURL: metadataURL, CommandURL: commandURL, Timeout: 2 * time.Second, Backoff: time.Millisecond}
}

func newMetadata(t *testing.T, opts Options) *Metadata {
	t.Helper()
	md, err := NewMetadata(opts)
	if err != nil {
		t.Fatalf("NewMetadata: %v", err)
	}
	return md
}

func newCommand(t *testing.T, opts Options) *Command {
	t.Helper()
	cmd, err := NewCommand(opts)
	if err != nil {
		t.Fatalf("NewCommand: %v", err)
	}
	return cmd
}

// serve starts a loopback EdgeX stand-in whose handler the test writes.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// seen records what a test server received, safely across goroutines.
type seen struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	Method, Path, Query, Auth, Body string
}

func (s *seen) record(r *http.Request) recorded {
	body, _ := io.ReadAll(r.Body)
	rec := recorded{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"), Body: string(body)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, rec)
	return rec
}

func (s *seen) all() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// observed collects RequestInfo from the Observer hook.
type observed struct {
	mu    sync.Mutex
	infos []RequestInfo
}

func (o *observed) observe(info RequestInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.infos = append(o.infos, info)
}

func (o *observed) all() []RequestInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]RequestInfo(nil), o.infos...)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// testPKI is a throwaway CA with a loopback server certificate and a client
// certificate, written as PEM files the way a secure EdgeX deployment
// mounts them.
type testPKI struct {
	CAFile, CertFile, KeyFile string
	ServerCert                tls.Certificate
	ClientCAs                 *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert, caDER := newCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	serverKey, serverDER := newLeaf(t, caKey, caCert, 2, x509.ExtKeyUsageServerAuth)
	clientKey, clientDER := newLeaf(t, caKey, caCert, 3, x509.ExtKeyUsageClientAuth)

	p := testPKI{
		CAFile:    filepath.Join(dir, "ca.pem"),
		CertFile:  filepath.Join(dir, "client.pem"),
		KeyFile:   filepath.Join(dir, "client-key.pem"),
		ClientCAs: pool,
	}
	writeFile(t, p.CAFile, pemBlock("CERTIFICATE", caDER))
	writeFile(t, p.CertFile, pemBlock("CERTIFICATE", clientDER))
	writeFile(t, p.KeyFile, pemBlock("EC PRIVATE KEY", ecKeyDER(t, clientKey)))
	p.ServerCert = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
	return p
}

func newCA(t *testing.T) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "edgebridge test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

func newLeaf(t *testing.T, caKey *ecdsa.PrivateKey, ca *x509.Certificate, serial int64, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "edgex"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func ecKeyDER(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemBlock(kind string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}))
}
