package delivery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// Every way of writing an IPv6 address that leads to a local one is
// refused as that local address: a zone, an IPv4-mapped or -compatible
// form, and the IPv4 addresses NAT64, 6to4 and Teredo addresses embed.
func TestNetworkPolicyRefusesEveryFormOfALocalAddress(t *testing.T) {
	cases := []struct {
		addr, kind, embedded string // kind "": allowed
	}{
		{"::1%1", "a loopback address", ""},
		{"::1%lo", "a loopback address", ""},
		{"fe80::1%eth0", "a link-local address", ""},
		{"fd00:ec2::254%eth0", "a cloud metadata address", ""},
		{"fd12::1%2", "a private address", ""},
		{"ff02::1%eth0", "a multicast or broadcast address", ""},
		{"::%1", "an unspecified address", ""},
		{"2001:4860:4860::8888%eth0", "", ""},
		{"::ffff:127.0.0.1", "a loopback address", ""},
		{"::ffff:169.254.169.254", "a cloud metadata address", ""},
		{"::ffff:127.0.0.1%eth0", "a loopback address", ""},
		// IPv4-translated (SIIT): decided on the IPv4 address.
		{"::ffff:0:127.0.0.1", "a loopback address", "127.0.0.1"},
		{"::ffff:0:a9fe:a9fe", "a cloud metadata address", "169.254.169.254"},
		{"::ffff:0:8.8.8.8", "", ""},
		{"fec0::1", "a private address", ""},
		// IPv4-compatible (deprecated): decided on the IPv4 address,
		// except :: and ::1 themselves.
		{"::127.0.0.1", "a loopback address", "127.0.0.1"},
		{"::10.0.0.1", "a private address", "10.0.0.1"},
		{"::169.254.169.254%eth0", "a cloud metadata address", "169.254.169.254"},
		{"::0.0.0.2", "an unspecified address", "0.0.0.2"},
		{"::8.8.8.8", "", ""},
		{"::", "an unspecified address", ""},
		{"::0.0.0.1", "a loopback address", ""}, // that is ::1
		// NAT64, well-known prefix: the last 32 bits.
		{"64:ff9b::7f00:1", "a loopback address", "127.0.0.1"},
		{"64:ff9b::127.0.0.1", "a loopback address", "127.0.0.1"},
		{"64:ff9b::a9fe:a9fe", "a cloud metadata address", "169.254.169.254"},
		{"64:ff9b::c0a8:101", "a private address", "192.168.1.1"},
		{"64:ff9b::808:808", "", ""},
		// NAT64, local-use prefix: not globally reachable at all.
		{"64:ff9b:1::808:808", "a local-use NAT64 address", ""},
		// 6to4: bits 16–47.
		{"2002:7f00:1::1", "a loopback address", "127.0.0.1"},
		{"2002:a9fe:a9fe::", "a cloud metadata address", "169.254.169.254"},
		{"2002:c0a8:101:1::1", "a private address", "192.168.1.1"},
		{"2002:808:808::1", "", ""},
		// Teredo: server in bits 32–63, client in the last 32, inverted.
		{"2001:0:7f00:1::f7f7:f7f7", "a loopback address", "127.0.0.1"},              // server 127.0.0.1, client 8.8.8.8
		{"2001:0:808:404::f5ff:fffe", "a private address", "10.0.0.1"},               // server 8.8.4.4, client 10.0.0.1
		{"2001:0:808:404::5601:5601", "a cloud metadata address", "169.254.169.254"}, // client 169.254.169.254
		{"2001:0:808:404::f7f7:f7f7", "", ""},                                        // both 8.8.x.x
	}
	var deny NetworkPolicy
	for _, c := range cases {
		err := deny.Check(netip.MustParseAddr(c.addr))
		var be *BlockedError
		switch {
		case c.kind == "" && err != nil:
			t.Errorf("%s refused: %v", c.addr, err)
		case c.kind != "" && (!errors.As(err, &be) || be.Kind != c.kind):
			t.Errorf("%s: got %v, want it refused as %s", c.addr, err, c.kind)
		case c.kind != "" && c.embedded != "" && be.Embedded != netip.MustParseAddr(c.embedded):
			t.Errorf("%s: refusal names %v as the embedded address, want %s", c.addr, be.Embedded, c.embedded)
		}
	}
	err := deny.Check(netip.MustParseAddr("64:ff9b::7f00:1"))
	if want := "blocked: 64:ff9b::7f00:1 embeds 127.0.0.1, a loopback address; allow it with allow_local_requests"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error text %v, want it to start with %q", err, want)
	}
	err = deny.Check(netip.MustParseAddr("::1%lo"))
	if want := "blocked: ::1%lo is a loopback address"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error text %v, want it to start with %q", err, want)
	}
}

