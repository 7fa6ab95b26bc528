package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgebridge/edgebridge/hack/testenv"
)

// openYurtCRDFiles are the CRDs of OpenYurt's that deploy/ relies on, as
// OpenYurt's own chart installs them.
var openYurtCRDFiles = []string{
	"charts/yurt-manager/crds/apps.openyurt.io_yurtappsets.yaml",
	"charts/yurt-manager/crds/apps.openyurt.io_nodepools.yaml",
}

// openYurtModule reads the module path and version pinned in
// hack/openyurt.version.
func openYurtModule() (string, error) {
	file := filepath.Join(testenv.RepoRoot(), "hack", "openyurt.version")
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || !strings.HasPrefix(f[1], "v") {
			return "", fmt.Errorf("%s: want \"<module> <version>\", have %q", file, line)
		}
		return f[0] + "@" + f[1], nil
	}
	return "", fmt.Errorf("%s names no module", file)
}

// openYurtCRDs downloads the pinned OpenYurt module (once; later runs find
// it in the module cache) and copies its YurtAppSet and NodePool CRDs into
// a directory under dir, for testenv to install.
func openYurtCRDs(dir string) (string, error) {
	mod, err := openYurtModule()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod)
	// Outside this module, so that the download touches neither go.mod
	// nor go.sum.
	cmd.Dir = dir
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jsonErr := json.Unmarshal(out, &info); jsonErr != nil || info.Error != "" || err != nil {
		return "", fmt.Errorf("go mod download %s: %v %s %v", mod, err, info.Error, jsonErr)
	}
	crdDir := filepath.Join(dir, "openyurt-crds")
	if err := os.MkdirAll(crdDir, 0o755); err != nil {
		return "", err
	}
	for _, f := range openYurtCRDFiles {
		data, err := os.ReadFile(filepath.Join(info.Dir, filepath.FromSlash(f)))
		if err != nil {
			return "", fmt.Errorf("%s of %s: %w", f, mod, err)
		}
		if err := os.WriteFile(filepath.Join(crdDir, filepath.Base(f)), data, 0o644); err != nil {
			return "", err
		}
	}
	return crdDir, nil
}
