package testenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Link is a TCP proxy that stands for a network link to one address, such
// as a pool's WAN link to the cloud. Cut fails it the way a dropped WAN link
// does: established connections die, and new ones are accepted but never
// carried anywhere, so that clients see no answer and no refusal and must
// time out. Restore mends it.
type Link struct {
	target string
	l      net.Listener

	mu   sync.Mutex
	cut  bool
	live map[net.Conn]struct{} // carried connections, both ends
	held map[net.Conn]struct{} // accepted while cut, never answered
	wg   sync.WaitGroup
}

// NewLink starts a link to target on a loopback port of its own.
func NewLink(target string) (*Link, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for link to %s: %w", target, err)
	}
	k := &Link{target: target, l: l, live: map[net.Conn]struct{}{}, held: map[net.Conn]struct{}{}}
	k.wg.Add(1)
	go k.accept()
	return k, nil
}

// Addr is where clients connect instead of target.
func (k *Link) Addr() string { return k.l.Addr().String() }

// Cut drops every established connection and black-holes new ones.
func (k *Link) Cut() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cut = true
	for c := range k.live {
		_ = c.Close()
	}
}

// Restore carries new connections again. Connections accepted while cut
// are closed: on a real link they would have timed out by now.
func (k *Link) Restore() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cut = false
	for c := range k.held {
		_ = c.Close()
		delete(k.held, c)
	}
}

// Close stops the link and closes every connection.
func (k *Link) Close() error {
	err := k.l.Close()
	k.mu.Lock()
	for c := range k.live {
		_ = c.Close()
	}
	for c := range k.held {
		_ = c.Close()
	}
	k.mu.Unlock()
	k.wg.Wait()
	return err
}

func (k *Link) accept() {
	defer k.wg.Done()
	for {
		c, err := k.l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fmt.Println("link accept:", err)
			}
			return
		}
		k.mu.Lock()
		if k.cut {
			k.held[c] = struct{}{}
			k.mu.Unlock()
			continue
		}
		k.mu.Unlock()
		k.wg.Add(1)
		go k.carry(c)
	}
}

// carry connects c to the target and copies both ways until either end
// closes or the link is cut.
func (k *Link) carry(c net.Conn) {
	defer k.wg.Done()
	up, err := net.Dial("tcp", k.target)
	if err != nil {
		_ = c.Close()
		return
	}
	k.mu.Lock()
	if k.cut {
		k.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	k.live[c], k.live[up] = struct{}{}, struct{}{}
	k.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
	k.mu.Lock()
	delete(k.live, c)
	delete(k.live, up)
	k.mu.Unlock()
}
