// Package connlimit caps the connections a listener holds open, in total
// and per client address, so that neither one client nor a crowd can make
// the server hold more connections (and their buffers and goroutines) than
// it was configured for.
package connlimit

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Limits configures a Listener. Zero means no limit.
type Limits struct {
	Total      int
	PerAddress int
	// LimitLoopback applies PerAddress to loopback addresses too; without
	// it they count only toward Total (a reverse proxy on the same machine
	// brings every client from loopback).
	LimitLoopback bool
}

// Listener accepts connections within its limits. A connection over a
// limit is closed as soon as it is accepted: the client sees the
// connection end at once, rather than waiting in the kernel's backlog for
// a slot that an attacker holding every slot never frees.
type Listener struct {
	net.Listener
	limits Limits

	mu     sync.Mutex
	total  int
	byAddr map[netip.Addr]int

	rejected atomic.Int64
}

// New wraps ln.
func New(ln net.Listener, limits Limits) *Listener {
	return &Listener{Listener: ln, limits: limits, byAddr: map[netip.Addr]int{}}
}

// Rejected is how many connections were closed for being over a limit.
func (l *Listener) Rejected() int64 { return l.rejected.Load() }

// Open is how many connections are open.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Accept returns the next connection within the limits.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, perAddr := l.key(c.RemoteAddr())
		if !l.take(key, perAddr) {
			l.rejected.Add(1)
			c.Close()
			continue
		}
		return &conn{Conn: c, release: func() { l.release(key, perAddr) }}, nil
	}
}

// key is what PerAddress counts: the address, or for IPv6 its /64, the
// network one subscriber usually gets (counting single IPv6 addresses
// would let one client open connections from as many addresses as it
// likes). perAddr is false when PerAddress does not apply.
func (l *Listener) key(a net.Addr) (netip.Addr, bool) {
	if l.limits.PerAddress <= 0 {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false // not TCP/IP (a Unix socket): nothing to tell clients apart by
	}
	ip := ap.Addr().Unmap()
	if ip.IsLoopback() && !l.limits.LimitLoopback {
		return netip.Addr{}, false
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip, true
}

func (l *Listener) take(key netip.Addr, perAddr bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits.Total > 0 && l.total >= l.limits.Total {
		return false
	}
	if perAddr && l.byAddr[key] >= l.limits.PerAddress {
		return false
	}
	l.total++
	if perAddr {
		l.byAddr[key]++
	}
	return true
}

func (l *Listener) release(key netip.Addr, perAddr bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if perAddr {
		if l.byAddr[key]--; l.byAddr[key] <= 0 {
			delete(l.byAddr, key)
		}
	}
}

// conn gives its slot back once, on the first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite passes through to TCP connections: net/http half-closes a
// connection before closing it after some errors, so that the client
// reads the error response instead of a reset.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
