//go:build tools

// Package kube only records, for `go mod tidy`, which commands this module
// builds; nothing imports it.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