// allow_networks allows an address written in any form that leads into
// it, and a wrapping address listed itself.
func TestNetworkPolicyAllowListSeesThroughForms(t *testing.T) {
	var allow []netip.Prefix
	for _, s := range []string{"10.1.2.0/24", "::ffff:192.168.7.0/120", "2002:7f00:1::/48", "fe80::/64"} {
		n, err := ParseNetwork(s)
		if err != nil {
			t.Fatal(err)
		}
		allow = append(allow, n)
	}
	if allow[1] != netip.MustParsePrefix("192.168.7.0/24") {
		t.Errorf("::ffff:192.168.7.0/120 parsed as %s, want 192.168.7.0/24", allow[1])
	}
	p := NetworkPolicy{Allow: allow}
	for s, allowed := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "::10.1.2.3": true, "64:ff9b::a01:203": true, "2002:a01:203::1": true,
		"2001:0:a01:203::f7f7:f7f7": true, "192.168.7.9": true, "fe80::1%eth0": true, "2002:7f00:1::1": true,
		"10.1.3.1": false, "64:ff9b::a01:303": false, "2001:0:a01:203::f5fe:fcfc": false, "fe80:0:0:1::1%eth0": false,
		"2002:7f00:2::1": false,
	} {
		if err := p.Check(netip.MustParseAddr(s)); (err == nil) != allowed {
			t.Errorf("allow_networks %v: %s → %v", allow, s, err)
		}
	}
	if _, err := ParseNetwork("fe80::/64%eth0"); err == nil {
		t.Error("a network with a zone parsed")
	}
	if _, err := ParseNetwork("fe80::1%eth0"); err == nil {
		t.Error("an address with a zone parsed")
	}
}

