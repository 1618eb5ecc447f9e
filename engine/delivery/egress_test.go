package delivery

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/internal/proxytest"
	"github.com/grt-continuation/caddy-webhooks/internal/tlstest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// publicIP is what the test DNS gives the receivers' names: a public
// address, never dialled (the proxies reach the receivers on loopback).
const publicIP = "93.184.216.34"

// namesDNS is a loopback DNS server answering the names given with their
// IPv4 address and any other with none.
func namesDNS(t *testing.T, names map[string]string) *net.Resolver {
	return dnsServer(t, func(q []byte) []byte {
		var labels []string
		for i := 12; i < len(q) && q[i] != 0; i += int(q[i]) + 1 {
			if i+1+int(q[i]) > len(q) {
				return nil
			}
			labels = append(labels, string(q[i+1:i+1+int(q[i])]))
		}
		ip, ok := names[strings.ToLower(strings.Join(labels, "."))]
		if !ok {
			ip = "0.0.0.0" // answered, but refused by the guard as unspecified
		}
		return dnsAnswer(q, netip.MustParseAddr(ip).As4())
	})
}

// egressFixture is a plain receiver and a TLS one (its certificate from a
// private CA, for receiver.example), reached by name through proxies that
// map the names to them.
type egressFixture struct {
	plain, secure *httptest.Server
	hits          chan string // path of each request a receiver got
	ca            *tlstest.CA
	plainHost     string // receiver.example:<port>
	secureHost    string
	hosts         map[string]string
}

func newEgressFixture(t *testing.T) *egressFixture {
	f := &egressFixture{hits: make(chan string, 16), ca: tlstest.NewCA(t, "receivers' private CA")}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.hits <- r.URL.Path })
	f.plain = httptest.NewServer(h)
	t.Cleanup(f.plain.Close)
	f.secure = httptest.NewUnstartedServer(h)
	f.secure.TLS = &tls.Config{Certificates: []tls.Certificate{f.ca.Server(t, "receiver.example").TLS}}
	f.secure.StartTLS()
	t.Cleanup(f.secure.Close)
	f.plainHost = "receiver.example:" + port(f.plain)
	f.secureHost = "receiver.example:" + port(f.secure)
	f.hosts = map[string]string{f.plainHost: f.plain.Listener.Addr().String(), f.secureHost: f.secure.Listener.Addr().String()}
	return f
}

func port(s *httptest.Server) string { return fmt.Sprint(s.Listener.Addr().(*net.TCPAddr).Port) }

func (f *egressFixture) hook(id int64, rawURL string) *webhook.Hook {
	return &webhook.Hook{ID: id, URL: rawURL, EnableSSLVerification: true, Token: "tok-s3cret", ReadOnly: true,
		TLS: &webhook.ClientTLS{CA: f.ca.PEM}}
}

