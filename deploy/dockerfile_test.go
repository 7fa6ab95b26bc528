package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/edgebridge/edgebridge/hack/testenv"
)

// instruction is one Dockerfile instruction, in the stage it belongs to.
type instruction struct {
	stage int
	cmd   string
	args  string
}

// parseDockerfile reads deploy/Dockerfile; it has no line continuations.
func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	stage := -1
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			t.Fatalf("line continuations are not parsed here: %s", line)
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, instruction{stage: stage, cmd: cmd, args: strings.TrimSpace(args)})
	}
	return out
}

// TestDockerfileBuildsTheImageTheManifestsRun checks the image recipe
// without docker (which cannot run where the tests run): what it builds,
// what it copies, and that the image fits the manifests that run it.
func TestDockerfileBuildsTheImageTheManifestsRun(t *testing.T) {
	steps := parseDockerfile(t)
	last := steps[len(steps)-1].stage
	of := func(stage int, cmd string) []string {
		var out []string
		for _, s := range steps {
			if s.cmd == cmd && (stage < 0 || s.stage == stage) {
				out = append(out, s.args)
			}
		}
		return out
	}
	buildCmd := ""
	for _, run := range of(-1, "RUN") {
		if strings.Contains(run, "go build") {
			buildCmd = run
		}
	}
	if buildCmd == "" {
		t.Fatal("no RUN go build")
	}

	t.Run("builds with the Go release go.mod names", func(t *testing.T) {
		want := "golang:" + goRelease(t)
		if from := of(0, "FROM"); len(from) == 0 || !strings.HasPrefix(from[0], want+" ") {
			t.Errorf("build stage FROM %v, want %s", from, want)
		}
	})
	t.Run("builds static binaries of both commands", func(t *testing.T) {
		if !strings.Contains(buildCmd, "CGO_ENABLED=0") {
			t.Error("go build without CGO_ENABLED=0: the binaries would need a libc the base image lacks")
		}
		for _, pkg := range []string{"./cmd/devicecontroller", "./cmd/device-admission"} {
			if !slices.Contains(strings.Fields(buildCmd), pkg) {
				t.Errorf("does not build %s", pkg)
			}
		}
	})
	t.Run("copies every package the binaries import", func(t *testing.T) {
		copied := map[string]bool{}
		for _, c := range of(0, "COPY") {
			for _, src := range strings.Fields(c) {
				copied[strings.TrimSuffix(src, "/")] = true
			}
		}
		for _, dir := range localPackageDirs(t, "./cmd/devicecontroller", "./cmd/device-admission") {
			top, _, _ := strings.Cut(dir, "/")
			if !copied[top] && !copied[dir] {
				t.Errorf("package directory %s is not copied into the build stage", dir)
			}
		}
	})
	t.Run("the image runs the bridge and holds the webhook", func(t *testing.T) {
		if ep := of(last, "ENTRYPOINT"); !slices.Equal(ep, []string{`["/devicecontroller"]`}) {
			t.Errorf("ENTRYPOINT %v: the bridge's Deployments give no command, so it must be /devicecontroller", ep)
		}
		binaries := map[string]bool{}
		for _, c := range of(last, "COPY") {
			f := strings.Fields(c)
			binaries[f[len(f)-1]] = true
		}
		admissionDeployment := decode[appsv1.Deployment](t, find(t, build(t, variant{dir: "overlays/deployment", admission: true}), "Deployment", "edgebridge-admission"))
		cmd := admissionDeployment.Spec.Template.Spec.Containers[0].Command
		if len(cmd) == 0 || !binaries[cmd[0]] {
			t.Errorf("the webhook's Deployment runs %v; the image holds %v", cmd, binaries)
		}
		if !binaries["/devicecontroller"] {
			t.Errorf("the image holds %v, not /devicecontroller", binaries)
		}
	})
	t.Run("runs as the manifests' non-root user", func(t *testing.T) {
		user := of(last, "USER")
		if len(user) != 1 {
			t.Fatalf("USER %v, want one", user)
		}
		uid, _, _ := strings.Cut(user[0], ":")
		for name, pod := range everyWorkloadPod(t) {
			sc := pod.Spec.SecurityContext
			if sc == nil || sc.RunAsUser == nil || fmt.Sprint(*sc.RunAsUser) != uid {
				t.Errorf("%s runs as %v, the image as %s", name, sc, uid)
			}
		}
	})
}

// goRelease is go.mod's Go version as a golang image tag: 1.26.
func goRelease(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			parts := strings.SplitN(v, ".", 3)
			return strings.Join(parts[:min(2, len(parts))], ".")
		}
	}
	t.Fatal("go.mod has no go directive")
	return ""
}

// localPackageDirs are the repository directories (relative) of the
// module's own packages that pkgs import, pkgs included.
func localPackageDirs(t *testing.T, pkgs ...string) []string {
	t.Helper()
	args := append([]string{"list", "-deps", "-json=Dir,Module"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var dirs []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			Dir    string
			Module *struct{ Main bool }
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || !p.Module.Main {
			continue
		}
		rel, err := filepath.Rel(testenv.RepoRoot(), p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, filepath.ToSlash(rel))
	}
	if len(dirs) < len(pkgs) {
		t.Fatalf("go list found %v for %v", dirs, pkgs)
	}
	return dirs
}

// everyWorkloadPod is the pod template of every workload deploy/ installs.
func everyWorkloadPod(t *testing.T) map[string]corev1.PodTemplateSpec {
	t.Helper()
	withAdmission := build(t, variant{dir: "overlays/deployment", admission: true})
	yas := decodeYurtAppSet(t, find(t, build(t, variant{dir: "overlays/yurtappset"}), "YurtAppSet", "edgebridge"))
	return map[string]corev1.PodTemplateSpec{
		"Deployment edgebridge":           decode[appsv1.Deployment](t, find(t, withAdmission, "Deployment", "edgebridge")).Spec.Template,
		"Deployment edgebridge-admission": decode[appsv1.Deployment](t, find(t, withAdmission, "Deployment", "edgebridge-admission")).Spec.Template,
		"YurtAppSet edgebridge":           yas.Spec.Workload.WorkloadTemplate.DeploymentTemplate.Spec.Template,
	}
}