// A hook URL is checked before any connection: literal addresses, zones
// (refused whatever the policy) and localhost names; other names are left
// to the dial-time check.
func TestCheckURL(t *testing.T) {
	var deny NetworkPolicy
	local := NetworkPolicy{AllowLocal: true}
	loop, _ := ParseNetwork("127.0.0.1")
	someLocal := NetworkPolicy{Allow: []netip.Prefix{loop}}
	cases := []struct {
		url    string
		vars   map[string]string
		reason string // under deny; "" = allowed
		local  bool   // allowed with allow_local_requests
	}{
		{"http://[::1%251]:19104/x", nil, "Requests to localhost are not allowed", false},
		{"http://[::1%25lo]/x", nil, "Requests to localhost are not allowed", false},
		{"http://[fe80::1%25eth0]/x", nil, "Requests to the link local network are not allowed", false},
		{"http://[fd00:ec2::254%25eth0]/x", nil, "Requests to the local network are not allowed", false},
		{"http://[2001:4860:4860::8888%25eth0]/x", nil, "IPv6 zone identifiers are not allowed", false},
		{"http://127.0.0.1%25eth0/x", nil, "IPv6 zone identifiers are not allowed", false},
		{"http://127.0.0.1:9/x", nil, "Requests to localhost are not allowed", true},
		{"http://[::ffff:127.0.0.1]/x", nil, "Requests to localhost are not allowed", true},
		{"http://[64:ff9b::a9fe:a9fe]/latest", nil, "Requests to the link local network are not allowed", true},
		{"http://10.0.0.1/x", nil, "Requests to the local network are not allowed", true},
		{"http://100.64.1.1/x", nil, "Requests to the shared address space are not allowed", true},
		{"http://255.255.255.255/x", nil, "Requests to the limited broadcast address are not allowed", true},
		{"http://localhost:9/x", nil, "Requests to localhost are not allowed", true},
		{"http://LOCALHOST./x", nil, "Requests to localhost are not allowed", true},
		{"http://api.localhost/x", nil, "Requests to localhost are not allowed", true},
		{"http://{host}:9/{path}", map[string]string{"host": "127.0.0.1", "path": "p"}, "Requests to localhost are not allowed", true},
		{"http://{host}/x", map[string]string{"host": "[::1%251]"}, "Requests to localhost are not allowed", false},
		{"http://{host}/x", map[string]string{"host": "8.8.8.8"}, "", true},
		{"https://ci.example.com/hook", nil, "", true},
		{"http://localhost.example.com/x", nil, "", true},
		{"http://[2001:4860:4860::8888]/x", nil, "", true},
		{"http://{missing}/x", nil, "", true}, // left to the URL validation
		// Read as the dialer reads them: inet_aton's numeric forms, a
		// trailing dot, IDNA (full-width and circled digits), IPv4
		// embedded in bracketed IPv6 forms.
		{"http://2130706433/x", nil, "Requests to localhost are not allowed", true},
		{"http://0x7f000001/x", nil, "Requests to localhost are not allowed", true},
		{"http://0177.0.0.1/x", nil, "Requests to localhost are not allowed", true},
		{"http://0x7f.0.0.1/x", nil, "Requests to localhost are not allowed", true},
		{"http://127.1/x", nil, "Requests to localhost are not allowed", true},
		{"http://127.0.0.1./x", nil, "Requests to localhost are not allowed", true},
		{"http://127.000.000.001/x", nil, "Requests to localhost are not allowed", true},
		{"http://0/x", nil, "Requests to localhost are not allowed", true},
		{"http://0x0/x", nil, "Requests to localhost are not allowed", true},
		{"http://10.1/x", nil, "Requests to the local network are not allowed", true},
		{"http://169.254.43518/latest", nil, "Requests to the link local network are not allowed", true},
		{"http://0251.0376.0251.0376/latest", nil, "Requests to the link local network are not allowed", true},
		{"http://１２７．０．０．１/x", nil, "Requests to localhost are not allowed", true},
		{"http://①②⑦.⓪.⓪.①/x", nil, "Requests to localhost are not allowed", true},
		{"http://ｌｏｃａｌｈｏｓｔ/x", nil, "Requests to localhost are not allowed", true},
		{"http://[::ffff:0:127.0.0.1]/x", nil, "Requests to localhost are not allowed", true},
		{"http://[::ffff:0:a9fe:a9fe]/latest", nil, "Requests to the link local network are not allowed", true},
		{"http://{host}/x", map[string]string{"host": "0x7f000001"}, "Requests to localhost are not allowed", true},
		{"http://134744072/x", nil, "", true},     // 8.8.8.8
		{"http://0x08.0x08.8.8/x", nil, "", true}, // 8.8.8.8
		{"http://1.2.3.4.5/x", nil, "", true},     // a name: five parts
		{"http://256.1.1.1/x", nil, "", true},     // a name: 256 is no byte
		{"http://09.1.1.1/x", nil, "", true},      // a name: 9 is no octal digit
		{"http://127.0.0.1.example.com/x", nil, "", true},
	}
	for _, c := range cases {
		err := deny.CheckURL(c.url, c.vars)
		var be *BlockedError
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%s refused: %v", c.url, err)
		case c.reason != "" && (!errors.As(err, &be) || be.Reason != c.reason):
			t.Errorf("%s: got %v, want it refused: %s", c.url, err, c.reason)
		}
		if err := local.CheckURL(c.url, c.vars); (err == nil) != c.local {
			t.Errorf("%s with allow_local_requests: %v", c.url, err)
		}
	}
	if err := someLocal.CheckURL("http://localhost:9/x", nil); err != nil {
		t.Errorf("localhost with allow_networks 127.0.0.1: %v", err)
	}
}

