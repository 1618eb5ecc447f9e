// Package api serves GitLab's project and group webhooks REST API
// (GET/POST /projects/:id/hooks, GET/PUT/DELETE /projects/:id/hooks/:hook_id,
// the same under /groups/:id/hooks, plus …/test/:trigger,
// …/url_variables/:key, …/custom_headers/:key, …/events and
// …/events/:event_id/resend; ours, …/replay), so GitLab's API clients
// and the curl recipes of GitLab's docs manage hooks here unchanged. It is a
// plain http.Handler over a Repository; the Caddy module mounts it.
//
// A route is the whole path after Options.Prefix: mounted with Caddy's
// handle_path /api/v4/* the prefix is already stripped, mounted with
// handle /api/v4/* the prefix is /api/v4.
package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/replay"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Repository stores the hooks managed through the API.
// *redisstore.HookStore implements it.
type Repository interface {
	NamespaceByPath(ctx context.Context, kind webhook.Kind, path string) (webhook.Namespace, error)
	ClaimNamespace(ctx context.Context, kind webhook.Kind, path, scope string, limit int) (webhook.Namespace, error)
	LookupNamespace(ctx context.Context, kind webhook.Kind, path string) (webhook.Namespace, bool, error)
	NamespaceByID(ctx context.Context, kind webhook.Kind, id int64) (webhook.Namespace, bool, error)
	CreateHook(ctx context.Context, ns webhook.Namespace, r *webhook.HookRecord, limit int) error
	GetHook(ctx context.Context, ns webhook.Namespace, id int64) (*webhook.HookRecord, error)
	ListHooks(ctx context.Context, ns webhook.Namespace) ([]*webhook.HookRecord, error)
	UpdateHook(ctx context.Context, ns webhook.Namespace, id int64, fn func(*webhook.HookRecord) error) (*webhook.HookRecord, error)
	DeleteHook(ctx context.Context, ns webhook.Namespace, id int64) error
}

// Runtime is the delivery side the API needs. *engine.Runtime implements it.
type Runtime interface {
	// Hooks returns every hook in effect; the read-only (configured) ones
	// are listed by the API beside the stored ones.
	Hooks() *webhook.HookSet
	// RefreshHooks puts stored changes into effect in this process.
	RefreshHooks(ctx context.Context) error
	// HookHealth reads a hook's failure state (alert_status, disabled_until).
	HookHealth(ctx context.Context, hookID int64) (delivery.HookHealth, error)
	// TestHook makes one synchronous test delivery, logs it and re-enables
	// the hook when it succeeds.
	TestHook(ctx context.Context, h *webhook.Hook, trig gitlab.Trigger, body []byte) delivery.Result
	// TestSettings makes one synchronous request to a hook that is not
	// saved (an integration's "Test settings"): nothing is logged.
	TestSettings(ctx context.Context, h *webhook.Hook, trig gitlab.Trigger, body []byte) delivery.Result
	// LatestEvent is the latest payload of a trigger seen for a project
	// (nil: none), the sample a test sends.
	LatestEvent(ctx context.Context, project string, trig gitlab.Trigger) ([]byte, error)
	// HookLog lists a hook's log entries (ID, status), newest first;
	// HookLogEntries reads some of them.
	HookLog(ctx context.Context, hookID int64) ([]webhook.LogRef, error)
	HookLogEntries(ctx context.Context, hookID int64, ids ...int64) ([]webhook.LogEntry, error)
	// ResetHealth re-enables a hook or integration.
	ResetHealth(ctx context.Context, hookID int64) error
	// Resend sends a logged payload again to the hook's current URL.
	Resend(ctx context.Context, h *webhook.Hook, e *webhook.LogEntry) (delivery.Result, error)
	// Throttle counts a rate-limited call, shared by every process.
	Throttle(ctx context.Context, action, scope string, limit int, window time.Duration) (bool, time.Duration, error)
	// OrderedState reads an ordered hook's queue; DropOrdered deletes the
	// queue of a deleted hook.
	OrderedState(ctx context.Context, hookID int64) (redisstore.OrderedState, error)
	DropOrdered(ctx context.Context, hookID int64) error
	// StartReplay sends again, at a pace that leaves live deliveries
	// first, what a hook's log or dead letters hold (a dry run counts).
	StartReplay(ctx context.Context, req replay.Request) (replay.Job, error)
}

