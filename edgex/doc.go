// Package edgex is the bridge's southbound side: REST clients for EdgeX 3.1
// core-metadata and core-command, and typed errors callers switch on.
// Sub-packages hold the message-bus client (messagebus), conversion between
// the iot.openyurt.io/v1alpha1 types and EdgeX DTOs (convert), and an
// in-process EdgeX v3 simulator (simulator).
//
// Nothing here knows Kubernetes controllers or clients; the devicecontroller
// package uses this one through small interfaces.
package edgex