// nonPublic lists the ranges no delivery may reach by default, written
// independently of localRanges for FuzzNetworkPolicyCheck.
var nonPublic = func() []*net.IPNet {
	var out []*net.IPNet
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10",
		"fec0::/10", "ff00::/8",
	} {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			panic(err)
		}
		out = append(out, n)
	}
	return out
}()

func inAny(nets []*net.IPNet, ip net.IP) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// destinations computes by hand where a connection to the 16 bytes b
// ends up: the IPv4 address of a mapped, translated (SIIT), compatible,
// NAT64 or 6to4 address, Teredo's server and client, or the address
// itself.
func destinations(b [16]byte) []net.IP {
	v4 := func(p []byte) net.IP { return net.IPv4(p[0], p[1], p[2], p[3]) }
	zero := func(p []byte) bool {
		for _, x := range p {
			if x != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case zero(b[:10]) && b[10] == 0xff && b[11] == 0xff: // ::ffff:a.b.c.d
		return []net.IP{v4(b[12:])}
	case zero(b[:8]) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0: // ::ffff:0:a.b.c.d
		return []net.IP{v4(b[12:])}
	case zero(b[:12]) && !(zero(b[12:15]) && b[15] <= 1): // ::a.b.c.d, not :: or ::1
		return []net.IP{v4(b[12:])}
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(b[4:12]): // 64:ff9b::/96
		return []net.IP{v4(b[12:])}
	case b[0] == 0x20 && b[1] == 0x02: // 2002::/16
		return []net.IP{v4(b[2:6])}
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0: // 2001::/32
		return []net.IP{v4(b[4:8]), net.IPv4(^b[12], ^b[13], ^b[14], ^b[15])}
	}
	return []net.IP{net.IP(b[:])}
}

// For any address, zones included: with the default policy it is allowed
// exactly when everywhere it leads is public; with allow_networks, only
// when it or everywhere it leads is public or listed; a zone never changes
// the decision at dial time and always refuses a hook URL.
func FuzzNetworkPolicyCheck(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1", "8.8.8.8", "::1", "::1%1", "::1%lo", "fe80::1%eth0", "fd00:ec2::254%eth0", "ff02::1%eth0",
		"::ffff:127.0.0.1", "::ffff:127.0.0.1%eth0", "::127.0.0.1", "::8.8.8.8", "::", "::2",
		"64:ff9b::7f00:1", "64:ff9b::808:808", "64:ff9b:1::808:808", "64:ff9b::10.1.2.3",
		"2002:7f00:1::1", "2002:808:808::1", "2002:a01:203::", "2001:0:7f00:1::f7f7:f7f7",
		"2001:0:808:404::f5ff:fffe", "2001:0:808:404::f7f7:f7f7", "2001:0:a01:203::f7f7:f7f7",
		"2001:4860:4860::8888", "fec0::1", "100.64.0.1", "255.255.255.255", "fd12::1", "fd12::1%9",
		"::ffff:0:127.0.0.1", "::ffff:0:8.8.8.8",
	} {
		f.Add(s)
	}
	var allowNets []*net.IPNet
	var allow []netip.Prefix
	for _, s := range []string{"10.1.2.0/24", "fd12::/64", "2002:7f00:1::/48"} {
		_, n, _ := net.ParseCIDR(s)
		allowNets = append(allowNets, n)
		p, _ := ParseNetwork(s)
		allow = append(allow, p)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		b := addr.As16()
		dests := destinations(b)
		self := net.IP(b[:])

		public := true
		for _, d := range dests {
			public = public && !inAny(nonPublic, d)
		}
		deny := NetworkPolicy{}
		if err := deny.Check(addr); (err == nil) != public {
			t.Fatalf("%s (leads to %v): default policy says %v", s, dests, err)
		}

		ok := inAny(allowNets, self)
		if !ok {
			ok = true
			for _, d := range dests {
				ok = ok && (!inAny(nonPublic, d) || inAny(allowNets, d))
			}
		}
		some := NetworkPolicy{Allow: allow}
		if err := some.Check(addr); (err == nil) != ok {
			t.Fatalf("%s (leads to %v): allow_networks %v says %v", s, dests, allow, err)
		}

		if err := (&NetworkPolicy{AllowLocal: true}).Check(addr); err != nil {
			t.Fatalf("%s with allow_local_requests: %v", s, err)
		}
		if addr.Zone() != "" {
			if (deny.Check(addr) == nil) != (deny.Check(addr.WithZone("")) == nil) {
				t.Fatalf("%s: the zone changed the decision", s)
			}
			for _, p := range []NetworkPolicy{deny, some, {AllowLocal: true}} {
				if p.CheckHost(addr.String()) == nil {
					t.Fatalf("hook URL host %s allowed under %+v", s, p)
				}
			}
		} else if (deny.CheckHost(addr.String()) == nil) != public {
			t.Fatalf("hook URL host %s: CheckHost disagrees with Check", s)
		}
	})
}

