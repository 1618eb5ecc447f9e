package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// The layout before shards (v1) kept the events in {e0} and the
// deliveries, schedule, dead letters and hook state in {d0}, each delivery
// with its own copy of the payload. Legacy.Drain moves what those keys
// still hold into the shards, a page at a time, so a Redis written by an
// older version (or by one still running during a rolling upgrade) is
// drained without loss. Moving an entry writes it in its shard before
// deleting the old one: a crash between the two sends it twice, which
// at-least-once allows, never zero times. Moved deliveries keep their own
// copy of the payload. The old logs are not moved: they are read beside
// the new ones until they expire (the old layout set their expiry), and
// the old recursion chains are left to expire.

// Legacy drains the layout before shards.
type Legacy struct{ *conn }

// legacyPage is how many entries of each kind one Drain moves.
const legacyPage = 100

// Drain moves up to a page of each kind of work from the old keys
// into the shards, and the old health of the hooks given; entries an old
// consumer holds (pending for less than lease) wait for a later call. It
// returns how many entries it moved.
func (l *Legacy) Drain(ctx context.Context, lease time.Duration, hookIDs []int64) (int, error) {
	var ev, rd, sc, dl, dis *redis.IntCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		ev, rd = p.XLen(ctx, l.keys.legacyEvents()), p.XLen(ctx, l.keys.legacyReady())
		sc, dl = p.ZCard(ctx, l.keys.legacySchedule()), p.XLen(ctx, l.keys.legacyDead())
		dis = p.ZCard(ctx, l.keys.legacyDisabled())
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("looking for work in the old layout: %w", err)
	}
	moved, err := l.drainLegacyHealth(ctx, hookIDs)
	if err != nil {
		return moved, err
	}
	steps := []struct {
		n    int64
		move func(context.Context, time.Duration) (int, error)
	}{
		{ev.Val(), l.drainLegacyEvents}, {rd.Val(), l.drainLegacyReady},
		{sc.Val(), l.drainLegacySchedule}, {dl.Val(), l.drainLegacyDead}, {dis.Val(), l.drainLegacyDisabled},
	}
	for _, st := range steps {
		if st.n == 0 {
			continue
		}
		n, err := st.move(ctx, lease)
		moved += n
		if err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// legacyEntries reads a page of an old stream, leaving out the entries a
// consumer received less than lease ago (still at work on them).
func (l *Legacy) legacyEntries(ctx context.Context, stream, group string, lease time.Duration) ([]redis.XMessage, error) {
	msgs, err := l.rdb.XRangeN(ctx, stream, "-", "+", legacyPage).Result()
	if err != nil || len(msgs) == 0 {
		return nil, err
	}
	pend, err := l.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group,
		Start: msgs[0].ID, End: msgs[len(msgs)-1].ID, Count: legacyPage}).Result()
	if err != nil && !redis.HasErrorPrefix(err, "NOGROUP") {
		return nil, err
	}
	busy := make(map[string]bool, len(pend))
	for _, p := range pend {
		if p.Idle < lease {
			busy[p.ID] = true
		}
	}
	out := msgs[:0]
	for _, m := range msgs {
		if !busy[m.ID] {
			out = append(out, m)
		}
	}
	return out, nil
}

// dropLegacy acknowledges and deletes moved entries of an old stream.
func (l *Legacy) dropLegacy(ctx context.Context, stream, group string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, stream, group, ids...)
		p.XDel(ctx, stream, ids...)
		return nil
	})
	return err
}

func (l *Legacy) drainLegacyEvents(ctx context.Context, lease time.Duration) (int, error) {
	stream := l.keys.legacyEvents()
	msgs, err := l.legacyEntries(ctx, stream, GroupFanout, lease)
	if err != nil {
		return 0, fmt.Errorf("reading old events: %w", err)
	}
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		em := decodeEvent(0, m)
		if em.Err == nil {
			if _, err := (&Queue{conn: l.conn}).AddEvent(ctx, &em.Event); err != nil {
				return len(ids), errors.Join(err, l.dropLegacy(ctx, stream, GroupFanout, ids))
			}
		}
		ids = append(ids, m.ID)
	}
	if err := l.dropLegacy(ctx, stream, GroupFanout, ids); err != nil {
		return 0, fmt.Errorf("removing moved old events: %w", err)
	}
	return len(ids), nil
}

func (l *Legacy) drainLegacyReady(ctx context.Context, lease time.Duration) (int, error) {
	stream := l.keys.legacyReady()
	msgs, err := l.legacyEntries(ctx, stream, GroupDeliver, lease)
	if err != nil {
		return 0, fmt.Errorf("reading old deliveries: %w", err)
	}
	ids := make([]string, 0, len(msgs))
	var ds []webhook.Delivery
	for _, m := range msgs {
		if d, err := DecodeDelivery(fields(m.Values).str("d")); err == nil {
			d.Shared = false // the old entry's copy goes with it
			ds = append(ds, d)
		}
		ids = append(ids, m.ID)
	}
	if err := (&Queue{conn: l.conn}).AddDeliveries(ctx, ds); err != nil {
		return 0, err
	}
	if err := l.dropLegacy(ctx, stream, GroupDeliver, ids); err != nil {
		return 0, fmt.Errorf("removing moved old deliveries: %w", err)
	}
	return len(ids), nil
}

