package delivery

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func TestNetworkPolicyRefusesLocalAddresses(t *testing.T) {
	cases := map[string]string{ // address → how the refusal names it; "" = allowed
		"127.0.0.1":            "a loopback address",
		"127.9.9.9":            "a loopback address",
		"::1":                  "a loopback address",
		"::ffff:127.0.0.1":     "a loopback address",
		"10.1.2.3":             "a private address",
		"172.16.0.1":           "a private address",
		"172.31.255.254":       "a private address",
		"192.168.1.1":          "a private address",
		"::ffff:192.168.1.1":   "a private address",
		"fd12:3456::1":         "a private address",
		"169.254.169.254":      "a cloud metadata address",
		"fd00:ec2::254":        "a cloud metadata address",
		"100.100.100.200":      "a cloud metadata address",
		"169.254.1.1":          "a link-local address",
		"fe80::1":              "a link-local address",
		"100.64.0.1":           "a shared (CGNAT) address",
		"0.0.0.0":              "an unspecified address",
		"::":                   "an unspecified address",
		"224.0.0.1":            "a multicast or broadcast address",
		"8.8.8.8":              "",
		"172.32.0.1":           "",
		"100.128.0.1":          "",
		"2001:4860:4860::8888": "",
	}
	var deny NetworkPolicy
	allowAll := NetworkPolicy{AllowLocal: true}
	for s, kind := range cases {
		addr := netip.MustParseAddr(s)
		err := deny.Check(addr)
		var be *BlockedError
		switch {
		case kind == "" && err != nil:
			t.Errorf("%s refused: %v", s, err)
		case kind != "" && (!errors.As(err, &be) || be.Kind != kind):
			t.Errorf("%s: got %v, want it refused as %s", s, err, kind)
		}
		if err := allowAll.Check(addr); err != nil {
			t.Errorf("%s with allow_local_requests: %v", s, err)
		}
	}
	err := deny.Check(netip.MustParseAddr("127.0.0.1"))
	if want := "blocked: 127.0.0.1 is a loopback address; allow it with allow_local_requests"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error text %q, want it to start with %q", err, want)
	}

	// allow_networks opens exactly the networks given.
	n1, _ := ParseNetwork("10.1.2.0/24")
	n2, _ := ParseNetwork("::ffff:127.0.0.1") // a single address, mapped form
	some := NetworkPolicy{Allow: []netip.Prefix{n1, n2}}
	for s, allowed := range map[string]bool{"10.1.2.77": true, "10.1.3.1": false, "127.0.0.1": true, "127.0.0.2": false, "169.254.169.254": false} {
		if err := some.Check(netip.MustParseAddr(s)); (err == nil) != allowed {
			t.Errorf("allow_networks 10.1.2.0/24 127.0.0.1: %s → %v", s, err)
		}
	}
	if _, err := ParseNetwork("10.0.0.0/33"); err == nil {
		t.Error("10.0.0.0/33 parsed")
	}
}

// countingServer counts the requests it gets and answers with h.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func ok(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }

func sendOnce(s *Sender, cfg *SendConfig, url string) Result {
	h := &webhook.Hook{ID: 1, URL: url, EnableSSLVerification: true}
	return s.Send(context.Background(), cfg, &Request{Hook: h, EventID: "ev", Chain: "chain", Trigger: gitlab.Push, Body: []byte(`{"object_kind":"push"}`)})
}

