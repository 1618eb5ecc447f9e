package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Idempotency remembers the Idempotency-Keys clients send with the events
// they post, so a retry within the window is answered with the first
// event's ID instead of being queued again.
type Idempotency struct{ s *Store }

// Idempotency is the store of clients' idempotency keys.
func (s *Store) Idempotency() *Idempotency { return &Idempotency{s: s} }

// Claim remembers eventID under caller's key for window (SET NX with a
// TTL) and returns the event ID the key holds: eventID when this is the
// first use, the earlier event's ID for a retry.
func (i *Idempotency) Claim(ctx context.Context, caller, key, eventID string, window time.Duration) (first string, err error) {
	k := i.s.keys.Idempotency(caller, key)
	for {
		ok, err := i.s.rdb.SetNX(ctx, k, eventID, window).Result()
		if err != nil {
			return eventID, fmt.Errorf("claiming an idempotency key: %w", err)
		}
		if ok {
			return eventID, nil
		}
		first, err := i.s.rdb.Get(ctx, k).Result()
		if errors.Is(err, redis.Nil) { // expired in between: claim it afresh
			continue
		}
		if err != nil {
			return first, fmt.Errorf("reading an idempotency key: %w", err)
		}
		return first, nil
	}
}

// releaseScript deletes KEYS[1] if it still holds ARGV[1].
var releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Release forgets caller's claim of key if it is still eventID's (an
// event that could not be kept), so the client's retry is queued rather
// than taken for a duplicate.
func (i *Idempotency) Release(ctx context.Context, caller, key, eventID string) error {
	err := releaseScript.Run(ctx, i.s.rdb, []string{i.s.keys.Idempotency(caller, key)}, eventID).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("releasing an idempotency key: %w", err)
	}
	return nil
}
