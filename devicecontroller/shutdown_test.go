package devicecontroller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/edgebridge/edgebridge/hack/testenv"
)

// shutdownBound is how long a Pod's bridge may take to stop after SIGTERM:
// well inside Kubernetes' default grace period of 30 s, so that a rollout or
// a node drain never ends in SIGKILL.
const shutdownBound = 15 * time.Second

// SIGTERM stops the binary promptly even while its caches cannot sync: an
// API server that refuses the pool's list (no RBAC yet, as while a chart is
// half installed) or, on Kubernetes before 1.31, the spec.nodePool field
// selector itself.
func TestBinaryStopsOnSIGTERMWhileCachesCannotSync(t *testing.T) {
	cases := []struct {
		name       string
		kubeconfig func(*testing.T) string
	}{
		{"lists forbidden", func(t *testing.T) string { return userKubeconfig(t, "edgebridge-without-rbac", nil) }},
	}
	if kube.ServerMinor(t) < 31 {
		cases = append(cases, struct {
			name       string
			kubeconfig func(*testing.T) string
		}{"field selector refused", kubeconfigFile})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startPool(t, poolConfig{noBridge: true})
			// The flag skips the start-up probe, which would otherwise
			// choose what the server can do (or wait for the lists).
			bin := startBinary(t, p, "--kubeconfig="+tc.kubeconfig(t), "--pool-selection=field")
			waitForLog(t, bin, "Failed to watch") // the cache cannot list

			signalled := time.Now()
			if err := bin.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			err := testenv.Wait(shutdownBound, func(context.Context) error {
				if processAlive(bin) {
					return fmt.Errorf("running %v after SIGTERM", time.Since(signalled).Round(time.Second))
				}
				return nil
			})
			if err != nil {
				// Go's SIGQUIT writes every goroutine's stack to the log:
				// what the bridge was waiting for.
				_ = bin.cmd.Process.Signal(syscall.SIGQUIT)
				_ = testenv.Wait(10*time.Second, func(context.Context) error {
					if processAlive(bin) {
						return fmt.Errorf("no goroutine dump yet")
					}
					return nil
				})
				bin.kill()
				t.Fatalf("still running %v after SIGTERM; log with goroutines:\n%s", shutdownBound, tail(bin.logs(), 20000))
			}
			bin.kill() // reaps it
			if code := bin.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit code %d after SIGTERM; log:\n%s", code, tail(bin.logs(), 4000))
			}
			t.Logf("stopped within %v of SIGTERM", time.Since(signalled).Round(100*time.Millisecond))
		})
	}
}

// waitForLog waits until the binary has logged text, and fails at once if
// it exits first.
func waitForLog(t *testing.T, bp *bridgeProcess, text string) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func(context.Context) error {
		if strings.Contains(bp.logs(), text) {
			return nil
		}
		if !processAlive(bp) {
			t.Fatalf("the bridge exited before it logged %q; log:\n%s", text, tail(bp.logs(), 4000))
		}
		return fmt.Errorf("the bridge has not logged %q yet", text)
	})
}

// processAlive reports whether the child still runs (a zombie counts as
// gone).
func processAlive(bp *bridgeProcess) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", bp.cmd.Process.Pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// userKubeconfig is a kubeconfig for a user of the package's API server
// with the given groups and whatever RBAC grants them.
func userKubeconfig(t *testing.T, name string, groups []string) string {
	t.Helper()
	user, err := kube.Env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