// A receiver on the local network is refused at dial time unless allowed,
// whether named by address or by a name that resolves to it.
func TestSendRefusesLocalReceiversUnlessAllowed(t *testing.T) {
	srv, hits := countingServer(t, ok)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dns := fakeDNS(t, "127.0.0.1")
	s := NewSender()
	s.resolver = dns

	// A literal address or a localhost name is refused before any
	// connection, with GitLab's reason; a name is refused on the address
	// it resolved to, which the answer does not name.
	cases := []struct{ name, url, reason string }{
		{"ip", srv.URL + "/hook", "Requests to localhost are not allowed"},
		{"localhost", fmt.Sprintf("http://localhost:%d/hook", port), "Requests to localhost are not allowed"},
		{"name → 127.0.0.1", fmt.Sprintf("http://receiver.rebind.test:%d/hook", port), "Requests to the local network are not allowed"},
		{"ipv4-mapped ipv6", fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/hook", port), "Requests to localhost are not allowed"},
	}
	urls := map[string]string{}
	cfg := &SendConfig{Timeout: 2 * time.Second, MaxResponseBody: 1024}
	for _, c := range cases {
		urls[c.name] = c.url
		res := sendOnce(s, cfg, c.url)
		if want := "POST " + c.url + ": " + c.reason; res.Err == nil || res.Err.Error() != want {
			t.Errorf("%s: result %+v, want the refusal %q", c.name, res, want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the receiver got %d requests while local requests were refused", n)
	}

	cfg.Network = NetworkPolicy{AllowLocal: true}
	for name, url := range urls {
		if res := sendOnce(s, cfg, url); !res.Success() {
			t.Errorf("%s with allow_local_requests: %+v", name, res)
		}
	}
	loop, _ := ParseNetwork("127.0.0.1")
	cfg.Network = NetworkPolicy{Allow: []netip.Prefix{loop}}
	if res := sendOnce(s, cfg, urls["name → 127.0.0.1"]); !res.Success() {
		t.Errorf("with allow_networks 127.0.0.1: %+v", res)
	}
	// Turning it off again does not reuse a kept-alive connection (by
	// name: a literal address is refused before any connection).
	cfg.Network = NetworkPolicy{}
	before := hits.Load()
	if res := sendOnce(s, cfg, urls["name → 127.0.0.1"]); res.Err == nil {
		t.Errorf("after allow_local_requests was turned off: %+v", res)
	}
	if hits.Load() != before {
		t.Error("a kept-alive connection reached the receiver after local requests were refused again")
	}
}

func TestSendRefusesCloudMetadata(t *testing.T) {
	start := time.Now()
	res := sendOnce(NewSender(), &SendConfig{Timeout: 5 * time.Second, MaxResponseBody: 1024}, "http://169.254.169.254/latest/meta-data/")
	if res.Err == nil || res.Err.Error() != "POST http://169.254.169.254/latest/meta-data/: Requests to the link local network are not allowed" ||
		!strings.Contains(res.detail.Error(), "blocked: 169.254.169.254 is a cloud metadata address") {
		t.Fatalf("result %+v, want the metadata address refused", res)
	}
	if time.Since(start) > time.Second {
		t.Errorf("refusal took %s: it must not wait for a connection", time.Since(start))
	}
}

// refusingPort is a loopback port that refuses connections for the rest of
// the test: bound, so no other process gets it (a port closed after it was
// picked could be taken, and then answer), but not listening.
func refusingPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("binding a loopback port: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// What a refused or failed attempt answers (the hook's log, the test
// endpoint) names the rule, never an address the attempt learnt: the one a
// name resolved to, or the resolver's. The server log keeps them at debug
// level (detail).
func TestSendAnswersNameTheRuleNotTheNetwork(t *testing.T) {
	closedPort := refusingPort(t)
	loop, _ := ParseNetwork("127.0.0.1")
	cases := []struct {
		name     string
		resolver *net.Resolver
		policy   NetworkPolicy
		url      string
		answer   string
		detail   string // what the debug log keeps
	}{
		{"internal name → loopback", fakeDNS(t, "127.0.0.1"), NetworkPolicy{}, "http://db.corp.test:5432/x",
			"Requests to the local network are not allowed", "127.0.0.1 is a loopback address"},
		{"internal name → private", fakeDNS(t, "10.9.8.7"), NetworkPolicy{}, "http://vault.corp.test/x",
			"Requests to the local network are not allowed", "10.9.8.7 is a private address"},
		{"internal name → metadata", fakeDNS(t, "169.254.169.254"), NetworkPolicy{}, "http://meta.corp.test/x",
			"Requests to the local network are not allowed", "169.254.169.254 is a cloud metadata address"},
		{"unresolvable name", nxDNS(t), NetworkPolicy{}, "http://nothing.corp.test/x",
			"Host cannot be resolved or invalid", "no such host"},
		{"allowed name, closed port", fakeDNS(t, "127.0.0.1"), NetworkPolicy{Allow: []netip.Prefix{loop}},
			fmt.Sprintf("http://closed.corp.test:%d/x", closedPort), "connect: connection refused", "127.0.0.1"},
	}
	cfg := &SendConfig{Timeout: 2 * time.Second, MaxResponseBody: 1024}
	for _, c := range cases {
		s := NewSender()
		s.resolver = c.resolver
		cfg.Network = c.policy
		res := sendOnce(s, cfg, c.url)
		if want := "POST " + c.url + ": " + c.answer; res.Err == nil || res.Err.Error() != want {
			t.Errorf("%s: answer %v, want %q", c.name, res.Err, want)
		}
		if res.detail == nil || !strings.Contains(res.detail.Error(), c.detail) {
			t.Errorf("%s: detail %v, want it to keep %q", c.name, res.detail, c.detail)
		}
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	target, targetHits := countingServer(t, ok)
	redirect, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusTemporaryRedirect)
	})
	cfg := &SendConfig{Timeout: 2 * time.Second, MaxResponseBody: 1024, Network: NetworkPolicy{AllowLocal: true}}
	res := sendOnce(NewSender(), cfg, redirect.URL+"/hook")
	if res.Status != http.StatusTemporaryRedirect || res.Success() || res.Outcome() != "server_error" {
		t.Fatalf("result %d %v (%s), want the 307 itself, as a failure", res.Status, res.Err, res.Outcome())
	}
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("the redirect was followed (%d requests to its target)", n)
	}
}

// A receiver that answers with an endless body costs at most the cap (and
// a bounded drain), not the timeout or the memory.
func TestSendReadsResponseBodiesUpToTheCap(t *testing.T) {
	var written atomic.Int64
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 32<<10))
		for i := 0; i < 32<<10; i++ { // up to 1 GiB, until the client hangs up
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	cfg := &SendConfig{Timeout: 10 * time.Second, MaxResponseBody: 8 << 10, Network: NetworkPolicy{AllowLocal: true}}
	res := sendOnce(NewSender(), cfg, srv.URL)
	if !res.Success() || len(res.Body) != 8<<10 {
		t.Fatalf("result %d %v with a %d-byte body, want 200 with the first 8 KiB", res.Status, res.Err, len(res.Body))
	}
	if res.Duration > 2*time.Second {
		t.Errorf("reading took %s", res.Duration)
	}
	time.Sleep(100 * time.Millisecond) // let the server notice the hang-up
	if w := written.Load(); w > 64<<20 {
		t.Errorf("the receiver wrote %d bytes before the sender hung up", w)
	}
	t.Logf("sender kept %d bytes; receiver managed to write %d before the hang-up", len(res.Body), written.Load())
}

