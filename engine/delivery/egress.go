package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Egress is how deliveries leave when their hook names no proxy of its
// own: through Proxy; else as FromEnvironment says (HTTPS_PROXY,
// HTTP_PROXY and NO_PROXY, read as Go reads them); else, both nil,
// straight to the receiver.
type Egress struct {
	Proxy           *url.URL
	FromEnvironment func(*url.URL) (*url.URL, error)
}

// route is how one request leaves, carried to the transport in the
// request's context: through proxy, or straight to the receiver when there
// is no route. A trusted proxy is the operator's (egress_proxy, the
// environment, a hook in the configuration): the guard does not check its
// own address, which is usually private. A proxy given through the API is
// checked as a receiver would be, or a hook's owner could make "the proxy"
// any local service.
type route struct {
	proxy   *url.URL
	trusted bool
}

type routeKey struct{}

func routeFrom(ctx context.Context) *route {
	r, _ := ctx.Value(routeKey{}).(*route)
	return r
}

// proxyOf is the transport's Proxy function: the request's route.
func proxyOf(req *http.Request) (*url.URL, error) {
	if r := routeFrom(req.Context()); r != nil {
		return r.proxy, nil
	}
	return nil, nil
}

// proxyRefusal is a proxy's answer other than 200 to CONNECT, or its 407 to
// a request it forwards.
type proxyRefusal struct{ status string }

func (e *proxyRefusal) Error() string { return "the egress proxy refused the connection: " + e.status }

// proxyConnectResponse names the proxy's refusal of a tunnel: the transport
// alone would report its bare status text ("Forbidden").
func proxyConnectResponse(_ context.Context, _ *url.URL, _ *http.Request, resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return &proxyRefusal{status: resp.Status}
	}
	return nil
}

// routeFor chooses the route of a request to target for hook h: the hook's
// own proxy (or none, "off"), else the shared one (egress_proxy, or the
// environment's for that URL). The second result is false for a direct
// request.
func routeFor(e *Egress, h *webhook.Hook, target *url.URL) (route, bool, error) {
	switch h.EgressProxy {
	case webhook.EgressOff:
		return route{}, false, nil
	case "":
	default:
		p, err := webhook.ParseProxy(h.EgressProxy)
		return route{proxy: p, trusted: h.ReadOnly}, err == nil, err
	}
	if e.Proxy != nil {
		return route{proxy: e.Proxy, trusted: true}, true, nil
	}
	if e.FromEnvironment != nil {
		p, err := e.FromEnvironment(target)
		if err != nil {
			return route{}, false, fmt.Errorf("reading the proxy environment: %w", err)
		}
		return route{proxy: p, trusted: true}, p != nil, nil
	}
	return route{}, false, nil
}

// checkProxied decides on the final destination of a request a proxy will
// make, before the proxy gets it: name is the host of URL template. The dial-time guard only sees the
// proxy's address, and the proxy resolves the receiver's name itself, so
// the name is resolved here and refused when any address it has is local
// (or when it does not resolve): the proxy's own lookup is the last word,
// a window documented in docs/deployment.md. An address in the URL was
// checked already (checkURL); under allow_local_requests nothing is looked
// up.
func (s *Sender) checkProxied(ctx context.Context, p *NetworkPolicy, template, name string) error {
	if p.AllowLocal {
		return nil
	}
	resolver := s.resolver
	return p.checkName(ctx, template, name, func(ctx context.Context, host string) ([]netip.Addr, error) {
		if resolver == nil {
			return netResolverLookup(ctx, host)
		}
		return resolver.LookupNetIP(ctx, "ip", host)
	})
}

// describeProxyError names a failure of the proxy hop, without the proxy's
// address: GitLab's words have none for it. ok is false for other errors.
func describeProxyError(err error) (string, bool) {
	var refusal *proxyRefusal
	if errors.As(err, &refusal) {
		return refusal.Error(), true
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		return "", false
	}
	var cause string
	var blocked *BlockedError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &blocked):
		cause = reasonLocalNetwork // an API hook's own proxy, refused as a receiver would be
	case errors.As(err, &dnsErr):
		cause = reasonUnresolved
	default:
		cause = innermost(op)
	}
	switch {
	case op.Op == "proxyconnect":
		return "the egress proxy could not be reached: " + cause, true
	case strings.HasPrefix(op.Op, "socks "):
		return "the egress proxy could not connect: " + cause, true
	}
	return "", false
}

// innermost is the text of the deepest cause of a network error, without
// the addresses its wrappers name ("connect: connection refused").
func innermost(op *net.OpError) string {
	for {
		var inner *net.OpError
		if op.Err == nil || !errors.As(op.Err, &inner) {
			break
		}
		op = inner
	}
	if op.Err == nil {
		return op.Op
	}
	return op.Err.Error()
}

// maskedProxy is the route's proxy as it may be logged.
func (r *route) masked() string {
	if r == nil || r.proxy == nil {
		return ""
	}
	return gitlab.MaskURL(r.proxy.String())
}
