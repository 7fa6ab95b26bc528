package deploy

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgebridge/edgebridge/hack/testenv"
)

// openYurtCRDFiles are the CRDs of OpenYurt's that deploy/ relies on, as
// OpenYurt's own chart installs them.
var openYurtCRDFiles = []string{
	"charts/yurt-manager/crds/apps.openyurt.io_yurtappsets.yaml",
	"charts/yurt-manager/crds/apps.openyurt.io_nodepools.yaml",
}

// openYurtCRDs copies the YurtAppSet and NodePool CRDs of the OpenYurt
// release pinned in hack/openyurt.version (downloaded through the module
// proxy, see testenv.OpenYurtDir) into a directory under dir, for testenv
// to install.
func openYurtCRDs(dir string) (string, error) {
	src, err := testenv.OpenYurtDir()
	if err != nil {
		return "", err
	}
	mod, _ := testenv.OpenYurtModule()
	crdDir := filepath.Join(dir, "openyurt-crds")
	if err := os.MkdirAll(crdDir, 0o755); err != nil {
		return "", err
	}
	for _, f := range openYurtCRDFiles {
		data, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(f)))
		if err != nil {
			return "", fmt.Errorf("%s of %s: %w", f, mod, err)
		}
		if err := os.WriteFile(filepath.Join(crdDir, filepath.Base(f)), data, 0o644); err != nil {
			return "", err
		}
	}
	return crdDir, nil
}
