package edgex

import (
	"fmt"
	"net/url"
	"strings"
)

// commandPathPrefix starts the path of every core-command device command
// URL; the device and command names follow as two escaped segments.
const commandPathPrefix = "/api/v3/device/name/"

// CheckCommandURL checks a user-set putURL before anything is sent to it:
// it must be a core-command command URL of exactly device and command, with
// no credentials, query or fragment. own is the URL the bridge itself would
// use for that command (Command.URL); when it is not empty, raw must also
// point at the same core-command (scheme, host, port and base path). With
// own empty only the shape and the names are checked, which is all that
// admission, knowing no pool's core-command, can check.
//
// The names matter because the request carries the bridge's credentials:
// a putURL naming another device would let whoever may edit one Device
// command any device of the pool. Errors are *Error of KindInvalid whose
// Message says what differs.
func CheckCommandURL(raw, device, command, own string) error {
	op := fmt.Sprintf("check putURL %q", raw)
	invalid := func(format string, args ...any) error {
		return &Error{Kind: KindInvalid, Op: op, Message: fmt.Sprintf(format, args...)}
	}
	u, base, gotDevice, gotCommand, err := splitCommandURL(raw)
	if err != nil {
		return invalid("%s", err)
	}
	if gotDevice != device {
		return invalid("it names device %q, not this device's EdgeX name %q", gotDevice, device)
	}
	if gotCommand != command {
		return invalid("it names command %q, not the property's resource %q", gotCommand, command)
	}
	if own == "" {
		return nil
	}
	ownURL, ownBase, _, _, err := splitCommandURL(own)
	if err != nil {
		return invalid("the bridge's own command URL %q: %s", own, err)
	}
	if !sameOrigin(u, ownURL) || base != ownBase {
		return invalid("it points at %s, not this node pool's core-command at %s", origin(u, base), origin(ownURL, ownBase))
	}
	return nil
}

// splitCommandURL takes a command URL apart: the parsed URL, the escaped
// base path before /api/v3/device/name/, and the unescaped device and
// command names.
func splitCommandURL(raw string) (u *url.URL, base, device, command string, err error) {
	u, err = url.Parse(raw)
	switch {
	case err != nil:
		return nil, "", "", "", fmt.Errorf("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, "", "", "", fmt.Errorf("scheme must be http or https")
	case u.Host == "" || u.Opaque != "":
		return nil, "", "", "", fmt.Errorf("it has no host")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, "", "", "", fmt.Errorf("credentials, a query or a fragment are not allowed")
	}
	path := u.EscapedPath()
	i := strings.LastIndex(path, commandPathPrefix)
	if i < 0 {
		return nil, "", "", "", fmt.Errorf("path must end in %s{device}/{command}", commandPathPrefix)
	}
	segments := strings.Split(path[i+len(commandPathPrefix):], "/")
	if len(segments) != 2 {
		return nil, "", "", "", fmt.Errorf("path must end in %s{device}/{command}", commandPathPrefix)
	}
	if device, err = url.PathUnescape(segments[0]); err != nil {
		return nil, "", "", "", fmt.Errorf("device name is not properly escaped")
	}
	if command, err = url.PathUnescape(segments[1]); err != nil {
		return nil, "", "", "", fmt.Errorf("command name is not properly escaped")
	}
	if err := commandParams("", device, command); err != nil {
		return nil, "", "", "", fmt.Errorf("path must end in %s{device}/{command} with usable names", commandPathPrefix)
	}
	return u, path[:i], device, command, nil
}

func origin(u *url.URL, base string) string {
	return u.Scheme + "://" + u.Host + base
}
