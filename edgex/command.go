package edgex

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/edgexfoundry/go-mod-core-contracts/v3/common"
	"github.com/edgexfoundry/go-mod-core-contracts/v3/dtos"
)

// commandRoute is core-command's route for one command of one device.
const commandRoute = "/api/v3/device/name/{name}/{command}"

// Command is the core-command client.
type Command struct {
	svc *service

	mu    sync.Mutex
	cache map[string]dtos.DeviceCoreCommand
	// generation changes on every Forget so that a lookup that was in flight
	// meanwhile does not put a stale answer back into the cache.
	generation uint64
}

// ReadOptions are core-command's query options for a read.
type ReadOptions struct {
	// PushEvent asks the device service to also publish the reading as an
	// event (ds-pushevent=true).
	PushEvent bool
	// ReturnEvent, when set to false, asks for no event in the answer
	// (ds-returnevent=false); nil leaves EdgeX's default, which returns it.
	ReturnEvent *bool
}

// NewCommand returns a core-command client for opts.CommandURL.
func NewCommand(opts Options) (*Command, error) {
	opts = opts.withDefaults()
	svc, err := newService("core-command", opts.CommandURL, opts)
	if err != nil {
		return nil, err
	}
	return &Command{svc: svc, cache: map[string]dtos.DeviceCoreCommand{}}, nil
}

// Ping reports whether core-command answers as EdgeX v3.
func (c *Command) Ping(ctx context.Context) error {
	return ping(ctx, c.svc)
}

// DeviceCommands returns the commands core-command offers for a device. The
// answer is cached until ForgetDevice or ForgetProfile says it is stale.
func (c *Command) DeviceCommands(ctx context.Context, device string) (dtos.DeviceCoreCommand, error) {
	if cached, ok := c.cached(device); ok {
		return cached, nil
	}
	op := fmt.Sprintf("get commands of device %q", device)
	if err := nameParam(op, "device", device); err != nil {
		return dtos.DeviceCoreCommand{}, err
	}
	generation := c.currentGeneration()
	var out dtos.DeviceCoreCommand
	err := c.svc.do(ctx, call{
		op: op, method: http.MethodGet, route: "/api/v3/device/name/{name}",
		params: map[string]string{"name": device}, repeatable: true,
		decode: func(_ int, body []byte) (err error) {
			out, err = decodeOne[dtos.DeviceCoreCommand](body, "deviceCoreCommand")
			return err
		},
	})
	if err != nil {
		return dtos.DeviceCoreCommand{}, err
	}
	c.remember(device, generation, out)
	return cloneCoreCommand(out), nil
}

func (c *Command) cached(device string) (dtos.DeviceCoreCommand, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmds, ok := c.cache[device]
	return cloneCoreCommand(cmds), ok
}

func (c *Command) currentGeneration() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

func (c *Command) remember(device string, generation uint64, cmds dtos.DeviceCoreCommand) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation == c.generation {
		c.cache[device] = cmds
	}
}

// cloneCoreCommand keeps callers from editing the cached copy.
func cloneCoreCommand(in dtos.DeviceCoreCommand) dtos.DeviceCoreCommand {
	out := in
	out.CoreCommands = slices.Clone(in.CoreCommands)
	for i := range out.CoreCommands {
		out.CoreCommands[i].Parameters = slices.Clone(in.CoreCommands[i].Parameters)
	}
	return out
}

// ForgetDevice drops the cached commands of a device that changed or went.
func (c *Command) ForgetDevice(device string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cache, device)
	c.generation++
}

// ForgetProfile drops the cached commands of every device of a profile,
// since a profile's resources and commands are what a device offers.
func (c *Command) ForgetProfile(profile string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for device, cmds := range c.cache {
		if cmds.ProfileName == profile {
			delete(c.cache, device)
		}
	}
	c.generation++
}

