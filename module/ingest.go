package module

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/grt-continuation/caddy-webhooks/api"
	"github.com/grt-continuation/caddy-webhooks/ingest"
)

func init() {
	caddy.RegisterModule(new(Ingest))
}

// Defaults of the ingest handler.
const (
	DefaultIngestMaxRequest  = 16 << 20
	DefaultIngestMaxBatch    = 1000
	DefaultIdempotencyWindow = 24 * time.Hour
)

// Ingest takes events that are not born from a response (background jobs,
// git hooks, cron) over HTTP, serving package ingest's handler: POST one
// event as a JSON object
//
//	{"trigger": "push", "project": "acme/api", "ref": "refs/heads/main",
//	 "payload": {…GitLab's payload…}}
//
// ("group" instead of, or with, "project" for group events), or a batch as
// NDJSON (Content-Type: application/x-ndjson), one such object a line.
// Events get the same validation, limits, spool and queue as
// webhooks_capture. A batch is all or nothing as far as validation goes: a
// bad line refuses the whole request, naming the line.
//
// Callers authenticate like the hooks API (PRIVATE-TOKEN or Authorization:
// Bearer); a token with scopes may emit events only for projects and groups
// under them. A client-supplied Idempotency-Key header (or a line's
// "idempotency_key") makes a retry of the same event within
// idempotency_window answer with the first event's ID instead of queueing
// it again.
//
// Answers: 202 {"event_ids": […]}; 400, 401, 403, 413, 415 and 422 in
// GitLab's error shapes; 503 with Retry-After only when neither Redis nor
// the spool could take an event (the event_ids that were kept are listed).
type Ingest struct {
	// Tokens may post events, as webhooks_api's tokens: a token's scopes
	// (full paths of projects and groups, each with everything below it)
	// limit the projects and groups it may emit events for. Without tokens,
	// trust_upstream_auth must be set.
	Tokens []*APIToken `json:"tokens,omitempty"`

	// TrustUpstreamAuth accepts requests that carry no token: only for a
	// handler behind forward_auth (or similar) that already authorised the
	// request.
	TrustUpstreamAuth bool `json:"trust_upstream_auth,omitempty"`

	// MaxBody caps one event's payload, as webhooks_capture's max_body; a
	// larger one gets 413. Default: 1 MiB, or the app's max_payload if
	// smaller; at most max_payload.
	MaxBody int64 `json:"max_body,omitempty"`

	// MaxRequest caps a request body (a whole batch), compressed and
	// decoded alike; a larger one gets 413. Default: 16 MiB.
	MaxRequest int64 `json:"max_request,omitempty"`

	// MaxBatch caps the events of one request; more get 413. Default: 1000.
	MaxBatch int `json:"max_batch,omitempty"`

	// EnqueueTimeout bounds the wait for Redis to take each event before it
	// is spooled. Default: 2s.
	EnqueueTimeout caddy.Duration `json:"enqueue_timeout,omitempty"`

	// IdempotencyWindow is how long an Idempotency-Key is remembered (in
	// Redis, per token). Default: 24h.
	IdempotencyWindow caddy.Duration `json:"idempotency_window,omitempty"`

	handler *ingest.Handler
}

// CaddyModule returns the Caddy module information.
func (*Ingest) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.webhooks_ingest", New: func() caddy.Module { return new(Ingest) }}
}

// Provision finds the webhooks app and builds the handler.
func (in *Ingest) Provision(ctx caddy.Context) error {
	app, err := ctx.AppIfConfigured("webhooks")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return errors.New("webhooks_ingest needs the webhooks app: add a `webhooks { redis … }` global option")
	}
	if err != nil {
		return err
	}
	wh := app.(*App)
	switch {
	case in.MaxBody == 0:
		in.MaxBody = min(DefaultMaxBody, wh.MaxPayload)
	case in.MaxBody > wh.MaxPayload:
		return fmt.Errorf("max_body (%d bytes) exceeds the webhooks max_payload (%d bytes)", in.MaxBody, wh.MaxPayload)
	}
	if in.MaxRequest == 0 {
		in.MaxRequest = max(DefaultIngestMaxRequest, in.MaxBody)
	}
	if in.MaxBatch == 0 {
		in.MaxBatch = DefaultIngestMaxBatch
	}
	if in.EnqueueTimeout == 0 {
		in.EnqueueTimeout = caddy.Duration(DefaultEnqueueTimeout)
	}
	if in.IdempotencyWindow == 0 {
		in.IdempotencyWindow = caddy.Duration(DefaultIdempotencyWindow)
	}
	rt := wh.Runtime()
	in.handler, err = ingest.New(rt, rt.Idempotency(), ingest.Options{
		Settings: ingest.Settings{MaxBody: in.MaxBody, MaxRequest: in.MaxRequest, MaxBatch: in.MaxBatch,
			EnqueueTimeout: time.Duration(in.EnqueueTimeout), IdempotencyWindow: time.Duration(in.IdempotencyWindow)},
		Tokens: apiTokens(in.Tokens), TrustUpstreamAuth: in.TrustUpstreamAuth,
		Spool: wh.spool, Logger: ctx.Logger(),
	})
	if err != nil {
		return err
	}
	registerMetrics(ctx)
	return nil
}

