package module

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine"
	"github.com/grt-continuation/caddy-webhooks/engine/tracing"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/ingest"
	"github.com/grt-continuation/caddy-webhooks/spool"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func init() {
	caddy.RegisterModule(new(Capture))
}

// Defaults of the capture handler.
const (
	DefaultMaxBody        = 1 << 20
	DefaultEnqueueTimeout = 2 * time.Second
)

// Capture turns responses that announce an event into webhook events. It
// sits in front of reverse_proxy; the app announces an event by setting
// response headers:
//
//	X-Webhook-Event      the trigger: push, tag_push, issues, merge_requests,
//	                     note, pipeline, job, member, … (GitLab's "Push Hook"
//	                     and push_events spellings work too)
//	X-Webhook-Project    full path of the project (acme/platform/api)
//	X-Webhook-Namespace  full path of the group, for group events (member,
//	                     subgroup, project); optional for project events
//	X-Webhook-Ref        the git ref of a push or tag push (else the
//	                     payload's "ref" is used)
//
// and the response body is the JSON payload. Only 2xx responses (not 204,
// 206 or answers to HEAD) become events, and only those to requests Match
// selects. Every X-Webhook-* header and trailer (empty or not) is removed
// from every response that passes the handler before it reaches the
// client, whatever Match says, so the handler belongs on a route without
// a matcher (the Caddyfile's `webhooks_capture @writes` puts the matcher
// in Match itself). The decision is made from
// the status and headers alone: other responses are neither buffered nor
// copied, and event responses stream to the client unchanged while a
// capped copy of the body is kept. The event is in Redis before the
// response completes.
//
// An app that cannot set these headers is described by capture rules
// instead (Rules): request matchers, response matchers, and the event's
// fields from placeholders and the JSON body.
//
// A request carrying X-Gitlab-Event-UUID (because a webhook caused it)
// passes that UUID on to the deliveries of the events it causes, and
// GitLab's recursion detection then keeps a hook from being triggered
// twice in one chain. With trusted_event_uuid_from, only requests from
// those networks are believed; others start a chain of their own.
//
// The placeholder {http.webhooks.event_id} holds the ID of the captured
// event, for access logs.
type Capture struct {
	// MatcherSetsRaw selects, with Caddy's request matchers, the requests
	// whose responses may be events (e.g. writes: method POST PUT PATCH
	// DELETE); the responses to other requests only have their signal
	// headers removed. In the Caddyfile it is the directive's matcher
	// (`webhooks_capture @writes`). Default: every request.
	MatcherSetsRaw caddyhttp.RawMatcherSets `json:"match,omitempty" caddy:"namespace=http.matchers"`

	// MaxBody caps the payload. A larger event is rejected (logged and
	// counted as events_rejected_total{reason="too_large"}); the client's
	// response is not affected. It may not exceed the webhooks app's
	// max_payload (25 MiB). Default: 1 MiB, or max_payload if smaller.
	MaxBody int64 `json:"max_body,omitempty"`

	// EnqueueTimeout bounds the wait for Redis to accept an event.
	// Default: 2s.
	EnqueueTimeout caddy.Duration `json:"enqueue_timeout,omitempty"`

	// Rules declare which responses are events for an app that sets no
	// X-Webhook-* headers (see CaptureRule); signal headers still win.
	Rules []*CaptureRule `json:"rules,omitempty"`

	// TrustedEventUUIDFrom are the networks (CIDR, or single addresses)
	// whose requests' X-Gitlab-Event-UUID is honoured, e.g. the receivers
	// that call back into the app. A request from elsewhere has it ignored
	// and gets a fresh event UUID, so a client cannot name another event's
	// chain and block the deliveries of the events it causes. The address
	// compared is Caddy's client IP: the direct peer, or the one the
	// server's trusted_proxies resolve. Default: empty, honoured from
	// anyone, as GitLab does.
	TrustedEventUUIDFrom []string `json:"trusted_event_uuid_from,omitempty"`

	matchers caddyhttp.MatcherSets
	trusted  []netip.Prefix
	rt       *engine.Runtime
	spool    *spool.Spool // nil: off
	logger   *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (*Capture) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.webhooks_capture", New: func() caddy.Module { return new(Capture) }}
}

