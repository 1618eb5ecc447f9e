package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Control is what operators and the API steer or watch across every
// process of a namespace: the pause, the queue depths and the rate limits
// of API actions.
type Control struct{ *conn }

// Depths are the entries in each queue of the namespace.
type Depths struct {
	Events, Ready, Scheduled, Dead int64
}

// QueueDepths counts the entries of every queue, over all shards.
func (c *Control) QueueDepths(ctx context.Context) (Depths, error) {
	var depths func() Depths
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		depths = c.queueDepths(ctx, p)
		return nil
	})
	if err != nil {
		return Depths{}, fmt.Errorf("reading queue depths: %w", err)
	}
	return depths(), nil
}

// queueDepths queues the reads of every shard's queue lengths on p; the
// function it returns adds them up once p has run.
func (c *Control) queueDepths(ctx context.Context, p redis.Pipeliner) func() Depths {
	cmds := make([][4]*redis.IntCmd, c.readShards())
	for i := range cmds {
		cmds[i] = [4]*redis.IntCmd{p.XLen(ctx, c.keys.Events(i)), p.XLen(ctx, c.keys.Ready(i)),
			p.ZCard(ctx, c.keys.Schedule(i)), p.XLen(ctx, c.keys.Dead(i))}
	}
	return func() Depths {
		var d Depths
		for _, c := range cmds {
			d.Events += c[0].Val()
			d.Ready += c[1].Val()
			d.Scheduled += c[2].Val()
			d.Dead += c[3].Val()
		}
		return d
	}
}

// Snapshot is what the monitor watches, read in one round trip.
type Snapshot struct {
	Paused bool
	Depths Depths
	// DisabledHooks counts the hooks disabled now, temporarily or until
	// re-enabled, across all processes.
	DisabledHooks int64
	// OldestReady is how long the oldest delivery waiting for its first
	// attempt has waited since its event was captured (0: none waits),
	// among the first entries of each shard's ready stream and schedule: a
	// first attempt held back in the schedule (its hook at its cap, or
	// disabled for a while) is waiting too. Retries do not count.
	OldestReady time.Duration
}

// oldestScan is how many entries of each ready stream and schedule
// Snapshot reads for OldestReady.
const oldestScan = 16

// Snapshot reads the pause flag, the queue depths of every shard, the
// number of hooks disabled at now and the age of the oldest delivery
// waiting for its first attempt, in one pipeline.
func (c *Control) Snapshot(ctx context.Context, now time.Time) (Snapshot, error) {
	var paused *redis.StringCmd
	var depths func() Depths
	disabled := make([]*redis.IntCmd, HookSlots)
	heads := make([]*redis.XMessageSliceCmd, c.readShards())
	held := make([]*redis.StringSliceCmd, len(heads))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		paused = p.Get(ctx, c.keys.Paused())
		depths = c.queueDepths(ctx, p)
		for i := range heads {
			heads[i] = p.XRangeN(ctx, c.keys.Ready(i), "-", "+", oldestScan)
			held[i] = p.ZRange(ctx, c.keys.Schedule(i), 0, oldestScan-1)
		}
		for j := range disabled {
			disabled[j] = p.ZCount(ctx, c.keys.Disabled(j), strconv.FormatInt(now.UnixMilli()+1, 10), "+inf")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Snapshot{}, fmt.Errorf("reading the queues' state: %w", err)
	}
	s := Snapshot{Paused: paused.Val() == "1", Depths: depths()}
	for _, d := range disabled {
		s.DisabledHooks += d.Val()
	}
	waited := func(doc string) {
		if d, err := DecodeDelivery(doc); err == nil && d.Attempt == 1 {
			s.OldestReady = max(s.OldestReady, now.Sub(d.At))
		}
	}
	for i := range heads {
		for _, m := range heads[i].Val() {
			waited(fields(m.Values).str("d"))
		}
		for _, doc := range held[i].Val() {
			waited(doc)
		}
	}
	return s, nil
}

// Paused reads the operator pause shared by every process.
func (c *Control) Paused(ctx context.Context) (bool, error) {
	v, err := c.rdb.Get(ctx, c.keys.Paused()).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("reading the pause flag: %w", err)
	}
	return v == "1", nil
}

// SetPaused pauses (or resumes) deliveries in every process.
func (c *Control) SetPaused(ctx context.Context, paused bool) error {
	var err error
	if paused {
		err = c.rdb.Set(ctx, c.keys.Paused(), "1", 0).Err()
	} else {
		err = c.rdb.Del(ctx, c.keys.Paused()).Err()
	}
	if err != nil {
		return fmt.Errorf("setting the pause flag: %w", err)
	}
	return nil
}

// Throttle counts one call of action by scope in the current fixed window
// and reports whether it is within limit; if not, retryAfter is the time
// left in the window. Every process sharing the Redis shares the count.
func (c *Control) Throttle(ctx context.Context, action, scope string, limit int, window time.Duration, now time.Time) (ok bool, retryAfter time.Duration, err error) {
	w := now.UnixMilli() / window.Milliseconds()
	key := c.keys.Throttle(action, scope, w)
	var incr *redis.IntCmd
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, key)
		p.PExpire(ctx, key, window)
		return nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("counting %s calls: %w", action, err)
	}
	if incr.Val() <= int64(limit) {
		return true, 0, nil
	}
	end := time.UnixMilli((w + 1) * window.Milliseconds())
	return false, end.Sub(now), nil
}
