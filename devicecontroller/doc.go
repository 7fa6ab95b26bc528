// Package devicecontroller is the per-node-pool bridge: it keeps one pool's
// Device, DeviceService and DeviceProfile objects and that pool's EdgeX
// core-metadata in agreement in both directions, turns desired device
// property values into EdgeX commands, and turns EdgeX telemetry into
// device status.
//
// It knows Kubernetes (controller-runtime) and talks to EdgeX only through
// the small interfaces in edgex.go, which the edgex packages implement. How
// it works:
//
//   - An edge view per kind remembers what EdgeX holds. It is filled by a
//     slow, paged full list (the resync) and kept current by core-metadata's
//     system events, so steady state costs no REST call per object.
//   - One generic reconciler serves the three kinds (cloud to edge, and
//     status from edge to cloud). It is written against the kind interface
//     (kind.go), which device.go, deviceservice.go and deviceprofile.go
//     implement: what differs between the kinds, and what happens to each,
//     is in its own file.
//   - An edge queue per kind turns edge changes into imports, reconciles
//     and, with positive evidence only, deletions.
//   - Commands and telemetry run beside the reconciler for devices.
//
// Every queue is a controller-runtime controller, which runs it only while
// this replica leads its pool, retries with backoff, recovers from panics
// and reports controller_runtime_* and workqueue_* metrics for it.
package devicecontroller
