package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

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
}

// DefaultMaxRenderedTemplate bounds a custom webhook template's rendering
// when no max_payload is set: GitLab's 25 MB payload limit.
const DefaultMaxRenderedTemplate = 25 << 20

// Sender sends deliveries over HTTP.
type Sender struct {
	resolver *net.Resolver // nil: the system's; tests set their own

	mu      sync.Mutex
	current *clients
}

// clients are the HTTP clients of one network policy: one that verifies
// TLS and one that does not (for hooks with enable_ssl_verification false).
// Connections are never shared between policies, so a receiver reached
// while local requests were allowed is not reached over a kept-alive
// connection after they are not.
type clients struct {
	key                  string
	verified, unverified *http.Client
}

// NewSender builds a sender; its connections are made on first use.
func NewSender() *Sender { return &Sender{} }

// clientsFor returns the clients of policy p, replacing (and closing the
// idle connections of) those of another policy.
func (s *Sender) clientsFor(p *NetworkPolicy) *clients {
	key := p.key()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != nil && s.current.key == key {
		return s.current
	}
	if s.current != nil {
		s.current.verified.CloseIdleConnections()
		s.current.unverified.CloseIdleConnections()
	}
	policy := *p
	policy.Allow = slices.Clone(p.Allow)
	s.current = &clients{key: key,
		verified: newClient(false, &policy, s.resolver), unverified: newClient(true, &policy, s.resolver)}
	return s.current
}

func newClient(insecure bool, policy *NetworkPolicy, resolver *net.Resolver) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: resolver,
		// Checked on the resolved address of each connection attempt.
		ControlContext: policy.control}
	t := &http.Transport{
		Proxy:                 nil, // deliveries go straight to the receiver
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: insecure}, //nolint:gosec // per-hook choice, as GitLab's enable_ssl_verification
	}
	return &http.Client{
		Transport: t,
		// Redirects are not followed: the hook's URL is the only receiver.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CloseIdle drops idle keep-alive connections.
func (s *Sender) CloseIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != nil {
		s.current.verified.CloseIdleConnections()
		s.current.unverified.CloseIdleConnections()
	}
}

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
}

// RequestOf is the request that sends d to h.
func RequestOf(h *webhook.Hook, d *webhook.Delivery) Request {
	return Request{Hook: h, EventID: d.EventID, Chain: d.Chain, Trigger: gitlab.Trigger(d.Trigger), Body: d.Body, At: d.At,
		Rendered: d.Rendered}
}

// Send makes one attempt.
func (s *Sender) Send(ctx context.Context, cfg *SendConfig, req *Request) Result {
	start := time.Now()
	res := s.send(ctx, cfg, req)
	res.Duration = time.Since(start)
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
	// are decided at dial time, after DNS. The refusal is GitLab's words
	// for the rule.
	var blocked *BlockedError
	if err := cfg.Network.CheckURL(h.URL, h.URLVariables); errors.As(err, &blocked) {
		res.Err, res.detail = fmt.Errorf("POST %s: %s", h.MaskedURL(), blocked.Reason), err
		return res
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
		hreq.Header.Set("Idempotency-Key", webhook.IdempotencyKey(req.EventID, h.ID))
	default:
		dh := gitlab.DeliveryHeaders{
			Trigger: req.Trigger, UserAgent: cfg.UserAgent, Instance: cfg.Instance, Token: h.Token,
			WebhookUUID: uuid.NewString(), EventUUID: req.Chain,
			IdempotencyKey: webhook.IdempotencyKey(req.EventID, h.ID), Custom: h.CustomHeaders,
		}
		dh.Apply(hreq.Header)
		// Signed afresh on every attempt (retries, tests, resends): a new
		// timestamp, the current tokens.
		if err := h.Signing.Sign(hreq.Header, dh.IdempotencyKey, time.Now(), body); err != nil {
			res.Err = err
			return res
		}
	}
	res.RequestHeader = hreq.Header
	cs := s.clientsFor(&cfg.Network)
	client := cs.verified
	if !h.EnableSSLVerification {
		client = cs.unverified
	}
	resp, err := client.Do(hreq)
	if err != nil {
		res.Err, res.detail = describe(err, h)
		return res
	}
	defer resp.Body.Close()
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
