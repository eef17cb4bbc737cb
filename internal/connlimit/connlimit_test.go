package connlimit

import (
	"net"
	"testing"
)

// TestAddressKeys: IPv6 clients count by /64 (one subscriber's network),
// IPv4-mapped addresses as IPv4, and loopback only with LimitLoopback.
func TestAddressKeys(t *testing.T) {
	l := New(nil, Limits{PerAddress: 1})
	key := func(ip string) (string, bool) {
		k, ok := l.key(&net.TCPAddr{IP: net.ParseIP(ip), Port: 1234})
		return k.String(), ok
	}
	a, _ := key("2001:db8:1:2::1")
	b, _ := key("2001:db8:1:2:ffff:ffff:ffff:ffff")
	c, _ := key("2001:db8:1:3::1")
	if a != b || a == c {
		t.Errorf("IPv6 keys: %s %s %s, want the first two equal and the third different", a, b, c)
	}
	if k, ok := key("::ffff:192.0.2.7"); !ok || k != "192.0.2.7" {
		t.Errorf("IPv4-mapped key: %s %v", k, ok)
	}
	if _, ok := key("127.0.0.1"); ok {
		t.Error("loopback limited without LimitLoopback")
	}
	l.limits.LimitLoopback = true
	if _, ok := key("::1"); !ok {
		t.Error("loopback not limited with LimitLoopback")
	}
}
