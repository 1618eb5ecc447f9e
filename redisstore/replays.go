package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Replays is the operator's replays: each a record and the list of what
// it sends again (references to log entries or dead letters, written by
// the engine), fed to the queue by one process at a time, a page at a
// time, at a pace that leaves room for live deliveries.
type Replays struct{ *conn }

// ErrReplayNotFound is returned for a replay id that is not kept.
var ErrReplayNotFound = errors.New("replay not found")

// Replay states.
const (
	ReplayQueued   = "queued"
	ReplayRunning  = "running"
	ReplayDone     = "done"
	ReplayCanceled = "canceled"
)

// ReplayRecord is a replay as kept: Spec is the engine's description of
// what it selected; Cursor is how many items were handed to the queue
// (Fed of them queued, Gone of them no longer there).
type ReplayRecord struct {
	ID                         int64
	Spec                       string
	State                      string
	Total, Cursor, Fed, Gone   int
	Created, Started, Finished time.Time
}

// replayKeep is how long a replay's items are kept, and a finished
// replay's record.
const replayKeep = 7 * 24 * time.Hour

// Create records a replay of items with its spec, queued.
func (r *Replays) Create(ctx context.Context, spec string, items []string, now time.Time) (int64, error) {
	id, err := r.rdb.Incr(ctx, r.keys.ReplaySeq()).Result()
	if err != nil {
		return 0, fmt.Errorf("creating a replay: %w", err)
	}
	const page = 1000
	for from := 0; from < len(items); from += page {
		batch := items[from:min(from+page, len(items))]
		args := make([]any, len(batch))
		for i, it := range batch {
			args[i] = it
		}
		_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.RPush(ctx, r.keys.ReplayItems(id), args...)
			p.PExpire(ctx, r.keys.ReplayItems(id), replayKeep)
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("creating replay %d: %w", id, err)
		}
	}
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.keys.Replay(id), "spec", spec, "state", ReplayQueued, "total", len(items), "cursor", 0,
			"fed", 0, "gone", 0, "created", now.UnixMilli())
		p.PExpire(ctx, r.keys.Replay(id), replayKeep)
		p.ZAdd(ctx, r.keys.Replays(), redis.Z{Score: float64(now.UnixMilli()), Member: id})
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("creating replay %d: %w", id, err)
	}
	return id, nil
}

// List returns the replays kept, oldest first; it forgets those whose
// record expired.
func (r *Replays) List(ctx context.Context) ([]ReplayRecord, error) {
	ids, err := r.rdb.ZRange(ctx, r.keys.Replays(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("listing replays: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			n, _ := strconv.ParseInt(id, 10, 64)
			cmds[i] = p.HGetAll(ctx, r.keys.Replay(n))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing replays: %w", err)
	}
	var out []ReplayRecord
	var gone []any
	for i, c := range cmds {
		n, _ := strconv.ParseInt(ids[i], 10, 64)
		if len(c.Val()) == 0 {
			gone = append(gone, ids[i])
			continue
		}
		out = append(out, replayRecord(n, c.Val()))
	}
	if len(gone) > 0 {
		r.rdb.ZRem(ctx, r.keys.Replays(), gone...) // a failure keeps them for the next list
	}
	return out, nil
}

// Get returns one replay.
func (r *Replays) Get(ctx context.Context, id int64) (ReplayRecord, error) {
	v, err := r.rdb.HGetAll(ctx, r.keys.Replay(id)).Result()
	if err != nil {
		return ReplayRecord{}, fmt.Errorf("reading replay %d: %w", id, err)
	}
	if len(v) == 0 {
		return ReplayRecord{}, ErrReplayNotFound
	}
	return replayRecord(id, v), nil
}

func replayRecord(id int64, v map[string]string) ReplayRecord {
	num := func(k string) int { n, _ := strconv.Atoi(v[k]); return n }
	at := func(k string) time.Time {
		if ms, err := strconv.ParseInt(v[k], 10, 64); err == nil && ms > 0 {
			return time.UnixMilli(ms)
		}
		return time.Time{}
	}
	return ReplayRecord{ID: id, Spec: v["spec"], State: v["state"], Total: num("total"), Cursor: num("cursor"),
		Fed: num("fed"), Gone: num("gone"), Created: at("created"), Started: at("started"), Finished: at("finished")}
}

// Cancel stops a replay that is not finished; what it queued stays
// queued. It returns the replay as it is then.
func (r *Replays) Cancel(ctx context.Context, id int64, now time.Time) (ReplayRecord, error) {
	rec, err := r.Get(ctx, id)
	if err != nil || rec.State == ReplayDone || rec.State == ReplayCanceled {
		return rec, err
	}
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.keys.Replay(id), "state", ReplayCanceled, "finished", now.UnixMilli())
		p.Del(ctx, r.keys.ReplayItems(id))
		return nil
	})
	if err != nil {
		return rec, fmt.Errorf("canceling replay %d: %w", id, err)
	}
	return r.Get(ctx, id)
}

// Lock takes or keeps the feeder's lock for ttl under token.
func (r *Replays) Lock(ctx context.Context, token string, ttl time.Duration) (bool, error) {
	n, err := replayLockScript.run(ctx, r.rdb, []string{r.keys.ReplayLock()}, token, ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("taking the replay lock: %w", err)
	}
	return n == 1, nil
}

// Items reads up to n items of a replay from from.
func (r *Replays) Items(ctx context.Context, id int64, from, n int) ([]string, error) {
	v, err := r.rdb.LRange(ctx, r.keys.ReplayItems(id), int64(from), int64(from+n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading replay %d: %w", id, err)
	}
	return v, nil
}

// Advance records that n more items of a replay were handed to the
// queue, fed of them queued, gone no longer there; the first advance
// marks it running, the last one done (its items go).
func (r *Replays) Advance(ctx context.Context, rec *ReplayRecord, n, fed, gone int, now time.Time) error {
	rec.Cursor += n
	rec.Fed += fed
	rec.Gone += gone
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		k := r.keys.Replay(rec.ID)
		p.HSet(ctx, k, "cursor", rec.Cursor)
		p.HIncrBy(ctx, k, "fed", int64(fed))
		p.HIncrBy(ctx, k, "gone", int64(gone))
		if rec.State == ReplayQueued {
			rec.State, rec.Started = ReplayRunning, now
			p.HSet(ctx, k, "state", ReplayRunning, "started", now.UnixMilli())
		}
		if rec.Cursor >= rec.Total {
			rec.State, rec.Finished = ReplayDone, now
			p.HSet(ctx, k, "state", ReplayDone, "finished", now.UnixMilli())
			p.Del(ctx, r.keys.ReplayItems(rec.ID))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording the progress of replay %d: %w", rec.ID, err)
	}
	return nil
}
