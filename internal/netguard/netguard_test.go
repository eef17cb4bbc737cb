package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestIsPublic(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		// IPv4
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"93.184.215.14", true},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"10.0.0.1", false},
		{"10.255.255.255", false},
		{"100.63.255.255", true},
		{"100.64.0.1", false}, // carrier-grade NAT
		{"100.127.255.255", false},
		{"100.128.0.0", true},
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"169.254.169.254", false}, // cloud metadata
		{"172.15.255.255", true},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"172.32.0.0", true},
		{"192.0.0.8", false},
		{"192.0.2.1", false},
		{"192.88.99.1", false},
		{"192.168.1.1", false},
		{"198.17.255.255", true},
		{"198.18.0.1", false}, // benchmarking
		{"198.19.255.255", false},
		{"198.20.0.0", true},
		{"198.51.100.7", false},
		{"203.0.113.9", false},
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},

		// IPv6 basics
		{"2606:4700:4700::1111", true},
		{"2a00:1450:4001:80b::200e", true},
		{"::", false},
		{"::1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fec0::1", false}, // site-local (deprecated)
		{"fc00::1", false}, // unique-local
		{"fd12:3456::1", false},
		{"ff02::1", false},
		{"ff0e::1", false},
		{"100::1", false}, // discard-only
		{"2001:db8::1", false},
		{"3fff::1", false},
		{"2001:2::1", false},
		{"2001:10::1", false},
		{"2001:20::1", false},
		{"5f00::1", false},
		{"4000::1", false}, // outside global unicast

		// IPv4 inside IPv6
		{"::ffff:127.0.0.1", false}, // IPv4-mapped
		{"::ffff:10.0.0.1", false},
		{"::ffff:8.8.8.8", true},
		{"::127.0.0.1", false}, // IPv4-compatible (deprecated)
		{"::8.8.8.8", false},
		{"::ffff:0:127.0.0.1", false}, // IPv4-translated
		{"64:ff9b::7f00:1", false},    // NAT64 of 127.0.0.1
		{"64:ff9b::a00:1", false},     // NAT64 of 10.0.0.1
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 of 169.254.169.254
		{"64:ff9b::c0a8:101", false},  // NAT64 of 192.168.1.1
		{"64:ff9b::6440:1", false},    // NAT64 of 100.64.0.1
		{"64:ff9b::808:808", true},    // NAT64 of 8.8.8.8: IPv6-only hosts reach the web this way
		{"64:ff9b:1::a00:1", false},   // local-use NAT64
		{"64:ff9b:1::808:808", false}, // local-use NAT64: layout unknown, refused
		{"2002:7f00:1::", false},      // 6to4 of 127.0.0.1
		{"2002:a00:1::1", false},      // 6to4 of 10.0.0.1
		{"2002:c0a8:101::1", false},   // 6to4 of 192.168.1.1
		{"2002:a9fe:a9fe::", false},   // 6to4 of 169.254.169.254
		{"2002:808:808::1", true},     // 6to4 of 8.8.8.8
		// Teredo: server 65.54.227.120, client 8.8.8.8 (stored inverted: f7f7:f7f7).
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", true},
		// Teredo: server 65.54.227.120, client 192.168.1.1 (3f57:fefe).
		{"2001:0:4136:e378:8000:63bf:3f57:fefe", false},
		// Teredo: server 10.0.0.1, client 8.8.8.8.
		{"2001:0:a00:1:8000:63bf:f7f7:f7f7", false},
		// Teredo: server 65.54.227.120, client 127.0.0.1 (80ff:fffe).
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", false},
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := IsPublic(a); got != tc.public {
			t.Errorf("IsPublic(%s) = %v, want %v", tc.addr, got, tc.public)
		}
		if got := Public().Allows(a); got != tc.public {
			t.Errorf("Public().Allows(%s) = %v, want %v", tc.addr, got, tc.public)
		}
		if !Unrestricted().Allows(a) {
			t.Errorf("Unrestricted().Allows(%s) = false", tc.addr)
		}
	}
	if IsPublic(netip.Addr{}) {
		t.Error("the zero address is public")
	}
}

func TestAllowList(t *testing.T) {
	nets, err := ParsePrefixes([]string{"10.1.0.0/16", " 192.168.1.5 ", "fd00:1::/32", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	p := WithAllowed(nets)
	for _, tc := range []struct {
		addr  string
		allow bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true}, // as a dual-stack socket reports it
		{"10.2.0.1", false},
		{"192.168.1.5", true},
		{"192.168.1.6", false},
		{"fd00:1::5", true},
		{"fd00:2::5", false},
		{"127.0.0.1", true},
		{"127.0.0.2", false},
		{"::1", false},
		// Allowing 127.0.0.1 does not allow reaching it through NAT64 or
		// 6to4: the allow-list names the addresses dialled.
		{"64:ff9b::7f00:1", false},
		{"2002:7f00:1::", false},
		{"8.8.8.8", true},
	} {
		if got := p.Allows(netip.MustParseAddr(tc.addr)); got != tc.allow {
			t.Errorf("Allows(%s) = %v, want %v", tc.addr, got, tc.allow)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.org", "", "fe80::1%eth0", "10.0.0.0/8/8"} {
		if _, err := ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", bad)
		}
	}
}

func TestAllowsHost(t *testing.T) {
	p := Public()
	for host, want := range map[string]bool{
		"example.org": true, "8.8.8.8": true, "[2606:4700:4700::1111]": true,
		"127.0.0.1": false, "[::1]": false, "localhost": false, "LocalHost.": false, "api.localhost": false,
		"[64:ff9b::a00:1]": false, "[2002:a00:1::1]": false, "[::ffff:10.0.0.1]": false, "0.0.0.0": false,
	} {
		if got := p.AllowsHost(host); got != want {
			t.Errorf("AllowsHost(%q) = %v, want %v", host, got, want)
		}
	}
	if !Unrestricted().AllowsHost("localhost") {
		t.Error("Unrestricted refuses localhost")
	}
	lo, _ := ParsePrefixes([]string{"127.0.0.0/8", "::1"})
	if !WithAllowed(lo).AllowsHost("localhost") {
		t.Error("loopback allowed, localhost refused")
	}
}

// TestDialerRefusesAtConnectTime dials a real listener on loopback: the
// policy refuses before connecting, the allow-list lets it through.
func TestDialerRefusesAtConnectTime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	ctx := context.Background()
	_, err = Public().Dialer(time.Second).DialContext(ctx, "tcp", ln.Addr().String())
	var be *BlockedError
	if !errors.Is(err, ErrBlocked) || !errors.As(err, &be) || be.Addr.String() != "127.0.0.1" {
		t.Fatalf("dial loopback with the public policy: %v", err)
	}
	// A name resolving to loopback is judged on the resolved address.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if _, err := Public().Dialer(time.Second).DialContext(ctx, "tcp", net.JoinHostPort("localhost", port)); !errors.Is(err, ErrBlocked) {
		t.Fatalf("dial localhost with the public policy: %v", err)
	}
	select {
	case <-accepted:
		t.Fatal("a refused dial reached the listener")
	case <-time.After(50 * time.Millisecond):
	}
	lo, _ := ParsePrefixes([]string{"127.0.0.1"})
	for _, p := range []*Policy{WithAllowed(lo), Unrestricted()} {
		c, err := p.Dialer(time.Second).DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("dial with loopback allowed: %v", err)
		}
		c.Close()
		<-accepted
	}
}
