package hooklog

import (
	"context"
	"time"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

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
