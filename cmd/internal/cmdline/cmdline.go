// Package cmdline holds the small flag helpers the project's commands
// share, so that they read lists and environment defaults alike.
package cmdline

import (
	"os"
	"strings"
)

// SplitList splits a comma-separated flag value, dropping blanks, so that
// "a, b,," and "a,b" mean the same.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// EnvOr is the environment variable key, or fallback when it is unset or
// empty: the downward API fills such variables in a pod.
func EnvOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
