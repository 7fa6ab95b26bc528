// Package image builds the edgebridge container image without a container
// daemon: static binaries of the bridge and the admission webhook, put as
// one layer on an empty base, with the non-root user the manifests run as.
// `make image` runs it (see ./build); deploy's tests build it too and check
// it against the manifests.
//
// There is no base image: none can be pulled where it is built, and the
// binaries need nothing one would bring. They are static (CGO_ENABLED=0),
// the bridge and the webhook talk to EdgeX and the API server with CAs
// given to them (the ServiceAccount's, --edgex-ca-file, --mqtt-ca-file),
// never the system's, so the image carries no CA bundle. It carries
// /etc/passwd and /etc/group with the one user, so that tools that look the
// user up by number find a name.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// What the image runs, and as whom: the manifests' runAsUser and runAsGroup.
const (
	UID        = 65532
	GID        = 65532
	Entrypoint = "/devicecontroller"
)

// Commands are the packages built into the image, each as /<base name>.
var Commands = []string{"./cmd/devicecontroller", "./cmd/device-admission"}

// Options say what to build.
type Options struct {
	// RepoRoot is the module's top directory, where go build runs.
	RepoRoot string
	// Version is what the bridge's --version prints.
	Version string
	// Platform is the image's OS and architecture; the zero value is
	// linux on the building machine's architecture.
	Platform v1.Platform
}

// Build compiles the commands and returns the image holding them.
func Build(ctx context.Context, o Options) (v1.Image, error) {
	if o.Version == "" {
		return nil, fmt.Errorf("image: Version is empty")
	}
	if o.Platform.OS == "" {
		o.Platform.OS = "linux"
	}
	if o.Platform.Architecture == "" {
		o.Platform.Architecture = goEnv(ctx, o.RepoRoot, "GOARCH")
	}
	binDir, err := os.MkdirTemp("", "edgebridge-image-")
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(binDir)
	if err := compile(ctx, o, binDir); err != nil {
		return nil, err
	}
	layer, err := rootLayer(binDir)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("image: add layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = o.Platform.OS, o.Platform.Architecture
	cfg.Config.Entrypoint = []string{Entrypoint}
	cfg.Config.User = fmt.Sprintf("%d:%d", UID, GID)
	cfg.Config.WorkingDir = "/"
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   "edgebridge",
		"org.opencontainers.image.version": o.Version,
		"org.opencontainers.image.source":  "https://github.com/edgebridge/edgebridge",
	}
	// A fixed creation time: the same sources give the same image digest.
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("image: set config: %w", err)
	}
	return img, nil
}

// compile builds static binaries of Commands into dir.
func compile(ctx context.Context, o Options, dir string) error {
	args := []string{"build", "-trimpath",
		"-ldflags", "-s -w -X main.version=" + o.Version,
		"-o", dir + string(filepath.Separator)}
	cmd := exec.CommandContext(ctx, "go", append(args, Commands...)...)
	cmd.Dir = o.RepoRoot
	// Static, so that the binaries need no libc in an image without one.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+o.Platform.OS, "GOARCH="+o.Platform.Architecture)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("image: go build %v: %w\n%s", Commands, err, out)
	}
	return nil
}

// rootLayer is the image's only layer: the binaries at / and the user.
func rootLayer(binDir string) (v1.Layer, error) {
	// Compressed once here: a layer made from uncompressed data would be
	// compressed again for its digest and for every copy written.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	epoch := time.Unix(0, 0).UTC()
	add := func(name string, mode int64, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "etc/", Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	files := []file{
		{"etc/passwd", 0o644, fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID)},
		{"etc/group", 0o644, fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", GID)},
	}
	for _, c := range Commands {
		name := filepath.Base(c)
		data, err := os.ReadFile(filepath.Join(binDir, name))
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		files = append(files, file{name, 0o755, data})
	}
	for _, f := range files {
		if err := add(f.name, f.mode, f.data); err != nil {
			return nil, fmt.Errorf("image: layer: %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	return layer, nil
}

type file struct {
	name string
	mode int64
	data []byte
}

// Write stores img as an OCI image layout in layoutDir, its one image
// named ref, and as a tarball that `docker load`, `podman load` and
// `crane push` read, at tarPath. Both are replaced if they exist.
func Write(img v1.Image, ref, layoutDir, tarPath string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image: tag %q: %w", ref, err)
	}
	if err := os.RemoveAll(layoutDir); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return fmt.Errorf("image: OCI layout %s: %w", layoutDir, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag.String(),
	})); err != nil {
		return fmt.Errorf("image: OCI layout %s: %w", layoutDir, err)
	}
	if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
		return fmt.Errorf("image: tarball %s: %w", tarPath, err)
	}
	return nil
}

// goEnv is one of go env's values, or "" when go cannot say.
func goEnv(ctx context.Context, dir, key string) string {
	cmd := exec.CommandContext(ctx, "go", "env", key)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(out))
}
