package module

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/grt-continuation/caddy-webhooks/ui"
)

func init() {
	caddy.RegisterModule(new(UI))
}

// UI serves the Settings > Webhooks page: GitLab's webhook pages (list,
// add, edit, delete, failing-hook badges and banners, Test, Recent events
// with their details and Resend Request) for a project or group. The page
// is static (an html/template document with embedded CSS and JavaScript);
// its script calls the webhooks_api handler on the same site with the
// token the user signs in with, so it can do exactly what the API allows
// that token, and it never sees a hook secret. Mount it under a path of
// its own, e.g. `handle_path /-/webhooks/* { webhooks_ui }`; it does not
// need the webhooks app.
type UI struct {
	// API is the path where webhooks_api answers on this site, as the
	// browser requests it (prefix included). Default: /api/v4.
	API string `json:"api,omitempty"`

	handler *ui.Handler
}

// CaddyModule returns the Caddy module information.
func (*UI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.webhooks_ui", New: func() caddy.Module { return new(UI) }}
}

// Provision renders the page.
func (m *UI) Provision(caddy.Context) error {
	h, err := ui.New(ui.Options{APIBase: m.API, RequestURL: originalURL})
	if err != nil {
		return err
	}
	m.handler = h
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. Every request is
// answered here; next is not called.
func (m *UI) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	m.handler.ServeHTTP(w, r)
	return nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	webhooks_ui [<matcher>] [{
//		api <path>    # where webhooks_api answers; default /api/v4
//	}]
func (m *UI) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "api":
			if !d.NextArg() {
				return d.ArgErr()
			}
			m.API = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("unrecognized webhooks_ui option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*UI)(nil)
	_ caddyhttp.MiddlewareHandler = (*UI)(nil)
	_ caddyfile.Unmarshaler       = (*UI)(nil)
)
