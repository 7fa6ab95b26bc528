package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/edgebridge/edgebridge/hack/image"
	"github.com/edgebridge/edgebridge/hack/testenv"
)

// TestImageRunsWhatTheManifestsName builds the image as `make image` does,
// reads it back from the OCI layout it writes, and checks it against every
// workload kustomize and the chart install: the tag they name, the
// entrypoint, the non-root user, the binaries their commands name, and
// that the bridge in it is static and runs.
func TestImageRunsWhatTheManifestsName(t *testing.T) {
	ref := makeImageRef(t)
	_, version, _ := strings.Cut(ref, ":")
	img, files := buildImage(t, ref)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	pods := everyWorkloadPod(t)

	t.Run("the manifests name the tag make image builds", func(t *testing.T) {
		for name, pod := range pods {
			for _, c := range pod.Spec.Containers {
				if c.Image != ref {
					t.Errorf("%s runs %s; make image builds %s", name, c.Image, ref)
				}
			}
		}
	})
	t.Run("runs the bridge when the workload gives no command", func(t *testing.T) {
		if !slices.Equal(cfg.Config.Entrypoint, []string{"/devicecontroller"}) {
			t.Errorf("entrypoint %v, want [/devicecontroller]", cfg.Config.Entrypoint)
		}
		for name, pod := range pods {
			c := pod.Spec.Containers[0]
			if c.Name == "devicecontroller" && len(c.Command) > 0 {
				t.Errorf("%s overrides the entrypoint with %v", name, c.Command)
			}
		}
	})
	t.Run("holds every binary a workload runs", func(t *testing.T) {
		for name, pod := range pods {
			for _, c := range pod.Spec.Containers {
				cmd := cfg.Config.Entrypoint
				if len(c.Command) > 0 {
					cmd = c.Command
				}
				if _, ok := files[strings.TrimPrefix(cmd[0], "/")]; !ok {
					t.Errorf("%s runs %s, which the image lacks", name, cmd[0])
				}
			}
		}
	})
	t.Run("runs as the manifests' non-root user", func(t *testing.T) {
		uid, gid, _ := strings.Cut(cfg.Config.User, ":")
		if uid == "" || uid == "0" || uid == "root" {
			t.Fatalf("image user %q is root", cfg.Config.User)
		}
		for name, pod := range pods {
			sc := pod.Spec.SecurityContext
			if sc == nil || sc.RunAsUser == nil || fmt.Sprint(*sc.RunAsUser) != uid || sc.RunAsGroup == nil || fmt.Sprint(*sc.RunAsGroup) != gid {
				t.Errorf("%s runs as %v, the image as %s", name, sc, cfg.Config.User)
			}
		}
		if passwd := string(files["etc/passwd"]); !strings.Contains(passwd, ":x:"+uid+":"+gid+":") {
			t.Errorf("/etc/passwd has no user %s:%s:\n%s", uid, gid, passwd)
		}
	})
	t.Run("its binaries are static", func(t *testing.T) {
		for _, c := range image.Commands {
			name := filepath.Base(c)
			f, err := elf.NewFile(bytes.NewReader(files[name]))
			if err != nil {
				t.Fatalf("/%s: %v", name, err)
			}
			if slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
				t.Errorf("/%s needs a dynamic loader, which the image has not", name)
			}
		}
	})
	t.Run("the bridge in it prints its version", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "devicecontroller")
		if err := os.WriteFile(bin, files["devicecontroller"], 0o755); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("devicecontroller --version: %v\n%s", err, out)
		}
		if want := "edgebridge " + version + " ("; !strings.HasPrefix(string(out), want) {
			t.Errorf("--version printed %q, want it to start %q", out, want)
		}
	})
}

// makeImageRef is the image `make image` builds, as the Makefile names it.
func makeImageRef(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "image-ref")
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make image-ref: %v", err)
	}
	ref := strings.TrimSpace(string(out))
	if _, tag, ok := strings.Cut(ref, ":"); !ok || tag == "" {
		t.Fatalf("make image-ref printed %q, which has no tag", ref)
	}
	return ref
}

// buildImage runs `make image` into a directory of its own and reads the
// image back from the OCI layout it writes, by its name. It returns the
// image and the files of its filesystem.
func buildImage(t *testing.T, ref string) (v1.Image, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	// A cold build of both binaries takes minutes on two busy cores.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "image", "BIN="+dir)
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	idx, err := layout.ImageIndexFromPath(filepath.Join(dir, "image"))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var img v1.Image
	for _, d := range manifest.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == ref {
			if img, err = idx.Image(d.Digest); err != nil {
				t.Fatal(err)
			}
		}
	}
	if img == nil {
		t.Fatalf("the OCI layout holds no image named %s: %+v", ref, manifest.Manifests)
	}
	if _, err := os.Stat(filepath.Join(dir, "image.tar")); err != nil {
		t.Errorf("make image wrote no tarball: %v", err)
	}
	return img, imageFiles(t, img)
}

// imageFiles reads the image's flattened filesystem.
func imageFiles(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(hdr.Name, "/")] = data
	}
}

// everyWorkloadPod is the pod template of every workload deploy/ installs,
// with kustomize and with the chart.
func everyWorkloadPod(t *testing.T) map[string]corev1.PodTemplateSpec {
	t.Helper()
	withAdmission := build(t, variant{dir: "overlays/deployment", admission: true})
	yas := decodeYurtAppSet(t, find(t, build(t, variant{dir: "overlays/yurtappset"}), "YurtAppSet", "edgebridge"))
	chartDeployment := renderChart(t, chartValues{
		"workload":  deploymentValues["workload"],
		"admission": map[string]any{"enabled": true},
	})
	chartYAS := decodeYurtAppSet(t, find(t, renderChart(t, nil), "YurtAppSet", "edgebridge"))
	return map[string]corev1.PodTemplateSpec{
		"kustomize Deployment edgebridge":           decode[appsv1.Deployment](t, find(t, withAdmission, "Deployment", "edgebridge")).Spec.Template,
		"kustomize Deployment edgebridge-admission": decode[appsv1.Deployment](t, find(t, withAdmission, "Deployment", "edgebridge-admission")).Spec.Template,
		"kustomize YurtAppSet edgebridge":           yas.Spec.Workload.WorkloadTemplate.DeploymentTemplate.Spec.Template,
		"chart Deployment edgebridge":               decode[appsv1.Deployment](t, find(t, chartDeployment, "Deployment", "edgebridge")).Spec.Template,
		"chart Deployment edgebridge-admission":     decode[appsv1.Deployment](t, find(t, chartDeployment, "Deployment", "edgebridge-admission")).Spec.Template,
		"chart YurtAppSet edgebridge":               chartYAS.Spec.Workload.WorkloadTemplate.DeploymentTemplate.Spec.Template,
	}
}
