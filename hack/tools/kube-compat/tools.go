//go:build tools

// Package kubecompat only records, for `go mod tidy`, which command this
// module builds; nothing imports it.
package kubecompat

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
