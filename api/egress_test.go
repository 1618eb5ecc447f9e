package api

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// A hook's own egress proxy is refused on save when the network policy
// would refuse it as a receiver: it would carry the hook's requests into
// the local network. Allowed networks, allow_local_requests and "off" pass.
func TestSavingAHookChecksItsEgressProxy(t *testing.T) {
	ns := webhook.Namespace{Kind: webhook.KindProject, Path: "acme/api", ID: 1}
	rec := func(proxy string) *webhook.HookRecord {
		return &webhook.HookRecord{URL: "https://203.0.114.1/hook", EgressProxy: proxy, EnableSSLVerification: true,
			Triggers: []string{"push"}}
	}
	loop, _ := delivery.ParseNetwork("127.0.0.0/8")
	for _, c := range []struct {
		proxy  string
		policy delivery.NetworkPolicy
		want   string
	}{
		{"http://u:p@127.0.0.1:3128", delivery.NetworkPolicy{}, "Egress proxy is blocked: Requests to localhost are not allowed"},
		{"socks5://[::ffff:169.254.169.254]:1080", delivery.NetworkPolicy{}, "Egress proxy is blocked: Requests to the link local network are not allowed"},
		{"http://localhost:3128", delivery.NetworkPolicy{}, "Egress proxy is blocked: Requests to localhost are not allowed"},
		{"http://127.0.0.1:3128", delivery.NetworkPolicy{Allow: []netip.Prefix{loop}}, ""},
		{"http://127.0.0.1:3128", delivery.NetworkPolicy{AllowLocal: true}, ""},
		{"http://8.8.8.8:3128", delivery.NetworkPolicy{}, ""},
		{webhook.EgressOff, delivery.NetworkPolicy{}, ""},
	} {
		err := validate(context.Background(), rec(c.proxy), ns, true, &c.policy)
		var ve *validationError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.proxy, err)
		case c.want != "" && (!errors.As(err, &ve) || ve.msg != c.want):
			t.Errorf("%s: %v, want %q", c.proxy, err, c.want)
		}
	}
}

// The client certificate and key follow the rule of every secret: a change
// that moves the hook to another receiver clears them unless the change
// gives them again; the CA and the egress proxy stay (neither goes to the
// receiver).
func TestResetSecretsClearsTheClientCertificate(t *testing.T) {
	base := func() *webhook.HookRecord {
		return &webhook.HookRecord{URL: "https://a.example/", ClientCert: "cert", ClientKey: "key", CA: "ca",
			EgressProxy: "http://u:p@proxy:3128"}
	}
	for _, c := range []struct {
		name    string
		newURL  string
		g       given
		keepTLS bool
	}{
		{"unchanged URL", "https://a.example/", given{}, true},
		{"new URL, same receiver (a new URL template resets, as GitLab's token)", "https://a.example/x", given{}, false},
		{"another receiver", "https://b.example/", given{}, false},
		{"another receiver with a new certificate", "https://b.example/", given{clientTLS: true}, true},
	} {
		r := base()
		oldURL, oldVars := r.URL, maps.Clone(r.URLVariables)
		r.URL = c.newURL
		resetSecrets(r, oldURL, oldVars, c.g)
		if (r.ClientKey != "" && r.ClientCert != "") != c.keepTLS || r.CA != "ca" || r.EgressProxy == "" {
			t.Errorf("%s: cert %q key %q ca %q proxy %q", c.name, r.ClientCert, r.ClientKey, r.CA, r.EgressProxy)
		}
	}
}