// Defaults of the options.
const (
	DefaultMaxProjectHooks = 100
	DefaultMaxGroupHooks   = 50
	// DefaultMaxScopeNamespaces caps the projects and groups the writes of
	// one token scope may give ids to.
	DefaultMaxScopeNamespaces = 1000
	DefaultMaxBody            = 1 << 20
	// DefaultTestRateLimit and DefaultResendRateLimit are GitLab's limits
	// on test and resend requests: 5 per minute per project or group and
	// caller.
	DefaultTestRateLimit   = 5
	DefaultResendRateLimit = 5
)

// Options configure the handler.
type Options struct {
	// Prefix is removed from the escaped path before routing; a path
	// without it is 404. Default: none (the prefix was stripped before).
	Prefix string
	// Tokens may call the API, each within its scope.
	Tokens []Token
	// TrustUpstreamAuth lets requests through without a token: something in
	// front (Caddy's forward_auth) has decided who may do what. Configured
	// tokens are still checked when a request carries one.
	TrustUpstreamAuth bool
	// MaxProjectHooks and MaxGroupHooks cap the API-managed hooks of one
	// project or group; 0 means no cap.
	MaxProjectHooks, MaxGroupHooks int
	// MaxScopeNamespaces caps the projects and groups that the writes of a
	// token with scopes give an id to, per scope: with at most
	// MaxProjectHooks hooks each, the hooks a scoped token can store are
	// bounded. 0 means no cap.
	MaxScopeNamespaces int
	// MaxBody caps request bodies.
	MaxBody int64
	// TestRateLimit and ResendRateLimit cap test and resend requests per
	// minute per project or group and caller; 0: the default (5), negative:
	// no limit.
	TestRateLimit, ResendRateLimit int
	// RequestURL returns the URL as the client sent it (before a prefix was
	// stripped), for Link headers. Default: the request's URL.
	RequestURL func(*http.Request) *url.URL
	Logger     *zap.Logger
	// Network refuses hook URLs that lead to local addresses when a hook
	// is saved, as GitLab's public_url validator; the zero value allows
	// public addresses only.
	Network delivery.NetworkPolicy
	// SigningTokenOverlap is how long a replaced signing token keeps
	// signing beside the new one. Default: 24h; negative: none.
	SigningTokenOverlap time.Duration
	// Integrations stores the chat integrations served under
	// …/integrations/:slug and …/services/:slug; nil: those routes are 404.
	Integrations IntegrationRepository
}

// Handler serves the hooks API.
type Handler struct {
	repo Repository
	rt   Runtime
	opt  Options
	auth *authenticator
	cop  *http.CrossOriginProtection
	log  *zap.Logger
}

