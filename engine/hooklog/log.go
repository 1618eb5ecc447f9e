package hooklog

import (
	"context"
	"sync/atomic"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Log is the hook log of one runtime: it builds the entries of attempts
// under the current policy, records them and reads them back.
type Log struct {
	store  *redisstore.Log
	policy atomic.Pointer[Policy]
}

// New builds a hook log.
func New(store *redisstore.Log) *Log {
	l := &Log{store: store}
	l.Configure(Policy{})
	return l
}

// Configure swaps in a new policy (zero fields: defaults).
func (l *Log) Configure(p Policy) {
	p = p.withDefaults()
	l.policy.Store(&p)
}

// Entry builds an attempt's log entry under the current policy.
func (l *Log) Entry(kind string, a *Attempt) *webhook.LogEntry {
	return NewEntry(kind, a, l.policy.Load().MaxRequestBody)
}

// Limits bound each hook's log under the current policy.
func (l *Log) Limits() redisstore.LogLimits {
	p := l.policy.Load()
	return redisstore.LogLimits{Retention: p.Retention, MaxEntries: p.MaxEntries}
}

// Store stores an entry built by Entry and returns its ID.
func (l *Log) Store(ctx context.Context, e *webhook.LogEntry) (int64, error) {
	return l.store.Append(ctx, e, l.Limits())
}

// Record builds and stores the entry of one attempt made outside the
// queue (a test, a resend; a queued delivery's entry is stored with its
// settle) and returns its ID.
func (l *Log) Record(ctx context.Context, kind string, a *Attempt) (int64, error) {
	return l.store.Append(ctx, l.Entry(kind, a), l.Limits())
}
