package module

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/api"
)

// idempotencyKey is the Redis key remembering a client's Idempotency-Key:
// per caller, so one token cannot swallow another's events, and hashed, so
// any client string makes a safe key.
func (in *Ingest) idempotencyKey(caller api.Caller, key string) string {
	sum := sha256.Sum256([]byte(caller.Name() + "\x00" + key))
	return in.rt.Store().Keys().Namespace + ":{i0}:idem:" + hex.EncodeToString(sum[:])
}

// claimKey remembers eventID under the client's key for the idempotency
// window (SET NX with a TTL) and returns the event ID the key holds: eventID
// when this is the first use, the earlier event's ID for a retry.
func (in *Ingest) claimKey(ctx context.Context, caller api.Caller, key, eventID string) (string, error) {
	rdb, k := in.rt.Store().Client(), in.idempotencyKey(caller, key)
	ok, err := rdb.SetNX(ctx, k, eventID, time.Duration(in.IdempotencyWindow)).Result()
	if err != nil || ok {
		return eventID, err
	}
	first, err := rdb.Get(ctx, k).Result()
	if errors.Is(err, redis.Nil) { // expired in between: claim it afresh
		return in.claimKey(ctx, caller, key, eventID)
	}
	return first, err
}

// releaseKey forgets a claim whose event could not be kept, if it is still
// ours, so the client's retry is queued rather than taken for a duplicate.
func (in *Ingest) releaseKey(caller api.Caller, key, eventID string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(in.EnqueueTimeout))
	defer cancel()
	k := in.idempotencyKey(caller, key)
	if err := releaseScript.Run(ctx, in.rt.Store().Client(), []string{k}, eventID).Err(); err != nil && !errors.Is(err, redis.Nil) {
		in.logger.Warn("idempotency key kept for an event that was lost: a retry within the window is taken for a duplicate",
			zap.Error(err))
	}
}

var releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
