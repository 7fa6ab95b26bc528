package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// YurtHubPath is bin/yurthub, built by hack/build-yurthub.sh (`make chaos`
// runs it).
func YurtHubPath() (string, error) {
	p := filepath.Join(RepoRoot(), "bin", "yurthub")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("yurthub not built at %s (run hack/build-yurthub.sh, or `make chaos` which does it): %w", p, err)
	}
	return p, nil
}

// YurtHubOptions describe one node's YurtHub.
type YurtHubOptions struct {
	// Node is the node YurtHub runs on; its identity, system:node:<Node>,
	// is what requests through the proxy act as.
	Node string
	// Server is the API server's host:port as YurtHub reaches it, such as
	// a Link's Addr; default the control plane's own.
	Server string
	// CacheAgents is kube-system/yurt-hub-cfg's cache_agents: the user
	// agents whose lists and watches YurtHub caches.
	CacheAgents string
	// Dir holds its certificates, kubeconfigs, cache and log; the caller
	// owns it. The cache survives a restart of YurtHub in the same Dir.
	Dir string
}

// YurtHub is OpenYurt's node-side proxy in front of the control plane,
// running as its own process with edge working mode's defaults. Requests
// to its proxy port carry no credentials: YurtHub adds the node's.
type YurtHub struct {
	opts      YurtHubOptions
	cmd       *exec.Cmd
	exited    chan struct{}
	proxyAddr string
	log       *os.File
}

