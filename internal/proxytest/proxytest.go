// Package proxytest runs forward proxies on loopback for tests: an HTTP
// proxy (CONNECT tunnels and absolute-URI requests, over plain TCP or TLS)
// and a SOCKS5 proxy, each recording what it was asked to forward. A
// proxy resolves receivers' names itself, from its own table, and
// forwards only to the loopback addresses there: tests never dial off the
// machine, whatever names their hooks use.
package proxytest

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Forward is one request a proxy forwarded (or refused).
type Forward struct {
	// Method is CONNECT, the method of a forwarded request, or SOCKS.
	Method string
	// Target is the host:port the client asked for, as it named it.
	Target string
	// User is the user name of the client's credentials; "" without.
	User string
	// Refused says the proxy did not forward it (bad credentials, a
	// target not in its table).
	Refused bool
}

// Proxy is a forward proxy on loopback.
type Proxy struct {
	// Addr is host:port; URL the proxy's URL without credentials.
	Addr, URL string

	hosts      map[string]string // host:port → loopback host:port
	user, pass string            // required credentials; "" none

	mu       sync.Mutex
	forwards []Forward
}

// Forwards returns what the proxy was asked so far.
func (p *Proxy) Forwards() []Forward {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Forward(nil), p.forwards...)
}

func (p *Proxy) record(f Forward) {
	p.mu.Lock()
	p.forwards = append(p.forwards, f)
	p.mu.Unlock()
}

// resolve is the proxy's own lookup: the loopback address of target, or
// false for a target not in its table.
func (p *Proxy) resolve(target string) (string, bool) {
	if a, ok := p.hosts[strings.ToLower(target)]; ok {
		return a, true
	}
	return "", false
}

// Options set up a proxy.
type Options struct {
	// Hosts maps the host:port targets the proxy reaches to loopback
	// addresses (a receiver's name to its test server).
	Hosts map[string]string
	// User and Password are required of clients when User is set.
	User, Password string
	// Cert makes an HTTP proxy an https:// one, with this certificate.
	Cert *tls.Certificate
}

// NewHTTP starts an HTTP forward proxy.
func NewHTTP(t testing.TB, o Options) *Proxy {
	t.Helper()
	p := &Proxy{hosts: lower(o.Hosts), user: o.User, pass: o.Password}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(p.serveHTTP))
	if o.Cert != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*o.Cert}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	p.Addr, p.URL = srv.Listener.Addr().String(), srv.URL
	return p
}

func lower(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// authorized checks Proxy-Authorization; it returns the user named.
func (p *Proxy) authorized(r *http.Request) (string, bool) {
	user, pass, ok := parseBasic(r.Header.Get("Proxy-Authorization"))
	if p.user == "" {
		return user, true
	}
	return user, ok && user == p.user && pass == p.pass
}

func parseBasic(h string) (user, pass string, ok bool) {
	enc, found := strings.CutPrefix(h, "Basic ")
	if !found {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Host
	if r.Method != http.MethodConnect && r.URL.IsAbs() {
		target = r.URL.Host
		if r.URL.Port() == "" {
			target += ":80"
		}
	}
	user, ok := p.authorized(r)
	f := Forward{Method: r.Method, Target: target, User: user}
	if !ok {
		f.Refused = true
		p.record(f)
		w.Header().Set("Proxy-Authenticate", `Basic realm="proxytest"`)
		http.Error(w, "proxy credentials required", http.StatusProxyAuthRequired)
		return
	}
	addr, known := p.resolve(target)
	f.Refused = !known
	p.record(f)
	if !known {
		http.Error(w, "unknown host", http.StatusBadGateway)
		return
	}
	if r.Method == http.MethodConnect {
		p.tunnel(w, addr)
		return
	}
	// A plain request: forward it as is, to the address the proxy found.
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Host = addr
	out.Header.Del("Proxy-Authorization")
	resp, err := direct.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (p *Proxy) tunnel(w http.ResponseWriter, addr string) {
	up, err := net.Dial("tcp", addr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusOK)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	splice(conn, brw.Reader, up)
}

// splice copies both ways until either side ends.
func splice(client net.Conn, buffered *bufio.Reader, up net.Conn) {
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, buffered); done <- struct{}{} }()
	go func() { io.Copy(client, up); done <- struct{}{} }()
	<-done
	client.Close()
	up.Close()
	<-done
}

// direct forwards plain requests, whatever proxy the environment names.
var direct = &http.Transport{Proxy: nil}