func (f *egressFixture) send(t *testing.T, s *Sender, cfg *SendConfig, h *webhook.Hook) Result {
	t.Helper()
	return s.Send(context.Background(), cfg, &Request{Hook: h, EventID: "ev", Chain: "ev", Trigger: gitlab.Push, Body: []byte(`{}`), Attempt: 1})
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Deliveries through the operator's proxy (egress_proxy, with
// credentials): a plain http receiver by forwarding, an https one through
// a CONNECT tunnel, verified with its hook's CA. The proxy is asked for the
// receiver by name (it does the final lookup), and its credentials never
// show in what the attempt records.
func TestSendThroughTheOperatorsHTTPProxy(t *testing.T) {
	f := newEgressFixture(t)
	proxy := proxytest.NewHTTP(t, proxytest.Options{Hosts: f.hosts, User: "egress", Password: "proxy-s3cret"})
	s := &Sender{resolver: namesDNS(t, map[string]string{"receiver.example": publicIP})}
	cfg := &SendConfig{Timeout: 5 * time.Second, MaxResponseBody: 1024,
		Egress: Egress{Proxy: mustURL(t, "http://egress:proxy-s3cret@"+proxy.Addr)}}

	for _, c := range []struct{ url, method, target string }{
		{"http://" + f.plainHost + "/plain", http.MethodPost, f.plainHost},
		{"https://" + f.secureHost + "/secure", http.MethodConnect, f.secureHost},
	} {
		res := f.send(t, s, cfg, f.hook(1, c.url))
		if !res.Success() {
			t.Fatalf("%s through the proxy: %+v", c.url, res)
		}
		if got := <-f.hits; !strings.HasSuffix(c.url, got) {
			t.Errorf("receiver got %s, want %s", got, c.url)
		}
		fw := proxy.Forwards()
		if last := fw[len(fw)-1]; last.Method != c.method || last.Target != c.target || last.User != "egress" || last.Refused {
			t.Errorf("proxy forwarded %+v, want %s %s for user egress", last, c.method, c.target)
		}
		if strings.Contains(fmt.Sprint(res.RequestHeader), "proxy-s3cret") || strings.Contains(res.Proxy, "proxy-s3cret") ||
			res.Proxy != "http://*****:*****@"+proxy.Addr {
			t.Errorf("the attempt shows the proxy's credentials: proxy %q, headers %v", res.Proxy, res.RequestHeader)
		}
	}

	// Wrong credentials: the proxy's refusal is an internal error (retried),
	// not the receiver's 4xx, for a forwarded request and for a tunnel.
	cfg.Egress.Proxy = mustURL(t, "http://egress:wrong@"+proxy.Addr)
	for _, u := range []string{"http://" + f.plainHost + "/", "https://" + f.secureHost + "/"} {
		res := f.send(t, s, cfg, f.hook(1, u))
		if want := "POST " + u + ": the egress proxy refused the connection: 407 Proxy Authentication Required"; res.Err == nil || res.Err.Error() != want || res.Status != 0 {
			t.Errorf("with wrong credentials: %d %v, want %q", res.Status, res.Err, want)
		}
	}
	// A proxy that is down: named as such, without its address.
	down := closedAddr(t)
	cfg.Egress.Proxy = mustURL(t, "http://"+down)
	res := f.send(t, s, cfg, f.hook(1, "http://"+f.plainHost+"/"))
	if want := "POST http://" + f.plainHost + "/: the egress proxy could not be reached: connect: connection refused"; res.Err == nil || res.Err.Error() != want {
		t.Errorf("proxy down: %v, want %q", res.Err, want)
	}
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The guard decides on the final destination before a request is handed
// to a proxy: an address in the URL, or a name that resolves to a local
// address or not at all, is refused, and the proxy is never asked.
// allow_local_requests looks nothing up.
func TestSendRefusesLocalDestinationsBeforeTheProxy(t *testing.T) {
	f := newEgressFixture(t)
	hosts := map[string]string{"intranet.example:80": f.plain.Listener.Addr().String()}
	for k, v := range f.hosts {
		hosts[k] = v
	}
	proxy := proxytest.NewHTTP(t, proxytest.Options{Hosts: hosts})
	s := &Sender{resolver: namesDNS(t, map[string]string{"receiver.example": publicIP, "intranet.example": "10.1.2.3"})}
	cfg := &SendConfig{Timeout: 5 * time.Second, MaxResponseBody: 1024, Egress: Egress{Proxy: mustURL(t, proxy.URL)}}
	for _, c := range []struct{ url, reason, detail string }{
		{"http://127.0.0.1:" + port(f.plain) + "/", "Requests to localhost are not allowed", "loopback"},
		{"http://[::ffff:10.0.0.1]/", "Requests to the local network are not allowed", "private"},
		{"http://intranet.example/", "Requests to the local network are not allowed", "10.1.2.3"},
		{"http://nowhere.example/", "Requests to the local network are not allowed", "0.0.0.0"}, // no address the guard accepts
	} {
		res := f.send(t, s, cfg, f.hook(1, c.url))
		if want := "POST " + c.url + ": " + c.reason; res.Err == nil || res.Err.Error() != want {
			t.Errorf("%s: %v, want %q", c.url, res.Err, want)
		}
		if res.detail == nil || !strings.Contains(res.detail.Error(), c.detail) {
			t.Errorf("%s: detail %v, want it to name %s", c.url, res.detail, c.detail)
		}
	}
	s.resolver = nxDNS(t)
	res := f.send(t, s, cfg, f.hook(1, "http://"+f.plainHost+"/"))
	if want := "POST http://" + f.plainHost + "/: Host cannot be resolved or invalid"; res.Err == nil || res.Err.Error() != want {
		t.Errorf("unresolvable name: %v, want %q", res.Err, want)
	}
	if fw := proxy.Forwards(); len(fw) != 0 {
		t.Fatalf("the proxy was asked for refused destinations: %+v", fw)
	}
	// allow_local_requests: no lookup (the resolver answers nothing), the
	// proxy is asked.
	cfg.Network = NetworkPolicy{AllowLocal: true}
	if res := f.send(t, s, cfg, f.hook(1, "http://"+f.plainHost+"/ok")); !res.Success() {
		t.Fatalf("with allow_local_requests: %+v", res)
	}
	<-f.hits
}

// A hook's own proxy: socks5 (the proxy resolves the name), "off" to go
// straight to the receiver past the shared proxy, and one set through the
// API, which the guard checks as a receiver: "the proxy" must not be a
// local service of the operator's network.
func TestSendThroughAHooksOwnProxy(t *testing.T) {
	f := newEgressFixture(t)
	socks := proxytest.NewSOCKS5(t, proxytest.Options{Hosts: f.hosts, User: "s", Password: "socks-s3cret"})
	shared := proxytest.NewHTTP(t, proxytest.Options{Hosts: f.hosts})
	s := &Sender{resolver: namesDNS(t, map[string]string{"receiver.example": publicIP, "direct.example": "127.0.0.1"})}
	loop, _ := ParseNetwork("127.0.0.1")
	cfg := &SendConfig{Timeout: 5 * time.Second, MaxResponseBody: 1024, Egress: Egress{Proxy: mustURL(t, shared.URL)}}

	h := f.hook(1, "https://"+f.secureHost+"/socks")
	h.EgressProxy = "socks5://s:socks-s3cret@" + socks.Addr
	if res := f.send(t, s, cfg, h); !res.Success() {
		t.Fatalf("through socks5: %+v", res)
	}
	<-f.hits
	if fw := socks.Forwards(); len(fw) != 1 || fw[0].Target != f.secureHost || fw[0].User != "s" {
		t.Errorf("socks proxy forwarded %+v, want %s by name", fw, f.secureHost)
	}

	direct := f.hook(2, "http://direct.example:"+port(f.plain)+"/direct")
	direct.EgressProxy = webhook.EgressOff
	cfg.Network = NetworkPolicy{Allow: []netip.Prefix{loop}}
	if res := f.send(t, s, cfg, direct); !res.Success() {
		t.Fatalf("egress_proxy off: %+v", res)
	}
	<-f.hits

	api := f.hook(3, "http://"+f.plainHost+"/api")
	api.ReadOnly, api.EgressProxy = false, shared.URL
	cfg.Network = NetworkPolicy{}
	res := f.send(t, s, cfg, api)
	if want := "POST http://" + f.plainHost + "/api: the egress proxy could not be reached: Requests to the local network are not allowed"; res.Err == nil || res.Err.Error() != want {
		t.Errorf("an API hook's proxy on loopback: %v, want %q", res.Err, want)
	}
	if fw := shared.Forwards(); len(fw) != 0 {
		t.Errorf("the shared proxy was used: %+v", fw)
	}
	cfg.Network = NetworkPolicy{Allow: []netip.Prefix{loop}} // the operator allows that network
	if res := f.send(t, s, cfg, api); !res.Success() {
		t.Fatalf("an API hook's proxy in allow_networks: %+v", res)
	}
	<-f.hits
}

// HTTPS_PROXY, HTTP_PROXY and NO_PROXY, as Go reads them: a receiver that
// NO_PROXY names goes straight (checked at dial time), the others through
// the proxy of their scheme.
func TestSendFollowsTheProxyEnvironment(t *testing.T) {
	f := newEgressFixture(t)
	proxy := proxytest.NewHTTP(t, proxytest.Options{Hosts: f.hosts})
	s := &Sender{resolver: namesDNS(t, map[string]string{"receiver.example": publicIP, "direct.example": "127.0.0.1"})}
	loop, _ := ParseNetwork("127.0.0.1")
	env := &httpproxy.Config{HTTPProxy: proxy.URL, HTTPSProxy: proxy.URL, NoProxy: "direct.example"}
	cfg := &SendConfig{Timeout: 5 * time.Second, MaxResponseBody: 1024, Network: NetworkPolicy{Allow: []netip.Prefix{loop}},
		Egress: Egress{FromEnvironment: env.ProxyFunc()}}
	for _, u := range []string{"http://" + f.plainHost + "/a", "https://" + f.secureHost + "/b", "http://direct.example:" + port(f.plain) + "/c"} {
		if res := f.send(t, s, cfg, f.hook(1, u)); !res.Success() {
			t.Fatalf("%s: %+v", u, res)
		}
		<-f.hits
	}
	fw := proxy.Forwards()
	if len(fw) != 2 || fw[0].Target != f.plainHost || fw[1].Method != http.MethodConnect || fw[1].Target != f.secureHost {
		t.Errorf("proxy forwarded %+v, want the two receivers NO_PROXY does not name", fw)
	}
}

// An https proxy is verified as itself, whatever the hook's TLS settings:
// a hook with a private CA for its receiver (which the proxy's
// certificate is not signed by) still reaches it through the proxy.
func TestSendThroughAnHTTPSProxy(t *testing.T) {
	f := newEgressFixture(t)
	proxyCA := tlstest.NewCA(t, "the operator's CA")
	cert := proxyCA.Server(t, "127.0.0.1").TLS
	proxy := proxytest.NewHTTP(t, proxytest.Options{Hosts: f.hosts, Cert: &cert})
	s := &Sender{resolver: namesDNS(t, map[string]string{"receiver.example": publicIP}), proxyRoots: proxyCA.Pool()}
	cfg := &SendConfig{Timeout: 5 * time.Second, MaxResponseBody: 1024, Egress: Egress{Proxy: mustURL(t, proxy.URL)}}
	for _, u := range []string{"https://" + f.secureHost + "/tls-in-tls", "http://" + f.plainHost + "/plain"} {
		if res := f.send(t, s, cfg, f.hook(1, u)); !res.Success() {
			t.Fatalf("%s through an https proxy: %+v", u, res)
		}
		<-f.hits
	}
	// The proxy's certificate is checked: with the system's roots it fails.
	s2 := &Sender{resolver: s.resolver}
	if res := f.send(t, s2, cfg, f.hook(1, "https://"+f.secureHost+"/")); res.Err == nil ||
		!strings.Contains(res.Err.Error(), "certificate signed by unknown authority") {
		t.Errorf("an https proxy whose certificate is not trusted: %+v", res)
	}
}
