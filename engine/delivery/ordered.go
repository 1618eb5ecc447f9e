package delivery

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// What delivery does for ordered hooks, whose queues are the ordered
// room's (engine/ordered): the attempt of a head, and the hand-off of a
// delivery that reached the ready stream (a redrive, a replay, or a hook
// made ordered since) to the tail of its hook's queue.

// OrderedQueue takes deliveries of ordered hooks from the ready stream.
type OrderedQueue interface {
	// Tail adds a delivery, its payload filled in, at the tail of its
	// hook's queue.
	Tail(ctx context.Context, shard int, d *webhook.Delivery) error
}

// SetOrdered gives the deliverer the queue of ordered hooks; before it is
// set, every hook's deliveries go the unordered way.
func (d *Deliverer) SetOrdered(q OrderedQueue) { d.ordered = q }

// handOrdered moves a ready entry of an ordered hook to the tail of the
// hook's queue, then settles the entry. A failure leaves the entry
// pending: it is handed out again after the lease (and added once).
func (d *Deliverer) handOrdered(m *redisstore.DeliveryMsg) {
	ctx, cancel := d.recordCtx()
	defer cancel()
	if err := d.ordered.Tail(ctx, m.Shard, &m.Delivery); err != nil {
		d.log.Warn("handing a delivery to its hook's ordered queue failed; it will be handed out again after the lease",
			zap.Int64("hook_id", m.Delivery.HookID), zap.String("event", m.Delivery.EventID), zap.Error(err))
		return
	}
	d.settlePlain(m)
}

// Attempted is an attempt of an ordered head: its outcome and log entry;
// or, when Wait is set, no attempt (the hook's namespace is over its
// calls per minute until then).
type Attempted struct {
	Outcome redisstore.Outcome
	Entry   *webhook.LogEntry
	Wait    time.Time
}

// AttemptOrdered makes one attempt of an ordered hook's delivery (its
// head), with the worker slot the caller holds, as deliver does for the
// others: the hook's rate limit, the request, metrics and logs. The
// caller records the outcome with the queue.
func (d *Deliverer) AttemptOrdered(ctx context.Context, hook *webhook.Hook, dv *webhook.Delivery) Attempted {
	cfg := d.cfg.Load()
	now := time.Now()
	if cfg.CallsPerMinute > 0 {
		verdict, until, err := d.store.Health.Admit(ctx, hook.ID, topLevel(hook), cfg.CallsPerMinute, now)
		if err == nil && verdict == redisstore.RateLimited {
			metrics.Deferred.WithLabelValues("rate_limited").Inc()
			return Attempted{Wait: until.Add(jitter(5 * time.Second))}
		}
	}
	req, res := d.try(ctx, cfg, hook, dv)
	out, entry := d.observe(cfg, hook, dv, &req, &res)
	out.At = time.Now()
	return Attempted{Outcome: out, Entry: entry}
}

// Slot takes a worker slot for an ordered head, waiting until one is free
// or ctx ends; release gives it back.
func (d *Deliverer) Slot(ctx context.Context) (release func(), err error) {
	if err := d.slots.acquire(ctx); err != nil {
		return nil, err
	}
	return d.slots.release, nil
}

// Settings are the settings deliveries follow now.
func (d *Deliverer) Settings() Config { return *d.cfg.Load() }

// Record stores the log entry of an ordered head's attempt.
func (d *Deliverer) Record(ctx context.Context, e *webhook.LogEntry) {
	if _, err := d.record.Store(ctx, e); err != nil {
		d.log.Warn("recording a delivery attempt in the hook's log failed", zap.Int64("hook_id", e.HookID),
			zap.String("event", e.EventID), zap.String("kind", hooklog.KindDelivery), zap.Error(err))
	}
}