// New builds the handler.
func New(repo Repository, rt Runtime, opt Options) (*Handler, error) {
	if opt.MaxBody <= 0 {
		opt.MaxBody = DefaultMaxBody
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	opt.Prefix = strings.TrimRight(opt.Prefix, "/")
	if opt.Prefix != "" && !strings.HasPrefix(opt.Prefix, "/") {
		return nil, fmt.Errorf("prefix %q must start with /", opt.Prefix)
	}
	if opt.RequestURL == nil {
		opt.RequestURL = func(r *http.Request) *url.URL { return r.URL }
	}
	a, err := newAuthenticator(opt.Tokens, opt.TrustUpstreamAuth)
	if err != nil {
		return nil, err
	}
	return &Handler{repo: repo, rt: rt, opt: opt, auth: a, cop: http.NewCrossOriginProtection(), log: opt.Logger}, nil
}

// route is a matched request.
type route struct {
	kind    webhook.Kind
	rawID   string // escaped :id
	rawHook string // escaped :hook_id ("" for the collection)
	sub     string // "", "test", "url_variables", "custom_headers", "events", "resend", "replay"
	rawKey  string // escaped :trigger, :key or :event_id ("" for the events list)
}

// match finds the API route of an escaped path, the whole path after the
// handler's prefix: "/projects|groups/<id>/hooks…" and nothing else, so the
// project or group acted on is always the one named at the start, the one
// an authorizer in front (forward_auth) sees in the same path.
func match(escapedPath string) (route, bool) {
	rest, ok := strings.CutPrefix(escapedPath, "/")
	if !ok {
		return route{}, false
	}
	segs := strings.Split(rest, "/")
	if len(segs) < 3 || segs[1] == "" || segs[2] != "hooks" {
		return route{}, false
	}
	kind, ok := webhook.KindOfSegment(segs[0])
	if !ok {
		return route{}, false
	}
	rt := route{kind: kind, rawID: segs[1]}
	tail := segs[3:]
	switch {
	case len(tail) == 0:
		return rt, true
	case len(tail) == 1 && tail[0] != "":
		rt.rawHook = tail[0]
		return rt, true
	case len(tail) == 3 && tail[0] != "" && tail[2] != "" &&
		(tail[1] == "test" || tail[1] == "url_variables" || tail[1] == "custom_headers" || tail[1] == "events"):
		rt.rawHook, rt.sub, rt.rawKey = tail[0], tail[1], tail[2]
		return rt, true
	case len(tail) == 2 && tail[0] != "" && (tail[1] == "events" || tail[1] == "replay"):
		rt.rawHook, rt.sub = tail[0], tail[1]
		return rt, true
	case len(tail) == 4 && tail[0] != "" && tail[1] == "events" && tail[2] != "" && tail[3] == "resend":
		rt.rawHook, rt.sub, rt.rawKey = tail[0], "resend", tail[2]
		return rt, true
	}
	return route{}, false
}

// allowed lists the methods of a route.
func (rt route) allowed() []string {
	switch {
	case rt.rawHook == "":
		return []string{http.MethodGet, http.MethodPost}
	case rt.sub == "":
		return []string{http.MethodGet, http.MethodPut, http.MethodDelete}
	case rt.sub == "test" || rt.sub == "resend" || rt.sub == "replay":
		return []string{http.MethodPost}
	case rt.sub == "events":
		return []string{http.MethodGet}
	default:
		return []string{http.MethodPut, http.MethodDelete}
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.EscapedPath(), h.opt.Prefix)
	if !ok {
		writeError(w, http.StatusNotFound, "404 Not Found")
		return
	}
	rt, ok := match(path)
	if !ok {
		if ir, ok := matchIntegration(path); ok {
			h.serveIntegration(w, r, ir)
			return
		}
		writeError(w, http.StatusNotFound, "404 Not Found")
		return
	}
	method, p, ok := h.admit(w, r, rt.allowed())
	if !ok {
		return
	}
	ns, ok := h.namespace(w, r, rt, p)
	if !ok {
		return
	}
	req := &request{h: h, w: w, r: r, rt: rt, ns: ns, method: method, caller: p.name, scope: p.scopeOf(ns.Path)}
	if rt.rawHook != "" {
		id, err := strconv.ParseInt(rt.rawHook, 10, 64)
		if err != nil || id <= 0 || strings.TrimLeft(rt.rawHook, "0123456789") != "" {
			writeError(w, http.StatusBadRequest, "hook_id is invalid")
			return
		}
		req.hookID = id
	}
	req.serve()
}

// admit applies the rules every route shares, in order: the method (HEAD
// as GET), the cross-site refusal, the token. It answers the client itself
// when it refuses.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, allowed []string) (string, *principal, bool) {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if !contains(allowed, method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, "405 Not Allowed")
		return "", nil, false
	}
	if crossSiteRefused(h.cop, r) {
		writeMessage(w, http.StatusForbidden, "403 Forbidden - cross-site request refused")
		return "", nil, false
	}
	p, ok := h.auth.authenticate(r)
	if !ok {
		writeMessage(w, http.StatusUnauthorized, "401 Unauthorized")
		return "", nil, false
	}
	return method, p, true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
