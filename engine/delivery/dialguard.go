package delivery

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
)

// NetworkPolicy says which addresses deliveries may connect to. By default
// only public unicast addresses are allowed, as GitLab does unless "Allow
// requests to the local network from webhooks" is on. The check runs at
// dial time on the address actually being connected to, after DNS, so a
// name that resolves (or re-resolves: DNS rebinding) to a local address is
// refused too.
type NetworkPolicy struct {
	// AllowLocal allows every address the guard would refuse: loopback,
	// private, link-local (cloud metadata included), shared (CGNAT) and
	// the rest of the list in localRanges.
	AllowLocal bool
	// Allow are networks allowed even when AllowLocal is off, e.g. one
	// internal CI server: 10.1.2.3/32.
	Allow []netip.Prefix
}

// key identifies the policy, to keep connections made under one policy
// from serving another.
func (p *NetworkPolicy) key() string {
	var b strings.Builder
	fmt.Fprint(&b, p.AllowLocal)
	for _, n := range p.Allow {
		b.WriteString(" " + n.String())
	}
	return b.String()
}

// BlockedError is the refusal of a connection to a local address. Its text
// is what a hook's log shows as the internal error.
type BlockedError struct {
	Addr netip.Addr
	Kind string // e.g. "a loopback address"
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("blocked: %s is %s; allow it with allow_local_requests or allow_networks", e.Addr, e.Kind)
}

// localRange is a range refused by default, with the words for it.
type localRange struct {
	prefix netip.Prefix
	kind   string
}

// localRanges are refused unless allowed. 100.64.0.0/10 (shared address
// space, RFC 6598) is included as GitLab's URL blocker does: it is not
// routable on the internet, and some clouds serve metadata from it
// (100.100.100.200).
var localRanges = func() []localRange {
	var rs []localRange
	add := func(kind string, prefixes ...string) {
		for _, p := range prefixes {
			rs = append(rs, localRange{netip.MustParsePrefix(p), kind})
		}
	}
	// The most specific first: the metadata address is also link-local.
	add("a cloud metadata address", "169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32")
	add("an unspecified address", "0.0.0.0/8", "::/128")
	add("a loopback address", "127.0.0.0/8", "::1/128")
	add("a private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
	add("a link-local address", "169.254.0.0/16", "fe80::/10")
	add("a shared (CGNAT) address", "100.64.0.0/10")
	add("a multicast or broadcast address", "224.0.0.0/4", "255.255.255.255/32", "ff00::/8")
	return rs
}()

// Check returns a *BlockedError if the policy refuses addr.
func (p *NetworkPolicy) Check(addr netip.Addr) error {
	addr = addr.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if p.AllowLocal || slices.ContainsFunc(p.Allow, func(n netip.Prefix) bool { return n.Contains(addr) }) {
		return nil
	}
	for _, r := range localRanges {
		if r.prefix.Contains(addr) {
			return &BlockedError{Addr: addr, Kind: r.kind}
		}
	}
	return nil
}

// control is a net.Dialer Control function: it sees the resolved address
// of every connection attempt, just before connect(2).
func (p *NetworkPolicy) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("blocked: cannot check address %q: %w", address, err)
	}
	return p.Check(ap.Addr())
}

// ParseNetwork reads an allow_networks entry: a CIDR prefix or a single
// address.
func ParseNetwork(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a network (10.0.0.0/8) nor an address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
