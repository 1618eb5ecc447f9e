package engine

import (
	"context"
	"fmt"
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
	c, k := r.store.Client(), r.store.Keys()
	ev, err1 := c.XLen(ctx, k.Events()).Result()
	rd, err2 := c.XLen(ctx, k.Ready()).Result()
	sc, err3 := c.ZCard(ctx, k.Schedule()).Result()
	dl, err4 := c.XLen(ctx, k.Dead()).Result()
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return Stats{}, fmt.Errorf("reading queue depths: %w", err)
		}
	}
	return Stats{Events: ev, Ready: rd, Scheduled: sc, DeadLetters: dl, Silent: r.cfg.Load().Silent, Paused: r.paused.Load()}, nil
}

// Redrive puts dead letters back in the queue as first attempts: the given
// IDs, or all of them.
func (r *Runtime) Redrive(ctx context.Context, ids []string, all bool) (int, error) {
	if !all {
		return r.store.Redrive(ctx, ids...)
	}
	total := 0
	for after := "-"; ; {
		dls, err := r.store.DeadLetters(ctx, after, 500)
		if err != nil || len(dls) == 0 {
			return total, err
		}
		batch := make([]string, 0, len(dls))
		for _, d := range dls {
			batch = append(batch, d.ID)
		}
		n, err := r.store.Redrive(ctx, batch...)
		total += n
		if err != nil {
			return total, err
		}
		after = dls[len(dls)-1].ID
	}
}
