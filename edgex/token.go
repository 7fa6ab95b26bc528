package edgex

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// tokenFile serves the secure-mode bearer token from a file that is rotated
// underneath us (a mounted secret). A stat per call is cheap; reading and
// re-parsing the file is done only when the stat says it changed.
type tokenFile struct {
	path string

	mu    sync.Mutex
	read  os.FileInfo // the file as it was when token was read
	token string
}

func newTokenFile(path string) *tokenFile {
	if path == "" {
		return nil
	}
	return &tokenFile{path: path}
}

// current returns the token, or "" when no token file is configured.
func (f *tokenFile) current() (string, error) {
	if f == nil {
		return "", nil
	}
	now, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.read != nil && sameVersion(f.read, now) {
		return f.token, nil
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	f.read, f.token = now, strings.TrimSpace(string(data))
	return f.token, nil
}

// sameVersion also compares file identity because Kubernetes rotates a
// mounted secret by swapping a symlink to a new file, whose mtime may be
// older than the last one we saw.
func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}
