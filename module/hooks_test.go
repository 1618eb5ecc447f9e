package module

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/grt-continuation/caddy-webhooks/engine"
)

// A configured hook whose URL, placeholders and variables filled in, leads
// to a local address fails the config load unless the policy allows it,
// without naming a host that came from a variable.
func TestConfiguredHookURLsAreCheckedAtLoad(t *testing.T) {
	t.Setenv("CI_HOOK_HOST", "10.0.0.5")
	hooks := []*HookConfig{{Name: "ci", URL: "http://{host}/x", Project: "acme/api",
		URLVariables: map[string]string{"host": "{env.CI_HOOK_HOST}"}}}
	_, err := buildHooks(hooks, caddy.NewReplacer(), &engine.NetworkPolicy{})
	want := "webhooks: hook ci: url http://{host}/x: blocked: the host from URL variables is a private address"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "10.0.0.5") {
		t.Fatalf("error %v, want it to start with %q", err, want)
	}
	if _, err := buildHooks(hooks, caddy.NewReplacer(), &engine.NetworkPolicy{AllowLocal: true}); err != nil {
		t.Fatalf("with allow_local_requests: %v", err)
	}
	n, _ := engine.ParseNetwork("10.0.0.0/24")
	if _, err := buildHooks(hooks, caddy.NewReplacer(), &engine.NetworkPolicy{Allow: []netip.Prefix{n}}); err != nil {
		t.Fatalf("with allow_networks 10.0.0.0/24: %v", err)
	}
}