// Provision finds the webhooks app.
func (c *Capture) Provision(ctx caddy.Context) error {
	c.logger = ctx.Logger()
	if c.EnqueueTimeout == 0 {
		c.EnqueueTimeout = caddy.Duration(DefaultEnqueueTimeout)
	}
	for _, n := range c.TrustedEventUUIDFrom {
		p, err := caddyhttp.CIDRExpressionToPrefix(n)
		if err != nil {
			return fmt.Errorf("trusted_event_uuid_from: %w", err)
		}
		c.trusted = append(c.trusted, p.Masked())
	}
	app, err := ctx.AppIfConfigured("webhooks")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return errors.New("webhooks_capture needs the webhooks app: add a `webhooks { redis … }` global option")
	}
	if err != nil {
		return err
	}
	wh := app.(*App)
	switch {
	case c.MaxBody == 0:
		c.MaxBody = min(DefaultMaxBody, wh.MaxPayload)
	case c.MaxBody > wh.MaxPayload:
		return fmt.Errorf("max_body (%d bytes) exceeds the webhooks max_payload (%d bytes)", c.MaxBody, wh.MaxPayload)
	}
	c.rt, c.spool = wh.Runtime(), wh.spool
	registerMetrics(ctx)
	if len(c.MatcherSetsRaw) > 0 {
		sets, err := ctx.LoadModule(c, "MatcherSetsRaw")
		if err != nil {
			return fmt.Errorf("loading matchers: %w", err)
		}
		if err := c.matchers.FromInterface(sets); err != nil {
			return err
		}
	}
	return c.provisionRules(ctx)
}

// Validate checks the settings.
func (c *Capture) Validate() error {
	if c.MaxBody < 0 {
		return errors.New("max_body must not be negative")
	}
	if c.EnqueueTimeout < 0 {
		return errors.New("enqueue_timeout must not be negative")
	}
	return nil
}

func (c *Capture) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (err error) {
	tw := &teeWriter{
		ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w},
		maxBody:               c.MaxBody,
		// HEAD has no body; CONNECT and upgrades carry a byte stream, not a
		// response (HTTP/2 WebSockets even answer 200).
		head: r.Method == http.MethodHead || r.Method == http.MethodConnect || r.Header.Get("Upgrade") != "",
	}
	if tw.ignore = !c.selects(r); !tw.ignore {
		tw.rules = c.requestRules(r)
	}
	chain := c.eventChain(r)
	// Enqueue from a defer: reverse_proxy aborts a response whose client
	// went away by panicking with http.ErrAbortHandler, and an event the
	// app committed must not be lost with it.
	defer func() {
		rec := recover()
		// Trailers (and the headers of a response never written) go out
		// after the handler returns.
		stripSignals(tw.Header())
		c.finish(tw, r, chain)
		if rec != nil {
			tw.release()
			panic(rec)
		}
		tw.completeResponse() // only now may the client see the end
		tw.release()
	}()
	return next.ServeHTTP(tw, r)
}

// selects reports whether Match lets r's response be an event.
func (c *Capture) selects(r *http.Request) bool {
	if len(c.matchers) == 0 {
		return true
	}
	ok, err := c.matchers.AnyMatchWithError(r)
	if err != nil {
		c.logger.Debug("webhooks_capture matcher failed", zap.Error(err))
	}
	return ok
}

// eventChain is the request's X-Gitlab-Event-UUID, or "" (a fresh chain)
// when trusted_event_uuid_from does not include the client.
func (c *Capture) eventChain(r *http.Request) string {
	chain := r.Header.Get(gitlab.HeaderEventUUID)
	if chain == "" || len(c.trusted) == 0 {
		return chain
	}
	if ip, ok := clientIP(r); ok {
		for _, p := range c.trusted {
			if p.Contains(ip) {
				return chain
			}
		}
	}
	if ce := c.logger.Check(zap.DebugLevel, "X-Gitlab-Event-UUID ignored: client is not in trusted_event_uuid_from"); ce != nil {
		ce.Write(zap.String("remote_addr", r.RemoteAddr))
	}
	return ""
}

