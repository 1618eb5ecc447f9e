package delivery

import (
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// dialHost is a URL's host (url.URL.Hostname) as the HTTP client dials it:
// a name with non-ASCII characters in its IDNA ASCII form, as net/http
// writes it (full-width and circled digits become digits: "１２７．０．０．１"
// is 127.0.0.1). A host IDNA refuses is kept: the client refuses it too.
func dialHost(host string) string {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			if a, err := idna.Lookup.ToASCII(host); err == nil {
				return a
			}
			return host
		}
	}
	return host
}

// hostAddr reads a host as an address the way a resolver reads a numeric
// host: an IPv6 or dotted-decimal address, or one of the forms the C
// library's inet_aton takes (getaddrinfo, and so Ruby, curl and Go's cgo
// resolver, connect to 127.0.0.1 for any of 2130706433, 0x7f000001,
// 0177.0.0.1, 127.1 and 127.000.000.001), with or without one trailing
// dot. ok is false for a name.
func hostAddr(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(host, ".")
	if a, err := netip.ParseAddr(host); err == nil {
		return a, true
	}
	return inetAton(host)
}

// inetAton parses s as inet_aton(3): one to four parts separated by dots,
// each decimal, octal (a leading 0) or hexadecimal (0x); the last part
// fills the bytes the others leave (a.b.c.d, a.b.c with c 16 bits, a.b
// with b 24 bits, a alone 32 bits).
func inetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, 0, 4)
	for _, p := range parts {
		base := 10
		switch {
		case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
			base, p = 16, p[2:]
			if p == "" {
				p = "0" // inet_aton reads a bare 0x as 0
			}
		case len(p) >= 2 && p[0] == '0':
			base, p = 8, p[1:]
		}
		if p == "" || p[0] == '+' || p[0] == '-' {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	last := len(vals) - 1
	for _, v := range vals[:last] {
		if v > 0xff {
			return netip.Addr{}, false
		}
	}
	if vals[last] > 0xffffffff>>(8*last) {
		return netip.Addr{}, false
	}
	var n uint32
	for i, v := range vals[:last] {
		n |= uint32(v) << (24 - 8*i)
	}
	n |= uint32(vals[last])
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
