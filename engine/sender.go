package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
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
}

// Sender sends deliveries over HTTP.
type Sender struct {
	verified, unverified *http.Client
}

// NewSender builds a sender with one client that verifies TLS and one that
// does not (for hooks with enable_ssl_verification false).
func NewSender() *Sender {
	return &Sender{verified: newClient(false), unverified: newClient(true)}
}

func newClient(insecure bool) *http.Client {
	t := &http.Transport{
		Proxy:                 nil, // deliveries go straight to the receiver
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
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
	s.verified.CloseIdleConnections()
	s.unverified.CloseIdleConnections()
}

// Send makes one attempt to deliver d to h.
func (s *Sender) Send(ctx context.Context, cfg *SendConfig, h *Hook, eventID, chain string, trig gitlab.Trigger, body []byte) Result {
	start := time.Now()
	res := s.send(ctx, cfg, h, eventID, chain, trig, body)
	res.Duration = time.Since(start)
	return res
}

func (s *Sender) send(ctx context.Context, cfg *SendConfig, h *Hook, eventID, chain string, trig gitlab.Trigger, body []byte) (res Result) {
	target, err := gitlab.InterpolateURL(h.URL, h.URLVariables)
	if err != nil {
		res.Err = err
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		// The error text would carry the URL with its variables' values.
		res.Err = fmt.Errorf("invalid URL %s", h.MaskedURL())
		return res
	}
	dh := gitlab.DeliveryHeaders{
		Trigger: trig, UserAgent: cfg.UserAgent, Instance: cfg.Instance, Token: h.Token,
		WebhookUUID: uuid.NewString(), EventUUID: chain,
		IdempotencyKey: IdempotencyKey(eventID, h.ID), Custom: h.CustomHeaders,
	}
	dh.Apply(req.Header)
	res.RequestHeader = req.Header
	client := s.verified
	if !h.EnableSSLVerification {
		client = s.unverified
	}
	resp, err := client.Do(req)
	if err != nil {
		res.Err = describe(err, h)
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

// describe turns a client error into internal error text without the URL
// (which may carry secrets from URL variables or user info).
func describe(err error, h *Hook) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("request timed out")
	}
	// net/http's words for a peer that hung up before answering.
	if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "readLoopPeekFailLocked") ||
		strings.Contains(err.Error(), "server closed idle connection") {
		return fmt.Errorf("POST %s: the receiver closed the connection without answering", h.MaskedURL())
	}
	return fmt.Errorf("POST %s: %v", h.MaskedURL(), err)
}
