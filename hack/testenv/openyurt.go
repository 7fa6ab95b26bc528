package testenv

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
	"sync"
	"time"
)

// OpenYurtModule is the OpenYurt release pinned in hack/openyurt.version,
// as "<module>@<version>".
func OpenYurtModule() (string, error) {
	file := filepath.Join(RepoRoot(), "hack", "openyurt.version")
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

var openYurt struct {
	once sync.Once
	dir  string
	err  error
}

// OpenYurtDir downloads the pinned OpenYurt module through the Go module
// proxy (once; later runs find it in the module cache) and returns the
// directory that holds its source, for tests that check this project
// against OpenYurt's own schemas. Nothing of it is copied into the
// repository.
func OpenYurtDir() (string, error) {
	openYurt.once.Do(func() {
		mod, err := OpenYurtModule()
		if err != nil {
			openYurt.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod)
		// Outside any module, so that the download touches no go.mod or
		// go.sum.
		cmd.Dir = os.TempDir()
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.Output()
		var info struct{ Dir, Error string }
		if jsonErr := json.Unmarshal(out, &info); jsonErr != nil || info.Error != "" || err != nil {
			openYurt.err = fmt.Errorf("go mod download %s: %v %s %v", mod, err, info.Error, jsonErr)
			return
		}
		openYurt.dir = info.Dir
	})
	return openYurt.dir, openYurt.err
}
