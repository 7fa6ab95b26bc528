package demo

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// child is a program the demo runs (the bridge, the webhook) with its
// output in a log file.
type child struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{}
	waitErr error
}

// startChild starts bin in a process group of its own: Ctrl-C then reaches
// the demo alone, which stops its children in order (the bridge before the
// API server it talks to), and stopping the group takes anything the child
// started with it.
func startChild(name, bin, logPath string, args ...string) (*child, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{name: name, logPath: logPath, cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// stop asks the child's process group to terminate, and kills it if it has
// not exited within grace. It reports a child that had already died, or
// that exited with an error.
func (c *child) stop(grace time.Duration) error {
	defer c.log.Close()
	select {
	case <-c.exited:
		return fmt.Errorf("%s had exited before the demo stopped (%v); see %s", c.name, c.waitErr, c.logPath)
	default:
	}
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.exited
		return fmt.Errorf("%s did not stop within %s and was killed; see %s", c.name, grace, c.logPath)
	}
	if c.waitErr != nil {
		return fmt.Errorf("%s exited with %v; see %s", c.name, c.waitErr, c.logPath)
	}
	return nil
}

func (c *child) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// lostAPort reports whether the child, having exited, said a port it was
// to listen on was in use.
func (c *child) lostAPort() bool {
	return c.hasExited() && strings.Contains(c.logTail(), "address already in use")
}

// waitReady polls url until it answers 200, the child exits, or ctx ends.
func (c *child) waitReady(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		err := get(ctx, hc, url)
		if err == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited (%v) before it was ready:\n%s", c.name, c.waitErr, c.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (%v): %w; see %s", c.name, err, ctx.Err(), c.logPath)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func get(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answers %s", url, resp.Status)
	}
	return nil
}

// logTail is the end of the child's log, to show why it died.
func (c *child) logTail() string {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return err.Error()
	}
	const keep = 2000
	if len(data) > keep {
		data = data[len(data)-keep:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return string(data)
}

// freeAddrs are n distinct loopback addresses with ports nothing listens
// on now. The listeners stay open until all are chosen, so that no two are
// the same.
func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out, nil
}