// clientIP is Caddy's client IP of r (trusted_proxies applied), or the
// peer's address outside a Caddy server.
func clientIP(r *http.Request) (netip.Addr, bool) {
	s, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if s == "" {
		s = r.RemoteAddr
		if host, _, err := net.SplitHostPort(s); err == nil {
			s = host
		}
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.WithZone("").Unmap(), true
}

// finish queues the event a response announced, if any. It never changes
// the response: a bad event is logged and counted.
func (c *Capture) finish(tw *teeWriter, r *http.Request, chain string) {
	if tw.ignored != "" {
		if ce := c.logger.Check(zap.DebugLevel, "event signal ignored: the request is not one webhooks_capture's matcher selects"); ce != nil {
			ce.Write(zap.String("event", tw.ignored), zap.String("method", r.Method), zap.String("uri", r.URL.Path))
		}
	}
	if !tw.signaled && tw.rule == nil {
		return
	}
	if !tw.isEvent() {
		if ce := c.logger.Check(zap.DebugLevel, "event signal ignored: not a 2xx response with a body"); ce != nil {
			ce.Write(zap.String("event", tw.signals[0]), zap.Int("status", tw.status), zap.String("method", r.Method))
		}
		return
	}
	ev, err := c.buildEvent(tw, r, chain)
	if err != nil {
		var rej *webhook.RejectError
		reason := webhook.RejectPayload
		if errors.As(err, &rej) {
			reason = rej.Reason
		}
		engine.CountRejected(reason)
		c.logger.Warn("event rejected", zap.String("reason", reason), zap.String("event", tw.signals[0]),
			zap.String("project", tw.signals[1]), zap.String("namespace", tw.signals[2]),
			zap.String("uri", r.URL.Path), zap.Error(err))
		return
	}
	// Not cancelled with the request; under its span, when Caddy's tracing
	// handler runs before this one (the enqueue is a span in that trace).
	ctx, cancel := context.WithTimeout(tracing.Detach(r.Context()), time.Duration(c.EnqueueTimeout))
	defer cancel()
	if err := c.rt.Enqueue(ctx, ev); err != nil && !c.spoolEvent(ev, err) {
		return
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.webhooks.event_id", ev.ID)
	}
}

// spoolEvent keeps an event Redis did not take in the local spool; it
// reports whether the event is safe.
func (c *Capture) spoolEvent(ev *webhook.Event, redisErr error) bool {
	return ingest.SpoolEvent(c.spool, c.logger, ev, redisErr)
}

func (c *Capture) buildEvent(tw *teeWriter, r *http.Request, chain string) (*webhook.Event, error) {
	if tw.overflow {
		return nil, &webhook.RejectError{Reason: webhook.RejectTooLarge,
			Err: fmt.Errorf("payload is larger than max_body (%d bytes)", c.MaxBody)}
	}
	raw := tw.buf.Bytes()
	body, err := ingest.Decode(tw.Header().Get("Content-Encoding"), raw, c.MaxBody)
	if err != nil {
		return nil, err
	}
	// The event outlives the response (an idle fan-out takes it from
	// memory), while the copy's buffer goes back to the pool for the next
	// response: a body not decoded is still that buffer.
	if len(body) > 0 && &body[0] == &raw[0] {
		body = bytes.Clone(body)
	}
	if tw.rule != nil {
		return tw.rule.event(r, tw, body, chain, c.MaxBody)
	}
	sig := webhook.Signals{Event: tw.signals[0], Project: tw.signals[1], Namespace: tw.signals[2], Ref: tw.signals[3]}
	return webhook.NewEvent(sig, body, chain, time.Now())
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Capture)(nil)
	_ caddy.Validator             = (*Capture)(nil)
	_ caddyhttp.MiddlewareHandler = (*Capture)(nil)
)
