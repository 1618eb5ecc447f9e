package delivery

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/grt-continuation/caddy-webhooks/engine/tracing"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Result is the outcome of one delivery attempt.
type Result struct {
	// Status is the receiver's HTTP status; 0 when there was no response.
	Status int
	// Header and Body are the response's, the body capped.
	Header http.Header
	Body   []byte
	// Err describes a failure without a usable response (GitLab's
	// "internal error"): DNS, connect, TLS, timeout, bad URL.
	Err      error
	Duration time.Duration
	// RequestHeader is what was sent.
	RequestHeader http.Header
	// SentBody is the body sent when it was not the event's payload but
	// the rendering of the hook's custom webhook template; nil otherwise.
	SentBody []byte
	// WebhookUUID is the X-Gitlab-Webhook-UUID sent ("" for a chat, or
	// when nothing was sent).
	WebhookUUID string
	// TraceID is the trace the attempt belongs to; "" outside a trace.
	TraceID string
	// Proxy is the egress proxy the attempt went through, masked; "" for
	// a direct one.
	Proxy string
	// detail is the whole error when Err leaves part of it out (the
	// address a name resolved to, the resolver's), for the server log at
	// debug level only.
	detail error
}

// Success reports a 2xx answer. Redirects are not followed, so a 3xx means
// the payload did not reach its handler and counts as a failure.
func (r *Result) Success() bool { return r.Err == nil && r.Status >= 200 && r.Status < 300 }

// Outcome is the result as a fixed label: success, client_error (4xx),
// server_error (other statuses) or internal_error (no response).
func (r *Result) Outcome() string {
	switch {
	case r.Err != nil:
		return "internal_error"
	case r.Success():
		return "success"
	case r.Status >= 400 && r.Status < 500:
		return "client_error"
	default:
		return "server_error"
	}
}

// SendConfig is what every delivery shares.
type SendConfig struct {
	Instance        string
	UserAgent       string
	Timeout         time.Duration
	MaxResponseBody int64
	// MaxPayload refuses to send larger bodies (an internal error, as
	// GitLab's 25 MB limit), and stops a custom webhook template's
	// rendering there; 0: no limit on bodies, and templates stop at
	// DefaultMaxRenderedTemplate.
	MaxPayload int64
	// Network says which addresses receivers may have; the zero value
	// allows public addresses only.
	Network NetworkPolicy
	// Egress is the forward proxy of hooks that name none of their own;
	// the zero value sends straight to the receiver.
	Egress Egress
}

// DefaultMaxRenderedTemplate bounds a custom webhook template's rendering
// when no max_payload is set: GitLab's 25 MB payload limit.
const DefaultMaxRenderedTemplate = 25 << 20

// Sender sends deliveries over HTTP.
type Sender struct {
	resolver *net.Resolver  // nil: the system's; tests set their own
	spans    *tracing.Spans // nil: spans only under a request's (tests)
	// proxyRoots verify https proxies; nil: the system's roots (tests
	// give their CA).
	proxyRoots *x509.CertPool

	mu      sync.Mutex
	current *clients // transport.go
}

// NewSender builds a sender; its connections are made on first use.
func NewSender() *Sender { return &Sender{} }

// Request is one attempt to send an event's payload to a hook: a
// delivery, a test or a resend.
type Request struct {
	Hook    *webhook.Hook
	EventID string
	// Chain is the X-Gitlab-Event-UUID.
	Chain   string
	Trigger gitlab.Trigger
	Body    []byte
	// Rendered says Body is already the hook's custom webhook template
	// rendered (a resend of what was sent): it goes out as it is.
	Rendered bool
	// At is when the event was captured; the latency is measured from it.
	At time.Time
	// Attempt counts the delivery's attempts, from 1 (tests and resends
	// are 1).
	Attempt int
	// Trace is the event's trace context; zero outside a trace.
	Trace webhook.TraceContext
}

