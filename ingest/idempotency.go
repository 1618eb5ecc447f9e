package ingest

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/api"
)

// Idempotency remembers the Idempotency-Keys clients send, per caller.
// The store's (redisstore.Idempotency) implements it.
type Idempotency interface {
	// Claim remembers eventID under caller's key for window and returns
	// the event ID the key holds: eventID when this is the first use, the
	// earlier event's ID for a retry.
	Claim(ctx context.Context, caller, key, eventID string, window time.Duration) (first string, err error)
	// Release forgets caller's claim of key if it is still eventID's.
	Release(ctx context.Context, caller, key, eventID string) error
}

// claimKey claims the client's key for eventID within the idempotency
// window and returns the event ID the key holds: eventID when this is the
// first use, the earlier event's ID for a retry.
func (in *Handler) claimKey(ctx context.Context, caller api.Caller, key, eventID string) (string, error) {
	return in.keys.Claim(ctx, caller.Name(), key, eventID, in.IdempotencyWindow)
}

// releaseKey forgets a claim whose event could not be kept, if it is still
// ours, so the client's retry is queued rather than taken for a duplicate.
func (in *Handler) releaseKey(caller api.Caller, key, eventID string) {
	ctx, cancel := context.WithTimeout(context.Background(), in.EnqueueTimeout)
	defer cancel()
	if err := in.keys.Release(ctx, caller.Name(), key, eventID); err != nil {
		in.logger.Warn("idempotency key kept for an event that was lost: a retry within the window is taken for a duplicate",
			zap.Error(err))
	}
}
