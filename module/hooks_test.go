package module

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// Configured hooks follow the API's rules for headers, tokens and URL
// variables (JSON config skips the Caddyfile's parse-time name check).
func TestBuildHooksRefusesUnsafeHeadersAndControlCharacters(t *testing.T) {
	base := func() *HookConfig {
		return &HookConfig{Name: "ci", URL: "https://ci.example.com/{path}", Project: "acme/api",
			URLVariables: map[string]string{"path": "p"}, CustomHeaders: map[string]string{"X-Team": "platform"}}
	}
	if _, err := buildHooks([]*HookConfig{base()}, caddy.NewReplacer()); err != nil {
		t.Fatalf("valid hook refused: %v", err)
	}
	cases := map[string]func(c *HookConfig){
		"X_Gitlab_Token":    func(c *HookConfig) { c.CustomHeaders["X_Gitlab_Token"] = "forged" },
		"Transfer-Encoding": func(c *HookConfig) { c.CustomHeaders["Transfer-Encoding"] = "chunked" },
		"Proxy-":            func(c *HookConfig) { c.CustomHeaders["Proxy-Authorization"] = "x" },
		"header value":      func(c *HookConfig) { c.CustomHeaders["X-Team"] = "a\x00b" },
		"token":             func(c *HookConfig) { c.Token = "tok\x1b[0m" },
		"URL variable":      func(c *HookConfig) { c.URLVariables["path"] = "p\nq" },
	}
	for name, change := range cases {
		c := base()
		change(c)
		_, err := buildHooks([]*HookConfig{c}, caddy.NewReplacer())
		if err == nil || !strings.Contains(err.Error(), "hook ci") {
			t.Errorf("%s: buildHooks = %v, want an error naming the hook", name, err)
		}
	}
}