// StartYurtHub prepares what YurtHub needs of the control plane (the node's
// user in groups system:nodes and openyurt:yurthub, the yurt-hub-cfg
// configmap, its certificates and kubeconfigs) and starts it; it returns
// once a request through its proxy is answered by the API server.
// Granting the node's user what the clients behind it need is the
// caller's part (GrantNode).
func StartYurtHub(ctx context.Context, k *Kube, opts YurtHubOptions) (*YurtHub, error) {
	bin, err := YurtHubPath()
	if err != nil {
		return nil, err
	}
	if opts.Node == "" || opts.Dir == "" {
		return nil, errors.New("yurthub: Node and Dir are required")
	}
	user, err := k.Env.AddUser(envtest.User{Name: NodeUser(opts.Node), Groups: []string{"system:nodes", "openyurt:yurthub"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("yurthub: node user: %w", err)
	}
	ucfg := user.Config()
	// What a node may do: YurtHub's health check renews the node's lease
	// in kube-node-lease, and reads its node.
	if err := GrantNode(ctx, k.Client, opts.Node, "system:node"); err != nil {
		return nil, err
	}
	if opts.Server == "" {
		opts.Server = ucfg.Host
	} else {
		opts.Server = "https://" + opts.Server
	}
	if err := setCacheAgents(ctx, k.Client, opts.CacheAgents); err != nil {
		return nil, err
	}
	pki := filepath.Join(opts.Dir, "pki")
	if err := os.MkdirAll(pki, 0o755); err != nil {
		return nil, err
	}
	serving, err := servingPEM(opts.Node)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		filepath.Join(pki, "ca.crt"): ucfg.CAData,
		// YurtHub reads its client certificate and key from one file.
		filepath.Join(pki, "yurthub-current.pem"): append(append([]byte{}, ucfg.CertData...), ucfg.KeyData...),
		// Without a serving certificate YurtHub asks for one by CSR and
		// waits for a signer the test control plane does not run.
		filepath.Join(pki, "yurthub-server-current.pem"): serving,
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return nil, err
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cloud"] = &clientcmdapi.Cluster{Server: opts.Server, CertificateAuthority: filepath.Join(pki, "ca.crt")}
	kc.AuthInfos["node"] = &clientcmdapi.AuthInfo{ClientCertificate: filepath.Join(pki, "yurthub-current.pem"),
		ClientKey: filepath.Join(pki, "yurthub-current.pem")}
	kc.Contexts["hub"] = &clientcmdapi.Context{Cluster: "cloud", AuthInfo: "node"}
	kc.CurrentContext = "hub"
	for _, name := range []string{"yurthub.conf", "bootstrap-hub.conf"} {
		if err := clientcmd.WriteToFile(*kc, filepath.Join(opts.Dir, name)); err != nil {
			return nil, err
		}
	}
	h := &YurtHub{opts: opts}
	if err := h.start(ctx, bin); err != nil {
		return nil, err
	}
	return h, nil
}

// NodeUser is the user a node's YurtHub acts as.
func NodeUser(node string) string { return "system:node:" + node }

func (h *YurtHub) start(ctx context.Context, bin string) error {
	ports, err := FreePorts(3)
	if err != nil {
		return err
	}
	h.proxyAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	logf, err := os.OpenFile(filepath.Join(h.opts.Dir, "yurthub.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	h.log = logf
	d := h.opts.Dir
	h.cmd = exec.Command(bin,
		"--server-addr="+h.opts.Server, "--node-name="+h.opts.Node, "--root-dir="+d,
		"--bootstrap-file="+filepath.Join(d, "bootstrap-hub.conf"), "--disk-cache-path="+filepath.Join(d, "cache"),
		"--bind-address=127.0.0.1", "--bind-proxy-address=127.0.0.1",
		fmt.Sprintf("--proxy-port=%d", ports[0]), fmt.Sprintf("--proxy-secure-port=%d", ports[1]), fmt.Sprintf("--serve-port=%d", ports[2]),
		// No network set-up on a test machine: the proxy is reached on
		// loopback.
		"--enable-dummy-if=false", "--enable-iptables=false",
		"--working-mode=edge", "--v=2",
		// Notice the cloud's absence (and return) within seconds rather
		// than the default half minute.
		"--heartbeat-interval-seconds=2", "--heartbeat-failed-retry=1", "--heartbeat-healthy-threshold=1",
	)
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	if err := h.cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start yurthub: %w", err)
	}
	h.exited = make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(h.exited) }()
	err = Wait(2*time.Minute, func(ctx context.Context) error {
		select {
		case <-h.exited:
			return fmt.Errorf("yurthub exited (%v); see %s", h.cmd.ProcessState, logf.Name())
		default:
		}
		return h.proxies(ctx)
	})
	if err != nil {
		_ = h.Stop()
		log, _ := os.ReadFile(h.Log())
		if len(log) > 6<<10 {
			log = log[len(log)-6<<10:]
		}
		return fmt.Errorf("yurthub does not proxy: %w; the end of its log:\n%s", err, log)
	}
	return nil
}

// proxies checks that a request through the proxy reaches the API server.
func (h *YurtHub) proxies(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL()+"/api/v1/namespaces/kube-system", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// Any answer of the API server's will do (the node may not read
	// namespaces): every kube-apiserver answer carries an Audit-Id, and
	// YurtHub's own answers do not.
	if resp.Header.Get("Audit-Id") == "" {
		return fmt.Errorf("through yurthub: %s, not from the API server: %s", resp.Status, body)
	}
	return nil
}

// URL is the plain-HTTP proxy's address, as a pod on the node reaches it.
func (h *YurtHub) URL() string { return "http://" + h.proxyAddr }

// Config is a client configuration through the proxy, with no credentials
// of its own.
func (h *YurtHub) Config(userAgent string) *rest.Config {
	return &rest.Config{Host: h.URL(), UserAgent: userAgent, QPS: -1}
}

// Log is the path of YurtHub's log.
func (h *YurtHub) Log() string { return filepath.Join(h.opts.Dir, "yurthub.log") }

// Stop ends the process and waits for it.
func (h *YurtHub) Stop() error {
	if h.cmd == nil || h.cmd.Process == nil {
		return nil
	}
	select {
	case <-h.exited:
	default:
		_ = h.cmd.Process.Kill()
		<-h.exited
	}
	return h.log.Close()
}

// GrantNode binds clusterRole to the node's user: clients behind YurtHub's
// proxy act as the node.
func GrantNode(ctx context.Context, c client.Client, node, clusterRole string) error {
	b := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "yurthub-" + node + "-" + clusterRole},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: NodeUser(node)}},
	}
	if err := c.Create(ctx, b); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bind %s to node %s: %w", clusterRole, node, err)
	}
	return nil
}

func setCacheAgents(ctx context.Context, c client.Client, agents string) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "yurt-hub-cfg"},
		Data: map[string]string{"cache_agents": agents}}
	err := c.Create(ctx, cm)
	if apierrors.IsAlreadyExists(err) {
		err = c.Update(ctx, cm)
	}
	if err != nil {
		return fmt.Errorf("yurthub: configmap kube-system/yurt-hub-cfg: %w", err)
	}
	return nil
}

// servingPEM is a self-signed serving certificate and key for YurtHub's
// secure port on loopback.
func servingPEM(node string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:   pkix.Name{CommonName: NodeUser(node), Organization: []string{"system:nodes"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("169.254.2.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("yurthub serving certificate: %w", err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})...), nil
}

// FreePorts returns n distinct loopback ports that were free a moment ago:
// another process may take one before its user binds it.
func FreePorts(n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
