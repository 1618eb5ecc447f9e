package module

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/api"
)

// claimKey remembers eventID under the client's key for the idempotency
// window and returns the event ID the key holds: eventID when this is the
// first use, the earlier event's ID for a retry. Keys are per caller, so
// one token cannot swallow another's events.
func (in *Ingest) claimKey(ctx context.Context, caller api.Caller, key, eventID string) (string, error) {
	return in.rt.Idempotency().Claim(ctx, caller.Name(), key, eventID, time.Duration(in.IdempotencyWindow))
}

// releaseKey forgets a claim whose event could not be kept, if it is still
// ours, so the client's retry is queued rather than taken for a duplicate.
func (in *Ingest) releaseKey(caller api.Caller, key, eventID string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(in.EnqueueTimeout))
	defer cancel()
	if err := in.rt.Idempotency().Release(ctx, caller.Name(), key, eventID); err != nil {
		in.logger.Warn("idempotency key kept for an event that was lost: a retry within the window is taken for a duplicate",
			zap.Error(err))
	}
}
