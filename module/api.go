package module

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/grt-continuation/caddy-webhooks/api"
)

func init() {
	caddy.RegisterModule(new(API))
}

// API serves GitLab's project and group webhooks REST API
// (/projects/:id/hooks, /groups/:id/hooks and their sub-resources), so
// GitLab's API clients manage hooks through Caddy. Mount it under the
// prefix GitLab clients call, e.g. `handle_path /api/v4/* { webhooks_api … }`,
// or keep the prefix (`handle /api/v4/*`) and set prefix /api/v4. The route
// is the whole path after the prefix. Hooks created through it are
// stored in the webhooks app's Redis, their secrets encrypted with the app's
// encryption_key, and take effect in every Caddy sharing that Redis within
// about a second. Hooks declared in the app's configuration are listed too,
// read-only.
//
// Callers authenticate with PRIVATE-TOKEN or Authorization: Bearer, using one
// of the configured tokens; a token may be limited to some projects and
// groups. Alternatively put forward_auth in front and set
// trust_upstream_auth, so the app decides who may manage which hooks.
type API struct {
	// Prefix is the part of the path before the API's routes when it is not
	// stripped (`handle /api/v4/*` needs prefix /api/v4); a request outside
	// it gets 404. Default: none, as under `handle_path /api/v4/*`.
	Prefix string `json:"prefix,omitempty"`

	// Tokens may call the API. Without tokens, trust_upstream_auth must be
	// set.
	Tokens []*APIToken `json:"tokens,omitempty"`

	// TrustUpstreamAuth accepts requests that carry no token: only for a
	// handler behind forward_auth (or similar) that already authorised the
	// request. A request that does carry a token must still present a
	// configured one.
	TrustUpstreamAuth bool `json:"trust_upstream_auth,omitempty"`

	// MaxProjectHooks caps the API-managed hooks of one project, as GitLab's
	// project_hooks limit. -1: no cap. Default: 100.
	MaxProjectHooks int `json:"max_project_hooks,omitempty"`

	// MaxGroupHooks caps the API-managed hooks of one group, as GitLab's
	// group_hooks limit. -1: no cap. Default: 50.
	MaxGroupHooks int `json:"max_group_hooks,omitempty"`

	// MaxScopeNamespaces caps, per scope of a token with scopes, the
	// projects and groups its writes give hooks to (each then holds at
	// most max_project_hooks or max_group_hooks): a scoped token cannot
	// make the store grow without bound. Paths that already have hooks do
	// not count again. -1: no cap. Default: 1000.
	MaxScopeNamespaces int `json:"max_scope_namespaces,omitempty"`

	// MaxBody caps request bodies; larger ones get 413. Default: 1 MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// TestRateLimit caps test requests (POST …/hooks/:hook_id/test/:trigger)
	// per minute per project or group and token, shared by every process,
	// as GitLab's web_hook_test limit. -1: no limit. Default: 5.
	TestRateLimit int `json:"test_rate_limit,omitempty"`

	// ResendRateLimit caps resend requests (POST …/events/:id/resend) the
	// same way, as GitLab's web_hook_event_resend limit. -1: no limit.
	// Default: 5.
	ResendRateLimit int `json:"resend_rate_limit,omitempty"`

	handler *api.Handler
}

// APIToken is a credential for the hooks API.
type APIToken struct {
	// Name identifies the token in logs; its value is never logged.
	Name string `json:"name"`

	// Value is the secret callers send. Use a placeholder such as
	// {env.WEBHOOKS_API_TOKEN}; at least 16 characters.
	Value string `json:"value"`

	// Scopes are full paths of projects and groups the token may manage,
	// each including everything below it. Empty: all.
	Scopes []string `json:"scopes,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (*API) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.webhooks_api", New: func() caddy.Module { return new(API) }}
}

// Provision finds the webhooks app and builds the handler.
func (m *API) Provision(ctx caddy.Context) error {
	appIface, err := ctx.AppIfConfigured("webhooks")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return errors.New("webhooks_api needs the webhooks app: add a `webhooks { redis … }` global option")
	}
	if err != nil {
		return err
	}
	app := appIface.(*App)
	if app.cfg.Secrets == nil {
		return errors.New("webhooks_api needs the webhooks app's encryption_key: hook tokens, URL variables and custom headers are stored encrypted")
	}
	limit := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	opt := api.Options{
		Prefix:              m.Prefix,
		TrustUpstreamAuth:   m.TrustUpstreamAuth,
		MaxProjectHooks:     limit(m.MaxProjectHooks, api.DefaultMaxProjectHooks),
		MaxGroupHooks:       limit(m.MaxGroupHooks, api.DefaultMaxGroupHooks),
		MaxScopeNamespaces:  limit(m.MaxScopeNamespaces, api.DefaultMaxScopeNamespaces),
		MaxBody:             m.MaxBody,
		TestRateLimit:       m.TestRateLimit,
		ResendRateLimit:     m.ResendRateLimit,
		RequestURL:          originalURL,
		Logger:              ctx.Logger(),
		Network:             app.cfg.Send.Network,
		SigningTokenOverlap: time.Duration(app.SigningTokenOverlap),
	}
	opt.Tokens = apiTokens(m.Tokens)
	rt := app.Runtime()
	opt.Integrations = rt.Integrations(app.cfg.Secrets)
	h, err := api.New(rt.ManagedHooks(app.cfg.Secrets), rt, opt)
	if err != nil {
		return err
	}
	m.handler = h
	return nil
}

// originalURL is the URL before handle_path stripped its prefix.
func originalURL(r *http.Request) *url.URL {
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && or.URL != nil {
		return or.URL
	}
	return r.URL
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. Every request is
// answered here; next is not called.
func (m *API) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	m.handler.ServeHTTP(w, r)
	return nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	webhooks_api [<matcher>] {
//		prefix <path>
//		token <name> <value> [scope <path...>]
//		trust_upstream_auth
//		max_project_hooks <n>
//		max_group_hooks   <n>
//		max_scope_namespaces <n>
//		max_body          <size>
//		test_rate_limit   <n per minute>
//		resend_rate_limit <n per minute>
//	}
//
// token may be repeated; without scope the token may manage every project
// and group.
func (m *API) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "prefix":
			err = oneArg(d, &m.Prefix)
		case "max_project_hooks":
			err = intArg(d, &m.MaxProjectHooks)
		case "max_group_hooks":
			err = intArg(d, &m.MaxGroupHooks)
		case "max_scope_namespaces":
			err = intArg(d, &m.MaxScopeNamespaces)
		case "max_body":
			err = sizeArg(d, &m.MaxBody)
		case "test_rate_limit":
			err = intArg(d, &m.TestRateLimit)
		case "resend_rate_limit":
			err = intArg(d, &m.ResendRateLimit)
		default:
			var ok bool
			if ok, err = authOption(d, &m.Tokens, &m.TrustUpstreamAuth); !ok {
				return d.Errf("unrecognized webhooks_api option %q", d.Val())
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the settings.
func (m *API) Validate() error {
	if m.MaxBody < 0 {
		return errors.New("max_body must not be negative")
	}
	for i, t := range m.Tokens {
		if t.Name == "" {
			return errors.New("token #" + strconv.Itoa(i+1) + " has no name")
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*API)(nil)
	_ caddy.Validator             = (*API)(nil)
	_ caddyhttp.MiddlewareHandler = (*API)(nil)
	_ caddyfile.Unmarshaler       = (*API)(nil)
)
