package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Idempotency remembers the Idempotency-Keys ingest clients send, each
// with the event it first queued, for a window.
type Idempotency struct{ *conn }

// Claim remembers eventID under caller's key for window (SET NX with a
// TTL) and returns the event ID the key holds: eventID when this is its
// first use, the earlier event's ID for a retry.
func (i *Idempotency) Claim(ctx context.Context, caller, key, eventID string, window time.Duration) (string, error) {
	k := i.keys.Idempotency(caller, key)
	for range 3 {
		ok, err := i.rdb.SetNX(ctx, k, eventID, window).Result()
		if err != nil {
			return "", fmt.Errorf("claiming an idempotency key: %w", err)
		}
		if ok {
			return eventID, nil
		}
		first, err := i.rdb.Get(ctx, k).Result()
		if errors.Is(err, redis.Nil) {
			continue // expired in between: claim it afresh
		}
		if err != nil {
			return "", fmt.Errorf("reading an idempotency key: %w", err)
		}
		return first, nil
	}
	return "", errors.New("claiming an idempotency key: it kept expiring under the claim")
}

// Release forgets caller's key if it still holds eventID: a claim whose
// event could not be kept, so that the client's retry is queued rather
// than taken for a duplicate.
func (i *Idempotency) Release(ctx context.Context, caller, key, eventID string) error {
	err := releaseIdempotencyKeyScript.run(ctx, i.rdb, []string{i.keys.Idempotency(caller, key)}, eventID).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("releasing an idempotency key: %w", err)
	}
	return nil
}
