package engine

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// ErrOversize is returned for a log entry whose payload was too large to
// keep: there is nothing to resend.
var ErrOversize = errors.New("the payload of this log entry was too large to keep, and it cannot be resent")

// HookLog lists the IDs and statuses of a hook's log entries within the
// retention, newest first.
func (r *Runtime) HookLog(ctx context.Context, hookID int64) ([]redisstore.LogRef, error) {
	since := time.Now().Add(-r.logPolicy().Retention)
	return r.store.LogRefs(ctx, hookID, since)
}

// HookLogEntries reads log entries of a hook by ID; entries past the
// retention are left out.
func (r *Runtime) HookLogEntries(ctx context.Context, hookID int64, ids ...int64) ([]redisstore.LogEntry, error) {
	es, err := r.store.LogEntries(ctx, hookID, ids...)
	if err != nil {
		return nil, err
	}
	since := time.Now().Add(-r.logPolicy().Retention)
	keep := es[:0]
	for _, e := range es {
		if !e.CreatedAt.Before(since) {
			keep = append(keep, e)
		}
	}
	return keep, nil
}

// sendConfig is the delivery settings, or defaults before configuration.
func (r *Runtime) sendConfig() SendConfig {
	if cfg := r.cfg.Load(); cfg != nil {
		return cfg.Send
	}
	return SendConfig{Timeout: 10 * time.Second, MaxResponseBody: LogMaxResponseBody, UserAgent: "GitLab"}
}

// TestHook is GitLab's "Test": one synchronous delivery of body to h with
// a fresh event ID, whatever the hook's state. It is recorded in the
// hook's log, and a 2xx answer re-enables a disabled hook.
func (r *Runtime) TestHook(ctx context.Context, h *Hook, trig gitlab.Trigger, body []byte) Result {
	send := r.sendConfig()
	id := newEventID()
	res := r.sender.Send(ctx, &send, h, id, id, trig, body)
	r.afterManual(ctx, LogTest, h, id, id, string(trig), body, &res)
	return res
}

// Resend sends a logged attempt's payload again, as GitLab's "Resend
// Request": to the hook's current URL with its current token, custom
// headers and TLS setting, with the same Idempotency-Key (same event and
// hook) and X-Gitlab-Event-UUID, and a new X-Gitlab-Webhook-UUID. It is
// recorded as a new log entry; a 2xx answer resets the hook's failures.
func (r *Runtime) Resend(ctx context.Context, h *Hook, e *redisstore.LogEntry) (Result, error) {
	if e.Oversize {
		return Result{}, ErrOversize
	}
	send := r.sendConfig()
	trig := gitlab.Trigger(e.Trigger)
	if e.Rendered {
		// Already the template's rendering: sent again as it is.
		plain := *h
		plain.CustomWebhookTemplate = ""
		h = &plain
	}
	res := r.sender.Send(ctx, &send, h, e.EventID, e.Chain, trig, e.RequestData)
	if e.Rendered && res.SentBody == nil {
		res.SentBody = e.RequestData
	}
	r.afterManual(ctx, LogResend, h, e.EventID, e.Chain, e.Trigger, e.RequestData, &res)
	return res, nil
}

// afterManual logs a test or resend and re-enables the hook on success.
func (r *Runtime) afterManual(ctx context.Context, kind string, h *Hook, eventID, chain, trig string, body []byte, res *Result) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	r.logResult(h, &redisstore.Delivery{EventID: eventID, HookID: h.ID, Trigger: trig, Chain: chain, At: time.Now().Add(-res.Duration)}, res)
	r.appendLog(ctx, kind, h, eventID, chain, trig, body, res)
	if !res.Success() {
		return
	}
	if err := r.ResetHealth(ctx, h.ID); err != nil {
		r.log.Warn("re-enabling the hook after a successful request failed", zap.Int64("hook_id", h.ID),
			zap.String("kind", kind), zap.Error(err))
	}
}

// Throttle counts one call of a rate-limited API action (test, resend) by
// scope and reports whether it is within limit per window; every process
// sharing the Redis shares the count.
func (r *Runtime) Throttle(ctx context.Context, action, scope string, limit int, window time.Duration) (bool, time.Duration, error) {
	return r.store.Throttle(ctx, action, scope, limit, window, time.Now())
}

// newEventID is a fresh event ID (UUIDv7, so IDs sort by time).
func newEventID() string {
	if v7, err := uuid.NewV7(); err == nil {
		return v7.String()
	}
	return uuid.NewString()
}
