package hooklog

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// ErrOversize is returned for a log entry whose payload was too large to
// keep: there is nothing to resend.
var ErrOversize = errors.New("the payload of this log entry was too large to keep, and it cannot be resent")

// Refs lists the IDs and statuses of a hook's log entries within the
// retention, newest first.
func (l *Log) Refs(ctx context.Context, hookID int64) ([]webhook.LogRef, error) {
	since := time.Now().Add(-l.policy.Load().Retention)
	return l.store.Refs(ctx, hookID, since)
}

// Entries reads log entries of a hook by ID; entries past the retention
// are left out.
func (l *Log) Entries(ctx context.Context, hookID int64, ids ...int64) ([]webhook.LogEntry, error) {
	es, err := l.store.Entries(ctx, hookID, ids...)
	if err != nil {
		return nil, err
	}
	since := time.Now().Add(-l.policy.Load().Retention)
	keep := es[:0]
	for _, e := range es {
		if !e.CreatedAt.Before(since) {
			keep = append(keep, e)
		}
	}
	return keep, nil
}

// TestHook is GitLab's "Test": one synchronous delivery of body to h with
// a fresh event ID, whatever the hook's state. It is recorded in the
// hook's log, and a 2xx answer re-enables a disabled hook.
func (l *Log) Test(ctx context.Context, h *webhook.Hook, trig gitlab.Trigger, body []byte) delivery.Result {
	id := newEventID()
	return l.sendManual(ctx, KindTest, &delivery.Request{Hook: h, EventID: id, Chain: id, Trigger: trig, Body: body})
}

// Resend sends a logged attempt's payload again, as GitLab's "Resend
// Request": to the hook's current URL with its current token, custom
// headers and TLS setting, with the same Idempotency-Key (same event and
// hook) and X-Gitlab-Event-UUID, and a new X-Gitlab-Webhook-UUID. It is
// recorded as a new log entry; a 2xx answer resets the hook's failures.
func (l *Log) Resend(ctx context.Context, h *webhook.Hook, e *webhook.LogEntry) (delivery.Result, error) {
	if e.Oversize {
		return delivery.Result{}, ErrOversize
	}
	// An entry of a custom webhook template holds what was sent: it is
	// sent again as it is, not rendered again.
	return l.sendManual(ctx, KindResend, &delivery.Request{Hook: h, EventID: e.EventID, Chain: e.Chain,
		Trigger: gitlab.Trigger(e.Trigger), Body: e.RequestData, Rendered: e.Rendered}), nil
}

// sendManual sends a test or resend, logs it, and re-enables the hook on
// success.
func (l *Log) sendManual(ctx context.Context, kind string, req *delivery.Request) delivery.Result {
	req.At = time.Now()
	res := l.send.Send(ctx, req)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	l.send.LogResult(req, &res)
	l.append(ctx, kind, req, &res)
	if !res.Success() {
		return res
	}
	if err := l.send.ResetHealth(ctx, req.Hook.ID); err != nil {
		l.log.Warn("re-enabling the hook after a successful request failed", zap.Int64("hook_id", req.Hook.ID),
			zap.String("kind", kind), zap.Error(err))
	}
	return res
}

// Throttle counts one call of a rate-limited API action (test, resend) by
// scope and reports whether it is within limit per window; every process
// sharing the Redis shares the count.
func (l *Log) Throttle(ctx context.Context, action, scope string, limit int, window time.Duration) (bool, time.Duration, error) {
	return l.ctl.Throttle(ctx, action, scope, limit, window, time.Now())
}

// newEventID is a fresh event ID (UUIDv7, so IDs sort by time).
func newEventID() string {
	if v7, err := uuid.NewV7(); err == nil {
		return v7.String()
	}
	return uuid.NewString()
}
