package messagebus

import "strings"

// DefaultTopicPrefix is EdgeX's default base topic.
const DefaultTopicPrefix = "edgex"

// Topics builds the topic names EdgeX 3.1 uses under a base prefix.
type Topics struct {
	// Prefix is the base topic, "edgex" unless the deployment changed it.
	Prefix string
}

func (t Topics) prefix() string {
	if t.Prefix == "" {
		return DefaultTopicPrefix
	}
	return strings.TrimSuffix(t.Prefix, "/")
}

func (t Topics) join(levels ...string) string {
	return t.prefix() + "/" + strings.Join(levels, "/")
}

// Event is where a device service publishes one device's readings.
func (t Topics) Event(service, profile, device, source string) string {
	return t.join("events", "device", service, profile, device, source)
}

// AllEvents matches every device event.
func (t Topics) AllEvents() string { return t.join("events", "device", "#") }

// SystemEvent is where core-metadata announces a change: kind is device,
// deviceprofile or deviceservice; action is add, update or delete; owner
// is the device service for devices and services and core-metadata for
// profiles; profile is set for devices only.
func (t Topics) SystemEvent(kind, action, owner, profile string) string {
	levels := []string{"system-events", "core-metadata", kind, action, owner}
	if profile != "" {
		levels = append(levels, profile)
	}
	return t.join(levels...)
}

// AllSystemEvents matches every core-metadata system event.
func (t Topics) AllSystemEvents() string { return t.join("system-events", "core-metadata", "#") }

// Command methods in command topics.
const (
	MethodGet = "get"
	MethodSet = "set"
)

// CommandRequest is where a client asks core-command (external MQTT) to run
// a command on a device.
func (t Topics) CommandRequest(device, command, method string) string {
	return t.join("command", "request", device, command, method)
}

// AllCommandRequests matches every external command request.
func (t Topics) AllCommandRequests() string { return t.join("command", "request", "#") }

// CommandResponse is where core-command answers a command request.
func (t Topics) CommandResponse(device, command, method string) string {
	return t.join("command", "response", device, command, method)
}

// AllCommandResponses matches every external command response.
func (t Topics) AllCommandResponses() string { return t.join("command", "response", "#") }

// CommandQueryRequest asks core-command for a device's (or "all") commands.
func (t Topics) CommandQueryRequest(device string) string {
	return t.join("commandquery", "request", device)
}

// CommandQueryResponse is the single topic all command-query answers use.
func (t Topics) CommandQueryResponse() string { return t.join("commandquery", "response") }

// ParseCommandRequest splits a command request topic into its parts.
func (t Topics) ParseCommandRequest(topic string) (device, command, method string, ok bool) {
	rest, found := strings.CutPrefix(topic, t.join("command", "request")+"/")
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || (parts[2] != MethodGet && parts[2] != MethodSet) {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}
