// Package admission is the validating webhook that refuses, at admission,
// a Device desired value its profile forbids: a resource the profile lacks,
// a read-only resource, or a value of the wrong type, too big for its type
// or outside the resource's minimum and maximum. The CRD schema cannot see
// the profile, so without this check such a value would be accepted and
// only fail later at the edge.
//
// The webhook runs centrally beside the API server, not in the node pools,
// so it keeps answering while a pool is offline. It is a convenience, not a
// guarantee: when it cannot check (profile not found yet, lookup failed,
// webhook down) it lets the edit through, and the bridge checks the value
// again before sending it and reports the outcome in status.
//
// It knows the iot.openyurt.io/v1alpha1 kinds and EdgeX's value rules
// (edgex/convert); it must not know EdgeX clients or the bridge's
// controllers, and it reads nothing but DeviceProfiles.
package admission
