package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// RepoRoot is the repository's top directory, found from this file's place
// in it so that tests work from any package directory.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("testenv: cannot locate own source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// KubeAPIServerEnv names another kube-apiserver binary for the tests to
// run against: `make test-compat` sets it to the oldest supported version's.
const KubeAPIServerEnv = "EDGEBRIDGE_KUBE_APISERVER"

// KubeAPIServerPath is $EDGEBRIDGE_KUBE_APISERVER when set, else
// bin/kube-apiserver, built by `make test-deps`.
func KubeAPIServerPath() (string, error) {
	if p := os.Getenv(KubeAPIServerEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s names no kube-apiserver (`make test-compat` builds the one it names): %w", KubeAPIServerEnv, err)
		}
		return p, nil
	}
	p := filepath.Join(RepoRoot(), "bin", "kube-apiserver")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("kube-apiserver not built at %s (run `make test-deps`, or `make test` which does it): %w", p, err)
	}
	return p, nil
}

// EtcdPath is Debian's etcd on PATH.
func EtcdPath() (string, error) {
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", fmt.Errorf("etcd not installed (run `make test-deps`, which installs Debian's etcd-server): %w", err)
	}
	return p, nil
}
