package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// The requests a person makes from a hook's page or through the API,
// outside the queue: GitLab's "Test" and "Resend Request".

// ErrOversize is returned for a log entry whose payload was too large to
// keep: there is nothing to resend.
var ErrOversize = errors.New("the payload of this log entry was too large to keep, and it cannot be resent")

// Test is GitLab's "Test": one synchronous delivery of body to h with a
// fresh event ID, whatever the hook's state. It is recorded in the hook's
// log, and a 2xx answer re-enables a disabled hook. Made through a traced
// request (ctx carries its span), the attempt is a span in that trace.
func (d *Deliverer) Test(ctx context.Context, h *webhook.Hook, trig gitlab.Trigger, body []byte) Result {
	id := newEventID()
	return d.sendManual(ctx, hooklog.KindTest, &Request{Hook: h, EventID: id, Chain: id, Trigger: trig, Body: body, Attempt: 1})
}

// Resend sends a logged attempt's payload again, as GitLab's "Resend
// Request": to the hook's current URL with its current token, custom
// headers and TLS setting, with the same Idempotency-Key (same event and
// hook) and X-Gitlab-Event-UUID, and a new X-Gitlab-Webhook-UUID. It is
// recorded as a new log entry; a 2xx answer resets the hook's failures.
func (d *Deliverer) Resend(ctx context.Context, h *webhook.Hook, e *webhook.LogEntry) (Result, error) {
	if e.Oversize {
		return Result{}, ErrOversize
	}
	// An entry of a custom webhook template holds what was sent: it is
	// sent again as it is, not rendered again.
	return d.sendManual(ctx, hooklog.KindResend, &Request{Hook: h, EventID: e.EventID, Chain: e.Chain,
		Trigger: gitlab.Trigger(e.Trigger), Body: e.RequestData, Rendered: e.Rendered, Attempt: 1}), nil
}

// TestSettings is GitLab's "Test settings" of an integration: one request
// to h, settings not saved yet, under the current delivery settings (the
// address guard among them). Nothing is recorded and no health changes:
// the settings tried are nobody's yet.
func (d *Deliverer) TestSettings(ctx context.Context, h *webhook.Hook, trig gitlab.Trigger, body []byte) Result {
	id := newEventID()
	req := &Request{Hook: h, EventID: id, Chain: id, Trigger: trig, Body: body, At: time.Now()}
	send := d.manualSend()
	res := d.sender.Send(ctx, &send, req)
	d.logResult(hooklog.KindTest, req, &res)
	return res
}

// manualSend is the send configuration of requests a person makes.
func (d *Deliverer) manualSend() SendConfig {
	if cfg := d.cfg.Load(); cfg != nil {
		return cfg.Send
	}
	return SendConfig{Timeout: 10 * time.Second, MaxResponseBody: 8 << 10, UserAgent: "GitLab"}
}

// sendManual sends a test or resend under the current delivery settings,
// records it in the hook's log, then re-enables the hook on success.
func (d *Deliverer) sendManual(ctx context.Context, kind string, req *Request) Result {
	req.At = time.Now()
	send := d.manualSend()
	res := d.sender.Send(ctx, &send, req)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	d.logResult(kind, req, &res)
	// A failure to record is logged, never fatal: the request was made.
	if _, err := d.record.Record(ctx, kind, attempt(req, &res)); err != nil {
		d.log.Warn("recording a delivery attempt in the hook's log failed", zap.Int64("hook_id", req.Hook.ID),
			zap.String("event", req.EventID), zap.String("kind", kind), zap.Error(err))
	}
	if !res.Success() {
		return res
	}
	if err := d.ResetHealth(ctx, req.Hook.ID); err != nil {
		d.log.Warn("re-enabling the hook after a successful request failed", zap.Int64("hook_id", req.Hook.ID),
			zap.String("kind", kind), zap.Error(err))
	}
	return res
}

// newEventID is a fresh event ID (UUIDv7, so IDs sort by time).
func newEventID() string {
	if v7, err := uuid.NewV7(); err == nil {
		return v7.String()
	}
	return uuid.NewString()
}