func TestSendRefusesPayloadsOverMaxPayload(t *testing.T) {
	srv, hits := countingServer(t, ok)
	cfg := &SendConfig{Timeout: 2 * time.Second, MaxResponseBody: 1024, MaxPayload: 10, Network: NetworkPolicy{AllowLocal: true}}
	res := sendOnce(NewSender(), cfg, srv.URL)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "larger than max_payload") || hits.Load() != 0 {
		t.Fatalf("result %+v, %d requests: want an internal error and nothing sent", res, hits.Load())
	}
}

// fakeDNS is a DNS server on loopback that answers every A query with
// ipv4 and every other query with no records; it returns a resolver that
// uses it, so tests never depend on real DNS.
func fakeDNS(t *testing.T, ipv4 string) *net.Resolver {
	ip := netip.MustParseAddr(ipv4).As4()
	return dnsServer(t, func(q []byte) []byte { return dnsAnswer(q, ip) })
}

// nxDNS is a resolver whose every answer is "no such name" (NXDOMAIN),
// from a DNS server on loopback.
func nxDNS(t *testing.T) *net.Resolver {
	return dnsServer(t, func(q []byte) []byte {
		if len(q) < 12 {
			return nil
		}
		resp := append([]byte{}, q...)
		binary.BigEndian.PutUint16(resp[2:], 0x8183) // answer, recursion available, NXDOMAIN
		clear(resp[6:12])                            // no records
		return resp
	})
}

// dnsServer runs a DNS server on loopback that replies to each query with
// answer's reply (none when nil), and returns a resolver that asks it.
func dnsServer(t *testing.T, answer func(q []byte) []byte) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := answer(buf[:n]); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// dnsAnswer builds the reply to a one-question query.
func dnsAnswer(q []byte, ip [4]byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	end := 12
	for end < len(q) && q[end] != 0 {
		end += int(q[end]) + 1
	}
	end += 5 // the root label, type and class
	if end > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[end-4:])
	resp := append([]byte{}, q[:end]...)
	binary.BigEndian.PutUint16(resp[2:], 0x8180) // answer, recursion available, no error
	binary.BigEndian.PutUint16(resp[8:], 0)      // no authority
	binary.BigEndian.PutUint16(resp[10:], 0)     // no additional records
	if qtype != 1 {
		binary.BigEndian.PutUint16(resp[6:], 0)
		return resp
	}
	binary.BigEndian.PutUint16(resp[6:], 1)
	resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
	return append(resp, ip[:]...)
}
