package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

// NetworkPolicy says which addresses deliveries may connect to. By default
// only public unicast addresses are allowed, as GitLab does unless "Allow
// requests to the local network from webhooks" is on. Hook URLs are
// checked when saved (CheckSavedURL: the host read as the dialer reads it,
// a name resolved), as GitLab's public_url validator does, and every
// connection is checked again when dialled, on the address actually being
// connected to, after DNS, so a name that re-resolves (DNS rebinding) to a
// local address is refused too.
type NetworkPolicy struct {
	// AllowLocal allows every address the guard would refuse: loopback,
	// private, link-local (cloud metadata included), shared (CGNAT) and
	// the rest of the list in localRanges.
	AllowLocal bool
	// Allow are networks allowed even when AllowLocal is off, e.g. one
	// internal CI server: 10.1.2.3/32.
	Allow []netip.Prefix
	// Resolve looks a host name up when a hook is saved. Default: the
	// system's resolver (net.DefaultResolver); tests give their own.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
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

// BlockedError is the refusal of a local address. Its text is what a
// hook's log shows as the internal error.
type BlockedError struct {
	// Host is the address (IPv4-mapped ones unmapped) or name refused.
	Host string
	// Resolved is the address a name refused at save resolved to;
	// invalid otherwise.
	Resolved netip.Addr
	// Lookup is why a name refused at save did not resolve; nil otherwise.
	Lookup error
	// Embedded is the IPv4 address the decision was made on when Host
	// wraps one (IPv4-compatible, NAT64, 6to4, Teredo); invalid otherwise.
	Embedded netip.Addr
	// Kind says what was refused, e.g. "a loopback address".
	Kind string
	// Reason is GitLab's words for the refusal of a hook URL, e.g.
	// "Requests to localhost are not allowed".
	Reason string
}

func (e *BlockedError) Error() string {
	if e.Lookup != nil {
		return fmt.Sprintf("blocked: %s cannot be resolved: %v", e.Host, e.Lookup)
	}
	what := e.Host + " is " + e.Kind
	switch {
	case e.Resolved.IsValid() && e.Embedded.IsValid():
		what = fmt.Sprintf("%s resolves to %s, which embeds %s, %s", e.Host, e.Resolved, e.Embedded, e.Kind)
	case e.Resolved.IsValid():
		what = fmt.Sprintf("%s resolves to %s, %s", e.Host, e.Resolved, e.Kind)
	case e.Embedded.IsValid():
		what = fmt.Sprintf("%s embeds %s, %s", e.Host, e.Embedded, e.Kind)
	}
	if e.Kind == kindZoned {
		return "blocked: " + what + ": a zone names an interface of one machine"
	}
	return "blocked: " + what + "; allow it with allow_local_requests or allow_networks"
}

// GitLab's URL blocker messages.
const (
	reasonLocalhost    = "Requests to localhost are not allowed"
	reasonLocalNetwork = "Requests to the local network are not allowed"
	reasonLinkLocal    = "Requests to the link local network are not allowed"
	reasonShared       = "Requests to the shared address space are not allowed"
	reasonBroadcast    = "Requests to the limited broadcast address are not allowed"
	reasonUnresolved   = "Host cannot be resolved or invalid"
)

// kindZoned is a host with an IPv6 zone (fe80::1%eth0), refused in hook
// URLs whatever the policy: the zone names an interface of one machine,
// while a hook is delivered by every process sharing the Redis.
const kindZoned = "an IPv6 address with a zone"

// localRange is a range refused by default, with the words for it.
type localRange struct {
	prefix       netip.Prefix
	kind, reason string
}

// localRanges are refused unless allowed. 100.64.0.0/10 (shared address
// space, RFC 6598) is included as GitLab's URL blocker does: it is not
// routable on the internet, and some clouds serve metadata from it
// (100.100.100.200). The reserved ranges of IANA's special-purpose
// registries that are not globally reachable are refused too.
var localRanges = func() []localRange {
	var rs []localRange
	add := func(kind, reason string, prefixes ...string) {
		for _, p := range prefixes {
			rs = append(rs, localRange{netip.MustParsePrefix(p), kind, reason})
		}
	}
	// The most specific first: the metadata addresses are also
	// link-local, private and shared, and the broadcast address reserved.
	add("a cloud metadata address", reasonLinkLocal, "169.254.169.254/32")
	add("a cloud metadata address", reasonLocalNetwork, "fd00:ec2::254/128")
	add("a cloud metadata address", reasonShared, "100.100.100.200/32")
	add("a multicast or broadcast address", reasonBroadcast, "255.255.255.255/32")
	add("an unspecified address", reasonLocalhost, "0.0.0.0/8", "::/128")
	add("a loopback address", reasonLocalhost, "127.0.0.0/8", "::1/128")
	add("a private address", reasonLocalNetwork, "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10")
	add("a link-local address", reasonLinkLocal, "169.254.0.0/16", "fe80::/10")
	add("a shared (CGNAT) address", reasonShared, "100.64.0.0/10")
	add("a multicast or broadcast address", reasonLocalNetwork, "224.0.0.0/4", "ff00::/8")
	// RFC 8215: the local-use NAT64 prefix translates to whatever the
	// local network's translator reaches; where it embeds the IPv4 address
	// depends on the prefix length chosen there.
	add("a local-use NAT64 address", reasonLocalNetwork, "64:ff9b:1::/48")
	add("a reserved address", reasonLocalNetwork,
		"192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"100::/64", "2001:db8::/32")
	return rs
}()

// Prefixes of IPv6 addresses that carry an IPv4 address.
var (
	ipv4Compatible = netip.MustParsePrefix("::/96")           // deprecated, RFC 4291: ::a.b.c.d
	ipv4Translated = netip.MustParsePrefix("::ffff:0:0:0/96") // SIIT, RFC 2765: ::ffff:0:a.b.c.d
	nat64          = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052: the last 32 bits
	sixToFour      = netip.MustParsePrefix("2002::/16")       // RFC 3056: bits 16–47
	teredo         = netip.MustParsePrefix("2001::/32")       // RFC 4380: server in bits 32–63, client in the last 32, inverted
	unspecified6   = netip.IPv6Unspecified()
	loopback6      = netip.IPv6Loopback()
	loopback4      = netip.AddrFrom4([4]byte{127, 0, 0, 1})
)

// decidedOn returns the addresses a connection to a (zone dropped,
// unmapped) is decided on: the IPv4 addresses an IPv6 address embeds, as
// a packet to it ends up at them (through a NAT64 or SIIT translator, a
// 6to4 relay or a Teredo server and client), or a itself.
func decidedOn(a netip.Addr) []netip.Addr {
	if !a.Is6() {
		return []netip.Addr{a}
	}
	b := a.As16()
	at := func(i int) netip.Addr { return netip.AddrFrom4([4]byte(b[i : i+4])) }
	switch {
	case ipv4Compatible.Contains(a) && a != unspecified6 && a != loopback6, nat64.Contains(a), ipv4Translated.Contains(a):
		return []netip.Addr{at(12)}
	case sixToFour.Contains(a):
		return []netip.Addr{at(2)}
	case teredo.Contains(a):
		client := [4]byte(b[12:16])
		for i := range client {
			client[i] ^= 0xff
		}
		return []netip.Addr{at(4), netip.AddrFrom4(client)}
	}
	return []netip.Addr{a}
}

// allows reports whether a is in an allow_networks entry.
func (p *NetworkPolicy) allows(a netip.Addr) bool {
	return slices.ContainsFunc(p.Allow, func(n netip.Prefix) bool { return n.Contains(a) })
}

// Check returns a *BlockedError if the policy refuses addr. It is the one
// address decision, made on every address a delivery dials and on the
// literal address of a hook URL when it is saved. It decides on where a
// connection ends up, not on how the address is written: the zone is
// dropped (::1%lo is ::1), an IPv4-mapped address is its IPv4 address, and
// an IPv6 address embedding IPv4 ones is refused if any of them is local.
// An allow_networks entry allows an address written either way.
func (p *NetworkPolicy) Check(addr netip.Addr) error {
	if p.AllowLocal {
		return nil
	}
	a := addr.WithZone("").Unmap()
	if p.allows(a) {
		return nil
	}
	for _, d := range decidedOn(a) {
		if p.allows(d) {
			continue
		}
		for _, r := range localRanges {
			if r.prefix.Contains(d) {
				be := &BlockedError{Host: addr.Unmap().String(), Kind: r.kind, Reason: r.reason}
				if d != a {
					be.Embedded = d
				}
				return be
			}
		}
	}
	return nil
}

// CheckHost checks the host of a hook URL (url.URL.Hostname) before any
// connection, read as the HTTP client and the resolver read it (IDNA, a
// trailing dot, inet_aton's numeric forms): an address as Check does, a
// host with a zone always refused, and localhost names (RFC 6761) as
// loopback. Other names are resolved when a hook is saved
// (CheckSavedURL) and checked at dial time, after each lookup.
func (p *NetworkPolicy) CheckHost(host string) error {
	if strings.Contains(host, "%") {
		if addr, err := netip.ParseAddr(host); err == nil {
			if err := p.Check(addr); err != nil {
				return err
			}
		}
		return &BlockedError{Host: host, Kind: kindZoned, Reason: "IPv6 zone identifiers are not allowed"}
	}
	dialed := dialHost(host)
	if addr, ok := hostAddr(dialed); ok {
		err := p.Check(addr)
		var be *BlockedError
		if errors.As(err, &be) {
			be.Host = host // as the URL writes it
		}
		return err
	}
	name := strings.TrimSuffix(strings.ToLower(dialed), ".")
	if (name == "localhost" || strings.HasSuffix(name, ".localhost")) &&
		!p.AllowLocal && !p.allows(loopback4) && !p.allows(loopback6) {
		return &BlockedError{Host: host, Kind: "a loopback address", Reason: reasonLocalhost}
	}
	return nil
}

// CheckURL checks a hook URL before it is sent: the URL template with its
// variables filled in, as GitLab validates the interpolated URL. A URL
// that cannot be interpolated or parsed is left to the URL validation. A
// host that comes from the variables is not named in the error, as their
// values are secret.
func (p *NetworkPolicy) CheckURL(template string, vars map[string]string) error {
	_, err := p.checkURL(template, vars)
	return err
}

// checkURL is CheckURL; it also returns the host when it is a name left to
// resolve ("" otherwise).
func (p *NetworkPolicy) checkURL(template string, vars map[string]string) (name string, err error) {
	raw, err := gitlab.InterpolateURL(template, vars)
	if err != nil {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil
	}
	host := u.Hostname()
	err = p.CheckHost(host)
	var be *BlockedError
	if errors.As(err, &be) && !strings.Contains(template, be.Host) {
		be.Host = "the host from URL variables"
	}
	if err == nil && host != "" && !strings.Contains(host, "%") {
		if _, isAddr := hostAddr(dialHost(host)); !isAddr {
			name = host
		}
	}
	return name, err
}

// saveLookupTimeout bounds the lookup of a hook's host when it is saved.
const saveLookupTimeout = 5 * time.Second

// CheckSavedURL is CheckURL when a hook is saved: a host name is resolved
// too, as GitLab's URL blocker does, and refused when any address it
// resolves to is refused ("Requests to the local network are not allowed",
// whichever local network: the answer names the rule, not the address) or
// when it does not resolve ("Host cannot be resolved or invalid"). Under
// allow_local_requests nothing is looked up: every address is allowed.
// Each connection is checked again at dial time, as a name may
// re-resolve.
func (p *NetworkPolicy) CheckSavedURL(ctx context.Context, template string, vars map[string]string) error {
	name, err := p.checkURL(template, vars)
	if err != nil || name == "" || p.AllowLocal {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, saveLookupTimeout)
	defer cancel()
	resolve := p.Resolve
	if resolve == nil {
		resolve = netResolverLookup
	}
	return p.checkName(ctx, template, name, resolve)
}

// netResolverLookup looks host up with the system's resolver.
func netResolverLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// checkName resolves name, the host of URL template, and refuses it when
// any address it resolves to is refused, or when it does not resolve.
func (p *NetworkPolicy) checkName(ctx context.Context, template, name string,
	resolve func(ctx context.Context, host string) ([]netip.Addr, error)) error {
	shown := name
	if !strings.Contains(template, name) {
		shown = "the host from URL variables"
	}
	addrs, err := resolve(ctx, strings.ToLower(strings.TrimSuffix(dialHost(name), ".")))
	if err == nil && len(addrs) == 0 {
		err = errors.New("no addresses")
	}
	if err != nil {
		return &BlockedError{Host: shown, Lookup: err, Reason: reasonUnresolved}
	}
	for _, a := range addrs {
		var be *BlockedError
		if errors.As(p.Check(a), &be) {
			be.Host, be.Resolved, be.Reason = shown, a.Unmap(), reasonLocalNetwork
			return be
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
// address. An IPv4-mapped entry (::ffff:10.0.0.0/104) is its IPv4 network,
// as the addresses it is compared with are unmapped.
func ParseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("%q has an IPv6 zone; give the address or network without it", s)
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a network (10.0.0.0/8) nor an address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
