package messagebus

import "context"

// CommandClient sends device commands through core-command's external
// MQTT API (the bridge's --command-transport=mqtt).
type CommandClient struct {
	Client *Client
	// RESTURL renders a command's core-command URL, which the bridge shows
	// in status as getURL and putURL for compatibility, whatever the
	// transport.
	RESTURL func(device, command string) string
}

// Write sets resource values on a device.
func (c CommandClient) Write(ctx context.Context, device, command string, values map[string]string) error {
	_, err := c.Client.Command(ctx, device, command, MethodSet, values, nil)
	return err
}

// Ping reports whether core-command answers on the bus; the bridge asks
// while commands find it unreachable, to send them as soon as it is back.
func (c CommandClient) Ping(ctx context.Context) error { return c.Client.PingCoreCommand(ctx) }

// URL is the command's core-command URL, or "" when none is known.
func (c CommandClient) URL(device, command string) string {
	if c.RESTURL == nil {
		return ""
	}
	return c.RESTURL(device, command)
}
