package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// clients are the HTTP clients of one network policy, one per TLS profile:
// verifying receivers' certificates or not (a hook's
// enable_ssl_verification), and one per client certificate and CA set of
// the hooks that have them. Connections are never shared between policies
// (a receiver reached while local requests were allowed is not reached
// over a kept-alive connection after they are not) nor between profiles (a
// connection made with one hook's client certificate never serves
// another's).
type clients struct {
	key        string
	policy     *NetworkPolicy
	resolver   *net.Resolver
	proxyRoots *x509.CertPool

	mu       sync.Mutex
	profiles map[string]*http.Client
}

// maxProfiles bounds the clients kept: past it (certificates rotated many
// times over), the idle connections of all go and they are made anew.
const maxProfiles = 1024

// clientsFor returns the clients of policy p, replacing (and closing the
// idle connections of) those of another policy.
func (s *Sender) clientsFor(p *NetworkPolicy) *clients {
	key := p.key()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != nil && s.current.key == key {
		return s.current
	}
	if s.current != nil {
		s.current.closeIdle()
	}
	policy := *p
	policy.Allow = slices.Clone(p.Allow)
	s.current = &clients{key: key, policy: &policy, resolver: s.resolver, proxyRoots: s.proxyRoots,
		profiles: map[string]*http.Client{}}
	return s.current
}

// CloseIdle drops idle keep-alive connections.
func (s *Sender) CloseIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != nil {
		s.current.closeIdle()
	}
}

func (c *clients) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.profiles {
		cl.CloseIdleConnections()
	}
}

// forHook returns the client of h's TLS profile.
func (c *clients) forHook(h *webhook.Hook) (*http.Client, error) {
	key := "verified"
	if !h.EnableSSLVerification {
		key = "unverified"
	}
	var base *tls.Config
	if !h.TLS.IsZero() {
		var err error
		if base, err = h.TLS.Config(); err != nil {
			return nil, err
		}
		key += " " + h.TLS.Fingerprint()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.profiles[key]; ok {
		return cl, nil
	}
	if len(c.profiles) >= maxProfiles {
		for k, cl := range c.profiles {
			cl.CloseIdleConnections()
			delete(c.profiles, k)
		}
	}
	cfg := &tls.Config{}
	if base != nil {
		cfg = base.Clone()
	}
	cfg.InsecureSkipVerify = !h.EnableSSLVerification //nolint:gosec // per-hook choice, as GitLab's enable_ssl_verification
	cl := newClient(cfg, c.policy, c.resolver, c.proxyRoots)
	c.profiles[key] = cl
	return cl, nil
}

// newClient builds a client whose connections are checked against policy
// (dialguard.go) and leave as each request's route says (egress.go).
func newClient(tlsConfig *tls.Config, policy *NetworkPolicy, resolver *net.Resolver, proxyRoots *x509.CertPool) *http.Client {
	// Checked on the resolved address of each connection attempt.
	guarded := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: resolver,
		ControlContext: policy.control}
	// For the operator's proxies, wherever they are (usually a private
	// address): the destination was checked before the request was handed
	// to them.
	open := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: resolver}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if r := routeFrom(ctx); r != nil && r.trusted {
			return open.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
	t := &http.Transport{
		Proxy:                  proxyOf,
		OnProxyConnectResponse: proxyConnectResponse,
		DialContext:            dial,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		TLSClientConfig:        tlsConfig,
	}
	// TLS connections the transport dials itself: to the receiver, with
	// the hook's TLS settings, or to an https proxy, verified against the
	// system's roots whatever the hook's settings (its CA, its client
	// certificate and its enable_ssl_verification are for the receiver).
	t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cfg := t.TLSClientConfig.Clone() // with the ALPN protocols the transport set
		if r := routeFrom(ctx); r != nil && r.proxy != nil {
			cfg = &tls.Config{RootCAs: proxyRoots, NextProtos: []string{"http/1.1"}}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
	return &http.Client{
		Transport: t,
		// Redirects are not followed: the hook's URL is the only receiver.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
