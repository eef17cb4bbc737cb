// Package netguard decides which addresses the server's outbound requests
// may reach. URLs chosen by users (URL previews, push gateways) and, later,
// by other servers (federation) must not make the server a proxy into its
// own network, so their connections are checked against a Policy.
//
// The check runs in the dialer's Control hook, on the address actually being
// connected to after name resolution: a hostname that resolves to an
// internal address, a DNS answer that changes between two lookups
// ("rebinding") and a redirect to an internal address are all caught, because
// every connection attempt is judged on its own.
package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrBlocked is what a refused connection's error wraps.
var ErrBlocked = errors.New("address is not public")

// BlockedError names the refused address.
type BlockedError struct{ Addr netip.Addr }

func (e *BlockedError) Error() string {
	return fmt.Sprintf("outbound connection to %s refused: not a public address", e.Addr)
}

// Unwrap makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Unwrap() error { return ErrBlocked }

// Policy is the set of addresses outbound connections may reach: public
// addresses, plus the networks an operator allowed. The zero value allows
// public addresses only. A Policy is immutable once built.
type Policy struct {
	unrestricted bool
	allowed      []netip.Prefix
}

// Public allows public addresses only.
func Public() *Policy { return &Policy{} }

// Unrestricted allows every address: for destinations an operator chose
// (application services, a push gateway on the same machine), never for
// URLs a user or a remote server supplies.
func Unrestricted() *Policy { return &Policy{unrestricted: true} }

// WithAllowed allows, besides public addresses, the given networks (for an
// operator whose gateway or previewed intranet is on a private address).
func WithAllowed(allowed []netip.Prefix) *Policy {
	p := &Policy{}
	for _, n := range allowed {
		p.allowed = append(p.allowed, n.Masked())
	}
	return p
}

// ParsePrefixes reads an allow-list of CIDR networks ("10.1.0.0/16") and
// single addresses ("192.168.1.5", "fd00::1").
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a network such as 10.0.0.0/8 or fd00::/8", s)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address or a network such as 10.0.0.0/8", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Allows reports whether a connection to a may be made.
func (p *Policy) Allows(a netip.Addr) bool {
	if p == nil {
		return IsPublic(a)
	}
	if p.unrestricted {
		return true
	}
	a = a.WithZone("")
	// Go reports IPv4 destinations of dual-stack sockets as ::ffff:a.b.c.d;
	// the allow-list is written in plain IPv4.
	if a.Is4In6() {
		a = a.Unmap()
	}
	for _, n := range p.allowed {
		if n.Contains(a) {
			return true
		}
	}
	return IsPublic(a)
}

// AllowsHost checks a URL's host before any request is made, so that a
// pusher or a preview naming an internal address literally is refused with
// a clear error instead of a failed delivery later. Names are resolved only
// at connect time (by Control), except the localhost names that resolvers
// answer locally without DNS.
func (p *Policy) AllowsHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		return p.Allows(a)
	}
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return p.Allows(netip.IPv6Loopback()) && p.Allows(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	}
	return true
}

// Control is a net.Dialer Control hook: it refuses a connection whose
// resolved address the policy does not allow, before any packet is sent.
func (p *Policy) Control(_, address string, _ syscall.RawConn) error {
	// The dialer hands over the resolved "ip:port"; anything else is not
	// something the policy can judge, so it is refused.
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("outbound connection to %q: %w", address, ErrBlocked)
	}
	if !p.Allows(ap.Addr()) {
		return &BlockedError{Addr: ap.Addr()}
	}
	return nil
}

// Dialer returns a dialer that applies the policy to every connection.
func (p *Policy) Dialer(timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	if p == nil || !p.unrestricted {
		d.Control = p.Control
	}
	return d
}

// Special-purpose IPv4 networks that are not reachable public unicast
// destinations (IANA IPv4 Special-Purpose Address Registry, plus multicast
// and the reserved class E).
var notPublic4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
	netip.MustParsePrefix("10.0.0.0/8"),         // private
	netip.MustParsePrefix("100.64.0.0/10"),      // carrier-grade NAT
	netip.MustParsePrefix("127.0.0.0/8"),        // loopback
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local (cloud metadata services)
	netip.MustParsePrefix("172.16.0.0/12"),      // private
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),       // documentation
	netip.MustParsePrefix("192.88.99.0/24"),     // deprecated 6to4 relay anycast
	netip.MustParsePrefix("192.168.0.0/16"),     // private
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),    // documentation
	netip.MustParsePrefix("203.0.113.0/24"),     // documentation
	netip.MustParsePrefix("224.0.0.0/4"),        // multicast
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, and broadcast
	netip.MustParsePrefix("255.255.255.255/32"), // limited broadcast (inside 240/4; kept for readers)
}

// IPv6 networks inside global unicast (2000::/3) that are not public
// destinations. Everything outside 2000::/3 (loopback, unspecified,
// IPv4-compatible and IPv4-translated forms, discard-only 100::/64,
// unique-local fc00::/7, site-local fec0::/10, link-local fe80::/10,
// multicast ff00::/8) is refused wholesale, apart from the NAT64 prefix
// handled in IsPublic.
var notPublic6 = []netip.Prefix{
	netip.MustParsePrefix("2001:2::/48"),  // benchmarking
	netip.MustParsePrefix("2001:10::/28"), // ORCHID (deprecated)
	netip.MustParsePrefix("2001:20::/28"), // ORCHIDv2
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("3fff::/20"), // documentation (RFC 9637)
	netip.MustParsePrefix("5f00::/16"), // SRv6 segment identifiers
}

var (
	global6    = netip.MustParsePrefix("2000::/3")
	nat64      = netip.MustParsePrefix("64:ff9b::/96")   // well-known NAT64 prefix, RFC 6052
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48") // local-use NAT64, RFC 8215
	sixToFour  = netip.MustParsePrefix("2002::/16")
	teredo     = netip.MustParsePrefix("2001::/32")
)

// IsPublic reports whether a is a unicast address on the public internet.
//
// Addresses that carry an IPv4 address inside an IPv6 one (IPv4-mapped,
// NAT64, 6to4, Teredo) are judged by the IPv4 address they lead to: a
// NAT64 gateway turns 64:ff9b::a00:1 into a connection to 10.0.0.1, and a
// host with a 6to4 route sends 2002:a00:1:: traffic to 10.0.0.1.
func IsPublic(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("")
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Is4() {
		for _, n := range notPublic4 {
			if n.Contains(a) {
				return false
			}
		}
		return true
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return IsPublic(netip.AddrFrom4([4]byte(b[12:16])))
	case nat64Local.Contains(a):
		// Where the IPv4 address sits depends on the prefix length the
		// network chose (RFC 6052 section 2.2), which cannot be known
		// here: refused unless allowed by the operator.
		return false
	case sixToFour.Contains(a):
		return IsPublic(netip.AddrFrom4([4]byte(b[2:6])))
	case teredo.Contains(a):
		// Server address in bits 32-63, client address (bit-inverted)
		// in the last 32 bits: both are contacted.
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return IsPublic(netip.AddrFrom4([4]byte(b[4:8]))) && IsPublic(netip.AddrFrom4(client))
	case !global6.Contains(a):
		return false
	}
	for _, n := range notPublic6 {
		if n.Contains(a) {
			return false
		}
	}
	return true
}
