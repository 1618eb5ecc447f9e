package engine

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/engine/replay"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// What the API and the admin endpoints ask of the runtime; each call goes to
// the room that does it.

// HookHealth reads a hook's state; the state is shared by every process
// through Redis.
func (r *Runtime) HookHealth(ctx context.Context, hookID int64) (delivery.HookHealth, error) {
	return r.deliver.HookHealth(ctx, hookID)
}

// ResetHealth re-enables a hook: after a successful test request, or when a
// person re-enables it. Deliveries waiting for it go out when due.
func (r *Runtime) ResetHealth(ctx context.Context, hookID int64) error {
	return r.deliver.ResetHealth(ctx, hookID)
}

// TestHook is GitLab's "Test": one synchronous delivery of body to h,
// recorded in the hook's log (delivery.Deliverer.Test).
func (r *Runtime) TestHook(ctx context.Context, h *webhook.Hook, trig gitlab.Trigger, body []byte) delivery.Result {
	return r.deliver.Test(ctx, h, trig, body)
}

// TestSettings sends one message with settings not saved yet
// (delivery.Deliverer.TestSettings).
func (r *Runtime) TestSettings(ctx context.Context, h *webhook.Hook, trig gitlab.Trigger, body []byte) delivery.Result {
	return r.deliver.TestSettings(ctx, h, trig, body)
}

// Resend sends a logged attempt's payload again (delivery.Deliverer.Resend).
func (r *Runtime) Resend(ctx context.Context, h *webhook.Hook, e *webhook.LogEntry) (delivery.Result, error) {
	return r.deliver.Resend(ctx, h, e)
}

// HookLog lists the IDs and statuses of a hook's log entries within the
// retention, newest first.
func (r *Runtime) HookLog(ctx context.Context, hookID int64) ([]webhook.LogRef, error) {
	return r.hookLog.Refs(ctx, hookID)
}

// HookLogEntries reads log entries of a hook by ID within the retention.
func (r *Runtime) HookLogEntries(ctx context.Context, hookID int64, ids ...int64) ([]webhook.LogEntry, error) {
	return r.hookLog.Entries(ctx, hookID, ids...)
}

// Throttle counts one call of a rate-limited API action (test, resend) by
// scope and reports whether it is within limit per window; every process
// sharing the Redis shares the count.
func (r *Runtime) Throttle(ctx context.Context, action, scope string, limit int, window time.Duration) (bool, time.Duration, error) {
	return r.store.Control().Throttle(ctx, action, scope, limit, window, time.Now())
}

// Idempotency is the store of the Idempotency-Keys clients send with the
// events they post (webhooks_ingest).
func (r *Runtime) Idempotency() *redisstore.Idempotency { return r.store.Idempotency() }

// LatestEvent returns the latest payload of trigger seen for project, or
// nil: the sample a test request sends.
func (r *Runtime) LatestEvent(ctx context.Context, project string, trig gitlab.Trigger) ([]byte, error) {
	return r.fan.LatestEvent(ctx, project, trig)
}

// ManagedHooks is the store of the hooks managed through the API, their
// secrets sealed with box.
func (r *Runtime) ManagedHooks(box *secret.Box) *redisstore.Hooks { return r.store.Hooks(box) }

// Integrations is the store of the chat integrations, their webhooks
// sealed with box.
func (r *Runtime) Integrations(box *secret.Box) *redisstore.Integrations {
	return r.store.Integrations(box)
}

// Collectors returns the engine's metrics for registration.
func Collectors() []prometheus.Collector { return metrics.All() }

// CountRejected records an event refused before it reached the engine.
func CountRejected(reason string) { metrics.EventsRejected.WithLabelValues(reason).Inc() }

// OrderedState reads an ordered hook's queue: its deliveries pending, and
// the head that blocks them, if it failed.
func (r *Runtime) OrderedState(ctx context.Context, hookID int64) (redisstore.OrderedState, error) {
	return r.ordered.State(ctx, hookID)
}

// DropOrdered deletes the queue of an ordered hook that was deleted.
func (r *Runtime) DropOrdered(ctx context.Context, hookID int64) error {
	return r.ordered.Drop(ctx, hookID)
}

// StartReplay plans a replay of what was delivered or failed and, unless
// it is a dry run, queues it to be sent at a pace that leaves live
// deliveries first (engine/replay; not the spool's Replay). A bad request
// is a *replay.InputError.
func (r *Runtime) StartReplay(ctx context.Context, req replay.Request) (replay.Job, error) {
	return r.replay.Start(ctx, req)
}

// Replays lists the replays kept, oldest first.
func (r *Runtime) Replays(ctx context.Context) ([]replay.Job, error) { return r.replay.List(ctx) }

// ReplayJob returns one replay.
func (r *Runtime) ReplayJob(ctx context.Context, id int64) (replay.Job, error) {
	return r.replay.Get(ctx, id)
}

// CancelReplay stops a replay; what it queued stays queued.
func (r *Runtime) CancelReplay(ctx context.Context, id int64) (replay.Job, error) {
	return r.replay.Cancel(ctx, id)
}
