package engine

import (
	"context"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// Stats are the queue depths of a namespace, shared by all processes.
type Stats struct {
	// Events captured but not yet fanned out.
	Events int64 `json:"events"`
	// Ready deliveries waiting for a worker (or being sent).
	Ready int64 `json:"ready"`
	// Scheduled deliveries waiting for a retry, a disabled hook or a rate limit.
	Scheduled int64 `json:"scheduled"`
	// DeadLetters given up on; redrive them once the cause is fixed.
	DeadLetters int64 `json:"dead_letters"`
	// Silent is true while silent mode holds deliveries back.
	Silent bool `json:"silent"`
	// Paused is true while an operator paused deliveries.
	Paused bool `json:"paused"`
}

// Stats reads the queue depths.
func (r *Runtime) Stats(ctx context.Context) (Stats, error) {
	d, err := r.store.Control().QueueDepths(ctx)
	if err != nil {
		return Stats{}, err
	}
	return Stats{Events: d.Events, Ready: d.Ready, Scheduled: d.Scheduled, DeadLetters: d.Dead,
		Silent: r.cfg.Load().Silent, Paused: r.deliver.Paused()}, nil
}

// Redrive puts dead letters back in the queue as first attempts: the given
// IDs, or all of them.
func (r *Runtime) Redrive(ctx context.Context, ids []string, all bool) (int, error) {
	return r.recovery.Redrive(ctx, ids, all)
}

// DeadLetters lists up to count dead letters of every shard, oldest
// first, after start ("-": from the first).
func (r *Runtime) DeadLetters(ctx context.Context, start string, count int64) ([]redisstore.DeadLetter, error) {
	return r.store.DeadLetters().List(ctx, start, count)
}
