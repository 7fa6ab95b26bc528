//go:build tools

// Package tools only records, for `go mod tidy`, that this module pins
// Helm's command; nothing imports it.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
