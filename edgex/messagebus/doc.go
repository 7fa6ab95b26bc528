// Package messagebus speaks EdgeX 3.1's MQTT message bus: the message
// envelope, device events (JSON, or CBOR when they carry binary readings),
// core-metadata system events, and core-command's external request/response
// command API. The codecs here are shared by the bridge's client and by the
// simulator; they bound what they accept, because every byte on the bus
// comes from outside the bridge. The package knows nothing of Kubernetes.
package messagebus