// RequestOf is the request that sends d to h.
func RequestOf(h *webhook.Hook, d *webhook.Delivery) Request {
	return Request{Hook: h, EventID: d.EventID, Chain: d.Chain, Trigger: gitlab.Trigger(d.Trigger), Body: d.Body, At: d.At,
		Attempt: d.Attempt, Trace: d.Trace, Rendered: d.Rendered}
}

// Send makes one attempt. In a trace (the event's, or the span ctx
// carries), the attempt is a span of its own, and its context goes to the
// receiver as traceparent and tracestate unless the hook turned that off.
func (s *Sender) Send(ctx context.Context, cfg *SendConfig, req *Request) Result {
	start := time.Now()
	ctx, span := s.spans.Deliver(ctx, req.Trace, tracing.Attempt{Hook: req.Hook, EventID: req.EventID, Number: req.Attempt})
	res := s.send(ctx, cfg, req)
	res.Duration = time.Since(start)
	res.TraceID = tracing.TraceID(ctx)
	tracing.EndDeliver(span, res.Status, res.WebhookUUID, res.Err)
	return res
}

func (s *Sender) send(ctx context.Context, cfg *SendConfig, req *Request) (res Result) {
	h, body := req.Hook, req.Body
	target, err := gitlab.InterpolateURL(h.URL, h.URLVariables)
	if err != nil {
		res.Err = err
		return res
	}
	switch {
	case req.Rendered:
		res.SentBody = body
	case h.CustomWebhookTemplate != "":
		// Bounded while it renders: what is sent may not exceed max_payload.
		limit := cfg.MaxPayload
		if limit <= 0 {
			limit = DefaultMaxRenderedTemplate
		}
		if body, err = gitlab.RenderCustomWebhookTemplate(h.CustomWebhookTemplate, body, int(limit)); err != nil {
			res.Err = err
			return res
		}
		res.SentBody = body
	}
	if cfg.MaxPayload > 0 && int64(len(body)) > cfg.MaxPayload {
		res.Err = fmt.Errorf("payload of %d bytes is larger than max_payload (%d bytes)", len(body), cfg.MaxPayload)
		return res
	}
	if h.Chat != nil {
		target = h.Chat.Service.Target(target, body) // Google Chat's thread
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		// The error text would carry the URL with its variables' values.
		res.Err = fmt.Errorf("invalid URL %s", h.MaskedURL())
		return res
	}
	// An address (in any spelling the resolver reads as one) is refused
	// before any connection, and a zoned host whatever the policy; names
	// are decided at dial time, after DNS, or, for a request a proxy
	// makes, before it is handed to the proxy (egress.go). The refusal is
	// GitLab's words for the rule.
	var blocked *BlockedError
	name, err := cfg.Network.checkURL(h.URL, h.URLVariables)
	rt, proxied, rerr := routeFor(&cfg.Egress, h, hreq.URL)
	if rerr != nil {
		res.Err = fmt.Errorf("POST %s: %w", h.MaskedURL(), rerr)
		return res
	}
	if err == nil && proxied && name != "" {
		err = s.checkProxied(ctx, &cfg.Network, h.URL, name)
	}
	if errors.As(err, &blocked) {
		res.Err, res.detail = fmt.Errorf("POST %s: %s", h.MaskedURL(), blocked.Reason), err
		return res
	}
	if proxied {
		r := rt // on the heap only when proxied
		hreq = hreq.WithContext(context.WithValue(ctx, routeKey{}, &r))
		res.Proxy = r.masked()
	}
	switch {
	case h.Operator:
		// An operator's alert: the JSON alone, signed (Standard Webhooks).
		key := webhook.IdempotencyKey(req.EventID, h.ID)
		hreq.Header.Set("Content-Type", "application/json")
		hreq.Header.Set("User-Agent", cfg.UserAgent)
		hreq.Header.Set("Idempotency-Key", key)
		if err := h.Signing.Sign(hreq.Header, key, time.Now(), body); err != nil {
			res.Err = err
			return res
		}
	case h.Chat != nil:
		// A chat's webhook takes its message alone, as GitLab's notifiers send it.
		hreq.Header.Set("Content-Type", h.Chat.Service.ContentType())
		hreq.Header.Set("User-Agent", cfg.UserAgent)
		// One key per channel: each channel's message is a delivery of its own.
		hreq.Header.Set("Idempotency-Key", webhook.ChatIdempotencyKey(req.EventID, h.ID, h.Chat.Service.ChannelOf(body)))
	default:
		dh := gitlab.DeliveryHeaders{
			Trigger: req.Trigger, UserAgent: cfg.UserAgent, Instance: cfg.Instance, Token: h.Token,
			WebhookUUID: uuid.NewString(), EventUUID: req.Chain,
			IdempotencyKey: webhook.IdempotencyKey(req.EventID, h.ID), Custom: h.CustomHeaders,
		}
		dh.Apply(hreq.Header)
		res.WebhookUUID = dh.WebhookUUID
		if !h.NoTraceContext {
			tracing.Inject(ctx, hreq.Header) // W3C traceparent, tracestate: the receiver joins the trace
		}
		// Signed afresh on every attempt (retries, tests, resends): a new
		// timestamp, the current tokens.
		if err := h.Signing.Sign(hreq.Header, dh.IdempotencyKey, time.Now(), body); err != nil {
			res.Err = err
			return res
		}
	}
	res.RequestHeader = hreq.Header
	client, err := s.clientsFor(&cfg.Network).forHook(h)
	if err != nil {
		res.Err = fmt.Errorf("POST %s: %w", h.MaskedURL(), err)
		return res
	}
	resp, err := client.Do(hreq)
	if err != nil {
		res.Err, res.detail = describe(err, h)
		return res
	}
	defer resp.Body.Close()
	if proxied && resp.StatusCode == http.StatusProxyAuthRequired && hreq.URL.Scheme == "http" {
		// The proxy's answer to a request it was to forward, not the
		// receiver's: an internal error, retried, not a 4xx that would
		// disable the hook.
		res.Err = fmt.Errorf("POST %s: %w", h.MaskedURL(), &proxyRefusal{status: resp.Status})
		return res
	}
	res.Status, res.Header = resp.StatusCode, resp.Header
	res.Body, err = io.ReadAll(io.LimitReader(resp.Body, cfg.MaxResponseBody))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		res.Err = fmt.Errorf("reading response: %w", err)
	}
	// Drain a little more so the connection can be reused; not unbounded.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	return res
}

