package delivery

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// settle records an attempt's outcome, and the attempt in its hook's log
// when entry is set, in one round trip. A failure to record leaves the
// entry pending, so it is handed out again after the lease.
func (d *Deliverer) settle(m *redisstore.DeliveryMsg, hook *webhook.Hook, out redisstore.Outcome, entry *webhook.LogEntry) {
	cfg := d.cfg.Load()
	ctx, cancel := d.recordCtx()
	defer cancel()
	out.At = time.Now()
	st, err := d.store.Queue.Settle(ctx, m, out, entry,
		redisstore.Rules{Health: cfg.HealthFor(hook), DeadLetters: cfg.DeadLetters, Log: d.record.Limits()})
	if err != nil {
		d.log.Error("recording delivery outcome failed; it will be handed out again after the lease",
			zap.String("event", m.Delivery.EventID), zap.Int64("hook_id", hook.ID), zap.Error(err))
		return
	}
	metrics.DeadLettersTrimmed.WithLabelValues("count").Add(float64(st.TrimmedForCount))
	metrics.DeadLettersTrimmed.WithLabelValues("bytes").Add(float64(st.TrimmedForBytes))
	if st.LogErr != nil {
		d.log.Warn("recording a delivery attempt in the hook's log failed", zap.Int64("hook_id", hook.ID),
			zap.String("event", m.Delivery.EventID), zap.String("kind", hooklog.KindDelivery), zap.Error(st.LogErr))
	}
	d.NoteSettled(hook, &m.Delivery, out, st)
}

// NoteSettled takes in what settling a delivery of hook found of the
// hook's health, and counts and logs the outcome; the ordered queues call
// it for their heads too.
func (d *Deliverer) NoteSettled(hook *webhook.Hook, dv *webhook.Delivery, out redisstore.Outcome, st redisstore.Settled) {
	d.disabled.note(hook.ID, st, out.Success)
	switch {
	case out.Retry:
		metrics.Deliveries.WithLabelValues("retry_scheduled").Inc()
	case !out.Success:
		metrics.DeadLetters.WithLabelValues(deadReason(out)).Inc()
		d.log.Warn("delivery dead-lettered", zap.Int64("hook_id", hook.ID), zap.String("hook", hook.Name),
			zap.String("event", dv.EventID), zap.String("reason", out.Reason))
	}
	d.alert(hook, dv, out, st)
	if st.Disabled && out.Attempted && !out.Success {
		d.log.Warn("hook disabled until re-enabled", zap.Int64("hook_id", hook.ID), zap.String("hook", hook.Name),
			zap.String("url", hook.MaskedURL()), zap.String("last_status", out.Status), zap.Int("failures", st.Fails))
	} else if !st.DisabledUntil.IsZero() {
		d.log.Warn("hook temporarily disabled", zap.Int64("hook_id", hook.ID), zap.String("hook", hook.Name),
			zap.Time("until", st.DisabledUntil), zap.Int("failures", st.Fails))
	}
}

// GiveUp dead-letters a delivery without an attempt.
func (d *Deliverer) GiveUp(m *redisstore.DeliveryMsg, hook *webhook.Hook, reason string) {
	d.settle(m, hook, redisstore.Outcome{Reason: reason}, nil)
}

// GiveUpPoison dead-letters a delivery handed out n times without being
// settled.
func (d *Deliverer) GiveUpPoison(m *redisstore.DeliveryMsg, hook *webhook.Hook, n int64) {
	d.GiveUp(m, hook, fmt.Sprintf("poison: handed out %d times without being settled", n))
}

// postpone moves a delivery to the schedule without counting an attempt.
func (d *Deliverer) postpone(m *redisstore.DeliveryMsg, due time.Time, why string) {
	sctx, cancel := d.recordCtx()
	defer cancel()
	if _, err := d.store.Queue.Defer(sctx, m, due); err != nil {
		d.log.Warn("deferring delivery failed; it will be handed out again after the lease",
			zap.Int64("hook_id", m.Delivery.HookID), zap.Error(err))
		return
	}
	metrics.Deferred.WithLabelValues(why).Inc()
}

// settlePlain acknowledges an entry that cannot be delivered at all.
func (d *Deliverer) settlePlain(m *redisstore.DeliveryMsg) {
	ctx, cancel := d.recordCtx()
	defer cancel()
	if err := d.store.Queue.SettleDeliveries(ctx, m); err != nil {
		d.log.Error("settling delivery failed", zap.String("entry", m.StreamID), zap.Error(err))
	}
}

// attempt is what the hook log is told of an attempt.
func attempt(req *Request, res *Result) *hooklog.Attempt {
	return &hooklog.Attempt{Hook: req.Hook, EventID: req.EventID, Chain: req.Chain, Trigger: req.Trigger,
		Payload: req.Body, Sent: res.SentBody, RequestHeader: res.RequestHeader,
		Status: res.Status, Header: res.Header, Body: res.Body, Err: res.Err, Duration: res.Duration}
}