// A refused host that comes from URL variables is not named: their values
// are secret.
func TestCheckURLDoesNotNameAHostFromVariables(t *testing.T) {
	var deny NetworkPolicy
	err := deny.CheckURL("http://{host}:9/x", map[string]string{"host": "10.9.8.7"})
	if err == nil || strings.Contains(err.Error(), "10.9.8.7") {
		t.Fatalf("error %v, want a refusal that does not name the variable's value", err)
	}
	err = deny.CheckURL("http://10.9.8.7:9/{path}", map[string]string{"path": "p"})
	if err == nil || !strings.Contains(err.Error(), "blocked: 10.9.8.7 is a private address") {
		t.Fatalf("error %v, want the literal address named", err)
	}
}

// inet_aton's forms, as the resolver reads a numeric host.
func TestInetAton(t *testing.T) {
	for s, want := range map[string]string{
		"2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "0X7F000001": "127.0.0.1", "017700000001": "127.0.0.1",
		"127.1": "127.0.0.1", "127.0.1": "127.0.0.1", "0177.0.0.1": "127.0.0.1", "0x7f.0.0.1": "127.0.0.1",
		"127.000.000.001": "127.0.0.1", "0": "0.0.0.0", "0x": "0.0.0.0", "10.65535": "10.0.255.255",
		"1.2.3.4": "1.2.3.4", "4294967295": "255.255.255.255",
		"4294967296": "", "1.2.3.4.5": "", "256.1": "", "1.2.65536": "", "08": "", "0x1g": "", "": "", "1..2": "",
		"+1": "", "-1": "", "1.2.3.": "", "a.b": "", "1_000": "",
	} {
		got, ok := inetAton(s)
		switch {
		case want == "" && ok:
			t.Errorf("inet_aton(%q) = %s, want a name", s, got)
		case want != "" && (!ok || got != netip.MustParseAddr(want)):
			t.Errorf("inet_aton(%q) = %v %v, want %s", s, got, ok, want)
		}
	}
}

