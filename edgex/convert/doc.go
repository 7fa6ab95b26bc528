// Package convert maps the iot.openyurt.io/v1alpha1 kinds onto EdgeX v3 DTOs
// (go-mod-core-contracts) and back, names imported objects for Kubernetes,
// and gives device resource values their EdgeX meaning (equality, validity,
// canonical text).
//
// The mapping is lossless for everything both sides can express: an EdgeX
// object taken into a spec and sent back is the object EdgeX had, and a spec
// sent to EdgeX and read back is the spec, so mirrored objects never flap and
// managed objects never churn. Where the two sides differ in shape (EdgeX's
// free-form JSON values against the CRD's strings, *float64 against decimal
// text, the v1 resource tag EdgeX v3 lacks) the functions here say how the
// difference is carried.
//
// Everything here is a pure function of its arguments. The package must not
// know Kubernetes clients, controllers or EdgeX transports; it only knows the
// two type systems.
package convert