// apiTokens resolves the tokens' placeholders ({env.…}).
func apiTokens(ts []*APIToken) []api.Token {
	repl := caddy.NewReplacer()
	out := make([]api.Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, api.Token{Name: t.Name, Value: repl.ReplaceKnown(t.Value, ""), Scopes: t.Scopes})
	}
	return out
}

// Validate checks the settings.
func (in *Ingest) Validate() error {
	switch {
	case in.MaxBody < 0, in.MaxRequest < 0, in.MaxBatch < 0:
		return errors.New("max_body, max_request and max_batch must not be negative")
	case in.MaxRequest > 0 && in.MaxRequest < in.MaxBody:
		return fmt.Errorf("max_request (%d bytes) is smaller than max_body (%d bytes)", in.MaxRequest, in.MaxBody)
	case in.EnqueueTimeout < 0, in.IdempotencyWindow < 0:
		return errors.New("enqueue_timeout and idempotency_window must not be negative")
	}
	for i, t := range in.Tokens {
		if t.Name == "" {
			return fmt.Errorf("token #%d has no name", i+1)
		}
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. Every request is
// answered here; next is not called.
func (in *Ingest) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	in.handler.ServeHTTP(w, r)
	return nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	webhooks_ingest [<matcher>] {
//		token <name> <value> [scope <path...>]
//		trust_upstream_auth
//		max_body           <size>
//		max_request        <size>
//		max_batch          <n>
//		enqueue_timeout    <duration>
//		idempotency_window <duration>
//	}
//
// token may be repeated; without scope the token may emit events for every
// project and group.
func (in *Ingest) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "max_body":
			err = sizeArg(d, &in.MaxBody)
		case "max_request":
			err = sizeArg(d, &in.MaxRequest)
		case "max_batch":
			err = intArg(d, &in.MaxBatch)
		case "enqueue_timeout":
			err = durationArg(d, &in.EnqueueTimeout)
		case "idempotency_window":
			err = durationArg(d, &in.IdempotencyWindow)
		default:
			var ok bool
			if ok, err = authOption(d, &in.Tokens, &in.TrustUpstreamAuth); !ok {
				return d.Errf("unrecognized webhooks_ingest option %q", d.Val())
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// authOption reads the options webhooks_api and webhooks_ingest share:
// `token <name> <value> [scope <path...>]` and `trust_upstream_auth`. ok is
// false for any other option.
func authOption(d *caddyfile.Dispenser, tokens *[]*APIToken, trustUpstream *bool) (ok bool, err error) {
	switch d.Val() {
	case "token":
		args := d.RemainingArgs()
		if len(args) < 2 || (len(args) > 2 && (args[2] != "scope" || len(args) == 3)) {
			return true, d.Err("usage: token <name> <value> [scope <path...>]")
		}
		t := &APIToken{Name: args[0], Value: args[1]}
		if len(args) > 2 {
			t.Scopes = args[3:]
		}
		*tokens = append(*tokens, t)
		return true, nil
	case "trust_upstream_auth":
		if d.NextArg() {
			return true, d.ArgErr()
		}
		*trustUpstream = true
		return true, nil
	}
	return false, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Ingest)(nil)
	_ caddy.Validator             = (*Ingest)(nil)
	_ caddyhttp.MiddlewareHandler = (*Ingest)(nil)
	_ caddyfile.Unmarshaler       = (*Ingest)(nil)
)
