package module

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// Bad retry schedules and auto-disable rules in the JSON config are
// refused when it loads, saying which setting and why.
func TestDeliveryPolicySettingsAreCheckedAtLoad(t *testing.T) {
	for _, c := range []struct{ webhooks, want string }{
		{`"retry_schedule": ["10s", "1m"], "max_attempts": 3`, "give it or max_attempts and retry_backoff, not both"},
		{`"retry_schedule": ["10s", "-1m"]`, "retry_schedule wait -1m0s must be positive"},
		{`"auto_disable": "sometimes"`, `auto_disable is gitlab, off or permanent_after [<n>], got "sometimes"`},
		{`"hooks": [{"name": "ci", "url": "http://127.0.0.1/x", "group": "acme", "auto_disable": "permanent_after 0"}], "allow_local_requests": true`,
			`hook ci: auto_disable permanent_after takes a count of failures from 2 to 1000, got "0"`},
		{`"hooks": [{"name": "ci", "url": "http://127.0.0.1/x", "group": "acme", "retry_schedule": []}], "allow_local_requests": true, "retry_schedule": ["8d"]`,
			"retry_schedule wait 192h0m0s must be positive and at most 168h0m0s"},
	} {
		cfg := `{"admin": {"disabled": true}, "apps": {"webhooks": {"redis": "redis://127.0.0.1:1/0", "spool_dir": "off", ` + c.webhooks + `}}}`
		err := caddy.Validate(mustConfig(t, cfg))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.webhooks, err, c.want)
		}
	}
}

func mustConfig(t *testing.T, raw string) *caddy.Config {
	t.Helper()
	var cfg caddy.Config
	if err := caddy.StrictUnmarshalJSON([]byte(raw), &cfg); err != nil {
		t.Fatalf("config %s: %v", raw, err)
	}
	return &cfg
}

// An alert endpoint must sign its alerts and may not reach what hooks may
// not: both are refused at load.
func TestAlertEndpointsAreCheckedAtLoad(t *testing.T) {
	for _, c := range []struct{ webhooks, want string }{
		{`"alerts": {"endpoints": [{"url": "https://ops.example.com/a"}]}`,
			"alerts endpoint alerts-1: a signing_token (whsec_…) is required: alerts are signed"},
		{`"alerts": {"endpoints": [{"url": "https://ops.example.com/a", "signing_token": "whsec_short"}]}`,
			"alerts endpoint alerts-1: signing token must be whsec_"},
		{`"alerts": {"endpoints": [{"name": "ops", "url": "http://127.0.0.1:9/a", "signing_token": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]}`,
			"alerts endpoint ops: url http://127.0.0.1:9/a: blocked: 127.0.0.1 is a loopback address"},
	} {
		cfg := `{"admin": {"disabled": true}, "apps": {"webhooks": {"redis": "redis://127.0.0.1:1/0", "spool_dir": "off", ` + c.webhooks + `}}}`
		err := caddy.Validate(mustConfig(t, cfg))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.webhooks, err, c.want)
		}
	}
}
