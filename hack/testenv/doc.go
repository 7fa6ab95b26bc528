// Package testenv starts the real parts the tests run against, once per test
// package: a kube-apiserver built from the pinned k8s.io/kubernetes module and
// Debian's etcd (through controller-runtime's envtest), with the bridge's CRDs
// installed. Each test gets its own namespace and waits on conditions with
// deadlines, never on sleeps. Package broker starts mosquitto the same way.
package testenv
