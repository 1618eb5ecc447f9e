// Package caddyfile registers the webhooks global option and the
// webhooks_capture, webhooks_api, webhooks_ingest and webhooks_ui directives with Caddy's Caddyfile
// adapter. The parsing itself lives on the module types, so
// `caddyfile.UnmarshalModule` works too.
package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/grt-continuation/caddy-webhooks/module"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("webhooks", parseGlobal)
	httpcaddyfile.RegisterDirective("webhooks_capture", parseCapture)
	// Inside encode/intercept/templates (so it sees what the app sent) and
	// outside handle/route/reverse_proxy (so it wraps proxies in blocks).
	httpcaddyfile.RegisterDirectiveOrder("webhooks_capture", httpcaddyfile.Before, "invoke")
	httpcaddyfile.RegisterHandlerDirective("webhooks_api", parseAPI)
	// A terminal handler, like respond and reverse_proxy: after auth
	// directives (forward_auth, basic_auth), before the proxy.
	httpcaddyfile.RegisterDirectiveOrder("webhooks_api", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterHandlerDirective("webhooks_ingest", parseIngest) // events from jobs and scripts; terminal too
	httpcaddyfile.RegisterDirectiveOrder("webhooks_ingest", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterHandlerDirective("webhooks_ui", parseUI) // the Settings > Webhooks page; terminal too
	httpcaddyfile.RegisterDirectiveOrder("webhooks_ui", httpcaddyfile.Before, "reverse_proxy")
}

func parseUI(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(module.UI)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

func parseIngest(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(module.Ingest)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

func parseAPI(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(module.API)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

func parseGlobal(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		d.Next()
		return nil, d.Err("the webhooks global option is given twice; merge the blocks")
	}
	app := new(module.App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "webhooks", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseCapture puts the directive's matcher inside the handler (its match
// field) and the handler on a route without one: every response then
// passes it and has its X-Webhook-* headers removed, and only the
// responses to matched requests can be events.
func parseCapture(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	set, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	c := new(module.Capture)
	if err := c.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if set != nil {
		c.MatcherSetsRaw = caddyhttp.RawMatcherSets{set}
	}
	return h.NewRoute(nil, c), nil
}
