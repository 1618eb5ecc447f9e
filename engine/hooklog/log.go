package hooklog

import (
	"context"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Log is the hook log of one runtime: it builds the entries of attempts
// under the current policy, reads them back, and sends tests and resends
// (which it records too).
type Log struct {
	store  *redisstore.Log
	ctl    *redisstore.Control
	log    *zap.Logger
	send   *delivery.Deliverer
	policy atomic.Pointer[Policy]
}

// New builds a hook log; Use gives it the deliverer that sends tests and
// resends.
func New(store *redisstore.Log, ctl *redisstore.Control, log *zap.Logger) *Log {
	l := &Log{store: store, ctl: ctl, log: log}
	l.Configure(Policy{})
	return l
}

// Use sets the deliverer that sends tests and resends and re-enables hooks.
func (l *Log) Use(d *delivery.Deliverer) { l.send = d }

// Configure swaps in a new policy (zero fields: defaults).
func (l *Log) Configure(p Policy) {
	p = p.withDefaults()
	l.policy.Store(&p)
}

// Entry builds an attempt's log entry under the current policy.
func (l *Log) Entry(kind string, req *delivery.Request, res *delivery.Result) *webhook.LogEntry {
	return NewEntry(kind, req, res, l.policy.Load().MaxRequestBody)
}

// Limits bound each hook's log under the current policy.
func (l *Log) Limits() redisstore.LogLimits {
	p := l.policy.Load()
	return redisstore.LogLimits{Retention: p.Retention, MaxEntries: p.MaxEntries}
}

// append builds and stores one entry (tests and resends; deliveries store
// theirs with the settle). It returns the entry's ID, 0 when it could not
// be stored: a failure is logged, never fatal.
func (l *Log) append(ctx context.Context, kind string, req *delivery.Request, res *delivery.Result) int64 {
	id, err := l.store.Append(ctx, l.Entry(kind, req, res), l.Limits())
	if err != nil {
		l.log.Warn("recording a delivery attempt in the hook's log failed", zap.Int64("hook_id", req.Hook.ID),
			zap.String("event", req.EventID), zap.String("kind", kind), zap.Error(err))
		return 0
	}
	return id
}
