// Package simulator is an in-process stand-in for an EdgeX Foundry 3.1 stack:
// core-metadata and core-command over REST, a virtual device service with
// GPIO, sensor and camera devices, and the MQTT message bus traffic the
// bridge depends on (system events, device events, core-command's external
// command API). The bridge's tests, `make demo` and `make bench` run against
// it because a real EdgeX cannot be installed where they run.
//
// Everything the bridge can observe follows EdgeX 3.1.1 as captured from a
// real stack (edgex/testdata/edgex-v3) and, where the captures are silent, as
// edgex-go and device-sdk-go v3.1.1 behave: status codes, the 207
// multi-status envelope, error messages, paging and its ordering, value
// formats, topics and envelopes. Validation is go-mod-core-contracts' own.
//
// Faults (latency, failing or garbled answers, a device service that is down,
// a lost message bus, a wiped database) are injected through Faults, so that
// tests can show the bridge survives what a real edge does to it.
//
// The package must not know the bridge: no Kubernetes, no imports of the
// edgex client package (whose own tests may use this one). It speaks only
// EdgeX's wire protocols and go-mod-core-contracts' types.
package simulator
