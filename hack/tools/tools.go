//go:build tools

// Package tools only records, for `go mod tidy`, which commands this module
// pins; nothing imports it.
package tools

import (
	_ "honnef.co/go/tools/cmd/staticcheck"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
