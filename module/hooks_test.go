package module

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
)

// A configured hook whose URL, placeholders and variables filled in, leads
// to a local address fails the config load unless the policy allows it,
// without naming a host that came from a variable.
func TestConfiguredHookURLsAreCheckedAtLoad(t *testing.T) {
	t.Setenv("CI_HOOK_HOST", "10.0.0.5")
	hooks := []*HookConfig{{Name: "ci", URL: "http://{host}/x", Project: "acme/api",
		URLVariables: map[string]string{"host": "{env.CI_HOOK_HOST}"}}}
	_, err := buildHooks(hooks, caddy.NewReplacer(), &delivery.NetworkPolicy{})
	want := "hook ci: url http://{host}/x: blocked: the host from URL variables is a private address"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "10.0.0.5") {
		t.Fatalf("error %v, want it to start with %q", err, want)
	}
	if _, err := buildHooks(hooks, caddy.NewReplacer(), &delivery.NetworkPolicy{AllowLocal: true}); err != nil {
		t.Fatalf("with allow_local_requests: %v", err)
	}
	n, _ := delivery.ParseNetwork("10.0.0.0/24")
	if _, err := buildHooks(hooks, caddy.NewReplacer(), &delivery.NetworkPolicy{Allow: []netip.Prefix{n}}); err != nil {
		t.Fatalf("with allow_networks 10.0.0.0/24: %v", err)
	}
}

// Configured hooks follow the API's rules for headers, tokens and URL
// variables (JSON config skips the Caddyfile's parse-time name check).
func TestBuildHooksRefusesUnsafeHeadersAndControlCharacters(t *testing.T) {
	base := func() *HookConfig {
		return &HookConfig{Name: "ci", URL: "https://ci.example.com/{path}", Project: "acme/api",
			URLVariables: map[string]string{"path": "p"}, CustomHeaders: map[string]string{"X-Team": "platform"}}
	}
	if _, err := buildHooks([]*HookConfig{base()}, caddy.NewReplacer(), &delivery.NetworkPolicy{}); err != nil {
		t.Fatalf("valid hook refused: %v", err)
	}
	cases := map[string]func(c *HookConfig){
		"X_Gitlab_Token":    func(c *HookConfig) { c.CustomHeaders["X_Gitlab_Token"] = "forged" },
		"Transfer-Encoding": func(c *HookConfig) { c.CustomHeaders["Transfer-Encoding"] = "chunked" },
		"Proxy-":            func(c *HookConfig) { c.CustomHeaders["Proxy-Authorization"] = "x" },
		"Webhook-Signature": func(c *HookConfig) { c.CustomHeaders["Webhook-Signature"] = "v1,forged" },
		"Content-Encoding":  func(c *HookConfig) { c.CustomHeaders["Content-Encoding"] = "gzip" },
		"header value":      func(c *HookConfig) { c.CustomHeaders["X-Team"] = "a\x00b" },
		"token":             func(c *HookConfig) { c.Token = "tok\x1b[0m" },
		"URL variable":      func(c *HookConfig) { c.URLVariables["path"] = "p\nq" },
		"signing token":     func(c *HookConfig) { c.SigningToken = "not-whsec" },
		"long template":     func(c *HookConfig) { c.CustomWebhookTemplate = strings.Repeat("x", 4097) },
	}
	for name, change := range cases {
		c := base()
		change(c)
		_, err := buildHooks([]*HookConfig{c}, caddy.NewReplacer(), &delivery.NetworkPolicy{})
		if err == nil || !strings.Contains(err.Error(), "hook ci") {
			t.Errorf("%s: buildHooks = %v, want an error naming the hook", name, err)
		}
	}
}