// Read runs a get command and returns the event with its readings. With
// ReturnEvent false the event is empty.
func (c *Command) Read(ctx context.Context, device, command string, opts ReadOptions) (dtos.Event, error) {
	op := fmt.Sprintf("read %q of device %q", command, device)
	if err := commandParams(op, device, command); err != nil {
		return dtos.Event{}, err
	}
	query := map[string]string{}
	if opts.PushEvent {
		query[common.PushEvent] = common.ValueTrue
	}
	wantEvent := opts.ReturnEvent == nil || *opts.ReturnEvent
	if opts.ReturnEvent != nil {
		query[common.ReturnEvent] = strconv.FormatBool(wantEvent)
	}
	var event dtos.Event
	err := c.svc.do(ctx, call{
		op: op, method: http.MethodGet, route: commandRoute,
		params: map[string]string{"name": device, "command": command}, query: query,
		repeatable: true,
		decode: func(_ int, body []byte) (err error) {
			if !wantEvent {
				return decodeNoEvent(body)
			}
			event, err = decodeOne[dtos.Event](body, "event")
			return err
		},
	})
	return event, err
}

// decodeNoEvent accepts what core-command answers when asked not to return
// the event: nothing at all, or a bare success envelope.
func decodeNoEvent(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return decodeAck(body)
}

// Write runs a set command with resource values, such as
// {"gpio_out_1": "true"}. Never retried: the device may have acted.
func (c *Command) Write(ctx context.Context, device, command string, values map[string]string) error {
	op := fmt.Sprintf("write %q of device %q", command, device)
	if err := commandParams(op, device, command); err != nil {
		return err
	}
	if len(values) == 0 {
		return &Error{Kind: KindInvalid, Op: op, Message: "no values to write"}
	}
	body, err := json.Marshal(values)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", op, err)
	}
	return c.svc.do(ctx, call{
		op: op, method: http.MethodPut, route: commandRoute,
		params: map[string]string{"name": device, "command": command}, body: body,
		decode: func(_ int, body []byte) error { return decodeAck(body) },
	})
}

// WriteURL runs a set command addressed by a user-set putURL. The URL is
// honoured only when it is this core-command's own command URL; anything
// else is KindInvalid and nothing is sent, because the request carries the
// bearer token.
func (c *Command) WriteURL(ctx context.Context, putURL string, values map[string]string) error {
	device, command, err := c.parseCommandURL(putURL)
	if err != nil {
		return err
	}
	return c.Write(ctx, device, command, values)
}

// URL is the core-command URL of a device command, as getURL and putURL in
// status show it.
func (c *Command) URL(device, command string) string {
	return c.svc.base.String() + "/api/v3/device/name/" + url.PathEscape(device) + "/" + url.PathEscape(command)
}

// parseCommandURL returns the device and command of one of this
// core-command's command URLs.
func (c *Command) parseCommandURL(raw string) (device, command string, err error) {
	op := fmt.Sprintf("write to %q", raw)
	invalid := func(why string) error {
		return &Error{Kind: KindInvalid, Op: op, Message: why}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", invalid("not a URL")
	}
	if !sameOrigin(u, c.svc.base) || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", "", invalid(fmt.Sprintf("only core-command at %s is allowed, without credentials, query or fragment", c.svc.base))
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), c.svc.base.EscapedPath()+"/api/v3/device/name/")
	segments := strings.Split(rest, "/")
	if !ok || len(segments) != 2 {
		return "", "", invalid("path must be /api/v3/device/name/{device}/{command}")
	}
	if device, err = url.PathUnescape(segments[0]); err != nil {
		return "", "", invalid("device name is not properly escaped")
	}
	if command, err = url.PathUnescape(segments[1]); err != nil {
		return "", "", invalid("command name is not properly escaped")
	}
	if err := commandParams(op, device, command); err != nil {
		return "", "", err
	}
	return device, command, nil
}

// sameOrigin compares scheme, host and port the way a browser would, so
// that http://h and http://h:80 are the same service.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

func commandParams(op, device, command string) error {
	if err := nameParam(op, "device", device); err != nil {
		return err
	}
	return nameParam(op, "command", command)
}