// describe turns a client error into the internal error text a hook's
// log and the test endpoint show: without the URL (it may carry secrets
// from URL variables or user info; the masked URL stands for it) and
// without any address the attempt learnt (the one a name resolved to, the
// resolver's), which would let whoever manages a hook map the internal
// network: GitLab's words where it has them. detail is the whole error,
// URL variable values masked, for the server log at debug level.
func describe(err error, h *webhook.Hook) (public, detail error) {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	detail = errors.New(maskVariables(err.Error(), h))
	at := "POST " + h.MaskedURL() + ": "
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("request timed out"), detail
	}
	if s, ok := describeProxyError(err); ok {
		return errors.New(at + s), detail
	}
	var blocked *BlockedError
	if errors.As(err, &blocked) {
		// Decided on the address a name resolved to: the rule alone.
		return errors.New(at + reasonLocalNetwork), detail
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return errors.New(at + reasonUnresolved), detail
	}
	// net/http's words for a peer that hung up before answering.
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "readLoopPeekFailLocked") ||
		strings.Contains(err.Error(), "server closed idle connection") {
		return errors.New(at + "the receiver closed the connection without answering"), detail
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		// "connect: connection refused", without "dial tcp <address>".
		return errors.New(at + opErr.Err.Error()), detail
	}
	return errors.New(at + err.Error()), detail
}

// maskVariables writes the hook's URL variable values as {name}: a host
// name in a DNS error may be one.
func maskVariables(s string, h *webhook.Hook) string {
	for k, v := range h.URLVariables {
		if v != "" {
			s = strings.ReplaceAll(s, v, "{"+k+"}")
		}
	}
	return s
}