// A host name is resolved when a hook is saved, as GitLab's URL blocker
// does: refused when any address is local (the answer names the rule,
// never the address) or when it does not resolve; allow_networks and
// allow_local_requests keep their meaning. The resolver is the test's:
// nothing is looked up off this machine.
func TestCheckSavedURLResolvesNames(t *testing.T) {
	hosts := map[string][]string{ // an /etc/hosts of the test's
		"db.corp.test":       {"127.0.0.1"},
		"vault.corp.test":    {"10.9.8.7"},
		"mixed.corp.test":    {"8.8.8.8", "192.168.1.2"},
		"mapped.corp.test":   {"::ffff:169.254.169.254"},
		"public.example.com": {"8.8.8.8", "2001:4860:4860::8888"},
		"xn--recv.test":      {"8.8.4.4"},
		"ci.allowed.test":    {"10.1.2.3"},
	}
	var asked []string
	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		asked = append(asked, host)
		addrs, ok := hosts[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.0.0.53:53", IsNotFound: true}
		}
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
	allowed, _ := ParseNetwork("10.1.2.0/24")
	deny := NetworkPolicy{Resolve: resolve}
	some := NetworkPolicy{Resolve: resolve, Allow: []netip.Prefix{allowed}}
	cases := []struct {
		url      string
		vars     map[string]string
		reason   string // under deny; "" = allowed
		someOK   bool   // allowed with allow_networks 10.1.2.0/24
		resolved string // the address the refusal keeps for the server log
	}{
		{"http://db.corp.test:5432/x", nil, "Requests to the local network are not allowed", false, "127.0.0.1"},
		{"http://DB.corp.test./x", nil, "Requests to the local network are not allowed", false, "127.0.0.1"},
		{"http://vault.corp.test/x", nil, "Requests to the local network are not allowed", false, "10.9.8.7"},
		{"http://mixed.corp.test/x", nil, "Requests to the local network are not allowed", false, "192.168.1.2"},
		{"http://mapped.corp.test/x", nil, "Requests to the local network are not allowed", false, "169.254.169.254"},
		{"http://{h}/x", map[string]string{"h": "vault.corp.test"}, "Requests to the local network are not allowed", false, "10.9.8.7"},
		{"http://ci.allowed.test/x", nil, "Requests to the local network are not allowed", true, "10.1.2.3"},
		{"http://nothing.corp.test/x", nil, "Host cannot be resolved or invalid", false, ""},
		{"http://public.example.com/hook", nil, "", true, ""},
		{"https://PUBLIC.example.com./hook", nil, "", true, ""},
		{"http://127.0.0.1/x", nil, "Requests to localhost are not allowed", false, ""}, // not looked up
	}
	for _, c := range cases {
		err := deny.CheckSavedURL(context.Background(), c.url, c.vars)
		var be *BlockedError
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%s refused: %v", c.url, err)
		case c.reason != "" && (!errors.As(err, &be) || be.Reason != c.reason):
			t.Errorf("%s: got %v, want it refused: %s", c.url, err, c.reason)
		case c.resolved != "" && (be.Resolved != netip.MustParseAddr(c.resolved) || !strings.Contains(be.Error(), c.resolved)):
			t.Errorf("%s: refusal %v keeps %v, want %s for the server log", c.url, err, be.Resolved, c.resolved)
		}
		if c.vars != nil && be != nil && strings.Contains(be.Error(), c.vars["h"]) {
			t.Errorf("%s: refusal %q names the host from the URL variables", c.url, be)
		}
		if err := some.CheckSavedURL(context.Background(), c.url, c.vars); (err == nil) != c.someOK {
			t.Errorf("%s with allow_networks 10.1.2.0/24: %v", c.url, err)
		}
	}
	// Names are looked up in their IDNA form, as the client dials them.
	asked = nil
	if err := deny.CheckSavedURL(context.Background(), "http://ｐｕｂｌｉｃ.example.com/x", nil); err != nil || len(asked) != 1 || asked[0] != "public.example.com" {
		t.Errorf("full-width name: %v, looked up %q", err, asked)
	}
	// allow_local_requests allows every address: nothing is looked up.
	asked = nil
	local := NetworkPolicy{AllowLocal: true, Resolve: resolve}
	if err := local.CheckSavedURL(context.Background(), "http://nothing.corp.test/x", nil); err != nil || len(asked) != 0 {
		t.Errorf("allow_local_requests: %v, looked up %q", err, asked)
	}
}
