package messagebus

import (
	"bufio"
	"net"
	"net/url"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// readBufferSize holds dozens of events' packets, so that a busy bus costs
// one read system call for many messages.
const readBufferSize = 64 << 10

// openBuffered opens a plain TCP connection to the broker, as paho does
// (through any proxy the environment names), with a read buffer in front of
// it. paho reads every packet in three or four small reads (one byte of
// header, the length byte by byte, then the rest), each a system call on a
// bare socket: at thousands of events a second those calls cost more than
// decoding the events. TLS already reads whole records and WebSockets whole
// frames, so only tcp:// and mqtt:// brokers need it.
func openBuffered(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	conn, err := proxy.FromEnvironmentUsing(o.Dialer).Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, readBufferSize)}, nil
}

// bufferedConn reads through its buffer and writes straight to the
// connection; paho reads from one goroutine only.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// bufferedScheme reports whether openBuffered serves a broker URL's scheme.
func bufferedScheme(scheme string) bool { return scheme == "tcp" || scheme == "mqtt" }