func (l *Legacy) drainLegacySchedule(ctx context.Context, _ time.Duration) (int, error) {
	zs, err := l.rdb.ZRangeWithScores(ctx, l.keys.legacySchedule(), 0, legacyPage-1).Result()
	if err != nil {
		return 0, fmt.Errorf("reading the old schedule: %w", err)
	}
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, z := range zs {
			m, _ := z.Member.(string)
			if d, err := DecodeDelivery(m); err == nil {
				// The old form (the body inline) is one the shards read.
				p.ZAdd(ctx, l.keys.Schedule(ShardOf(d.Chain, l.shards)), redis.Z{Score: z.Score, Member: m})
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("moving the old schedule: %w", err)
	}
	members := make([]any, len(zs))
	for i, z := range zs {
		members[i] = z.Member
	}
	if err := l.rdb.ZRem(ctx, l.keys.legacySchedule(), members...).Err(); err != nil {
		return 0, fmt.Errorf("removing the moved old schedule: %w", err)
	}
	return len(zs), nil
}

func (l *Legacy) drainLegacyDead(ctx context.Context, _ time.Duration) (int, error) {
	msgs, err := l.rdb.XRangeN(ctx, l.keys.legacyDead(), "-", "+", legacyPage).Result()
	if err != nil {
		return 0, fmt.Errorf("reading old dead letters: %w", err)
	}
	var bytes int64
	ids := make([]string, 0, len(msgs))
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			v := fields(m.Values)
			n, _ := v.int("n")
			bytes += n
			ids = append(ids, m.ID)
			d, err := DecodeDelivery(v.str("d"))
			if err != nil {
				continue
			}
			sh := ShardOf(d.Chain, l.shards)
			p.XAdd(ctx, &redis.XAddArgs{Stream: l.keys.Dead(sh), Values: []any{"d", v.str("d"), "reason", v.str("reason"),
				"at", v.str("at"), "n", n}})
			p.IncrBy(ctx, l.keys.DeadBytes(sh), n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("moving old dead letters: %w", err)
	}
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.XDel(ctx, l.keys.legacyDead(), ids...)
		p.DecrBy(ctx, l.keys.legacyDeadBytes(), bytes)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("removing moved old dead letters: %w", err)
	}
	return len(ids), nil
}

// MoveHealth moves the health the layout before shards kept: of the
// hooks given, and of every hook it had disabled. Run before the first
// delivery, it keeps a hook disabled by an older version from getting
// requests before its time.
func (l *Legacy) MoveHealth(ctx context.Context, hookIDs []int64) (int, error) {
	moved, err := l.drainLegacyHealth(ctx, hookIDs)
	for page := 0; err == nil && page < 1000; page++ {
		var n int
		if n, err = l.drainLegacyDisabled(ctx, 0); n == 0 {
			break
		}
		moved += n
	}
	return moved, err
}

// drainLegacyHealth moves the old health of the hooks given, unless they
// have a new one already.
func (l *Legacy) drainLegacyHealth(ctx context.Context, hookIDs []int64) (int, error) {
	if len(hookIDs) == 0 {
		return 0, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(hookIDs))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range hookIDs {
			cmds[i] = p.HGetAll(ctx, l.keys.legacyHealth(id))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reading the old health of hooks: %w", err)
	}
	moved := 0
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			continue
		}
		if err := l.moveLegacyHealth(ctx, hookIDs[i], c.Val()); err != nil {
			return moved, err
		}
		moved++
	}
	return moved, nil
}

// moveLegacyHealth writes a hook's old health in its slot (unless it has a
// new one) with its place in the disabled index, then drops the old.
func (l *Legacy) moveLegacyHealth(ctx context.Context, id int64, h map[string]string) error {
	member := strconv.FormatInt(id, 10)
	score, err := l.rdb.ZScore(ctx, l.keys.legacyDisabled(), member).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("reading the old health of hook %d: %w", id, err)
	}
	disabled := err == nil
	if n, err := l.rdb.Exists(ctx, l.keys.Health(id)).Result(); err != nil {
		return fmt.Errorf("moving the health of hook %d: %w", id, err)
	} else if n == 0 && len(h) > 0 {
		_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, l.keys.Health(id), h)
			if disabled {
				p.ZAdd(ctx, l.keys.DisabledOf(id), redis.Z{Score: score, Member: member})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("moving the health of hook %d: %w", id, err)
		}
	}
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, l.keys.legacyHealth(id))
		p.ZRem(ctx, l.keys.legacyDisabled(), member)
		return nil
	})
	if err != nil {
		return fmt.Errorf("removing the old health of hook %d: %w", id, err)
	}
	return nil
}

// drainLegacyDisabled moves the old health of the hooks the old layout
// had disabled (hooks this process may not know).
func (l *Legacy) drainLegacyDisabled(ctx context.Context, _ time.Duration) (int, error) {
	zs, err := l.rdb.ZRange(ctx, l.keys.legacyDisabled(), 0, legacyPage-1).Result()
	if err != nil {
		return 0, fmt.Errorf("reading the old disabled hooks: %w", err)
	}
	for _, m := range zs {
		id, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			_ = l.rdb.ZRem(ctx, l.keys.legacyDisabled(), m).Err()
			continue
		}
		h, err := l.rdb.HGetAll(ctx, l.keys.legacyHealth(id)).Result()
		if err != nil {
			return 0, fmt.Errorf("reading the old health of hook %d: %w", id, err)
		}
		if err := l.moveLegacyHealth(ctx, id, h); err != nil {
			return 0, err
		}
	}
	return len(zs), nil
}
