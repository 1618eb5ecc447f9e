package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Queue is the events and deliveries of a namespace, spread over its
// shards: capture adds events, fan-out turns them into deliveries, workers
// read, defer and settle deliveries, and the schedule holds retries until
// they are due.
type Queue struct {
	*conn
	// scheduled is signalled when this process schedules a delivery
	// (Defer, a retry), so that its mover need not poll an empty schedule.
	scheduled chan struct{}
}

// Scheduled is signalled when this process schedules a delivery for a
// later time; a mover waiting on an empty schedule wakes.
func (q *Queue) Scheduled() <-chan struct{} { return q.scheduled }

// noteScheduled signals Scheduled.
func (q *Queue) noteScheduled() {
	select {
	case q.scheduled <- struct{}{}:
	default:
	}
}

// Shards is how many queue shards the store writes to.
func (q *Queue) Shards() int { return q.shards }

// ReadShards is how many shards may hold work: shards from Shards() up to
// it were written by a process with a larger `shards`, and are drained by
// the janitor.
func (q *Queue) ReadShards() int { return q.readShards() }

// NoteShards records this store's shard count in Redis and learns the
// largest any process of the namespace recorded.
func (q *Queue) NoteShards(ctx context.Context) error {
	v, err := noteShardsScript.run(ctx, q.rdb, []string{q.keys.shardCount()}, q.shards).Int64()
	if err != nil {
		return fmt.Errorf("recording the shard count: %w", err)
	}
	q.seen.Store(int32(min(v, MaxShards)))
	return nil
}

// EnsureGroups creates the consumer groups (and their streams) of every
// shard if missing.
func (q *Queue) EnsureGroups(ctx context.Context) error {
	for i := range q.shards {
		for _, g := range [][2]string{{q.keys.Events(i), GroupFanout}, {q.keys.Ready(i), GroupDeliver}} {
			if err := q.createGroup(ctx, g[0], g[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// createGroup starts the group at "0": both streams hold only unfinished
// work, so a group re-created after a Redis restart must see all of it.
func (q *Queue) createGroup(ctx context.Context, stream, group string) error {
	err := q.rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("creating group %s on %s: %w", group, stream, err)
	}
	return nil
}

// AddEvent stores an event in its shard: the payload once, and an entry
// with what fan-out needs to choose hooks. With ReplicaAcks set, it also
// waits (WAIT, on the same connection) until that many replicas have the
// write, and fails otherwise: an acknowledged event then survives a
// failover. The caller may retry a failed add; a retried event keeps its
// ID, so its deliveries keep their Idempotency-Keys.
func (q *Queue) AddEvent(ctx context.Context, e *webhook.Event) (string, error) {
	id, _, err := q.AddEventFor(ctx, e, "")
	return id, err
}

// AddEventFor is AddEvent that also takes an event for the fan-out
// consumer named (none if ""), in the same script: the oldest event not
// yet handed out, normally e itself, whose body it then carries. An idle
// process fans it out at once, without reading it. Taken is nil when
// there was none, and also returned, pending for consumer, with an error
// of the replicas' acknowledgement.
func (q *Queue) AddEventFor(ctx context.Context, e *webhook.Event, consumer string) (id string, taken *EventMsg, err error) {
	chain := e.Chain
	if chain == "" {
		chain = e.ID
	}
	i := ShardOf(chain, q.shards)
	keys := []string{q.keys.Events(i), q.keys.Refs(i), q.keys.Payload(i, e.ID)}
	args := append([]any{e.Body, e.ID, GroupFanout, consumer}, eventValues(e)...)
	var add *redis.Cmd
	op, err := q.events.do(ctx, func(p redis.Pipeliner, eval bool) {
		add = addEventScript.queue(ctx, p, eval, keys, args...)
	})
	var res []any
	if err == nil {
		res, err = add.Slice()
	}
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return "", nil, fmt.Errorf("adding event %s: %w", e.ID, err)
	}
	id, _ = res[0].(string)
	if list, _ := res[1].([]any); len(list) > 0 {
		m, err := eventEntry(i, list[0])
		if err != nil {
			return "", nil, fmt.Errorf("adding event %s: %w", e.ID, err)
		}
		if m.Err == nil && m.Event.ID == e.ID {
			m.Event.Body = e.Body
		}
		taken = &m
	}
	if q.replicaAcks > 0 {
		wait := op.tail.(*redis.Cmd)
		if n, _ := wait.Int64(); n < int64(q.replicaAcks) {
			return "", taken, fmt.Errorf("adding event %s: %d of %d replicas acknowledged it within %s", e.ID, n, q.replicaAcks, q.replicaTimeout)
		}
	}
	return id, taken, nil
}

// Advance moves a read cursor of ReadEvents or ReadDeliveries: paging
// through the consumer's own pending entries ("0", then the last ID read)
// until there are none, then ">" for new ones. n is how many entries the
// last read returned; last gives the ID of the last one.
func Advance(cursor string, n int, last func() string) string {
	if cursor == ">" {
		return cursor
	}
	if n == 0 {
		return ">"
	}
	return last()
}

// ReadEvents reads events of a shard for consumer. cursor ">" reads new
// entries; "0" (or an entry ID) re-reads the consumer's own pending entries
// after it.
func (q *Queue) ReadEvents(ctx context.Context, shard int, consumer, cursor string, count int64, block time.Duration) ([]EventMsg, error) {
	msgs, err := q.read(ctx, q.keys.Events(shard), GroupFanout, consumer, cursor, count, block)
	return decodeAll(shard, msgs, decodeEvent), err
}

// ClaimEvents takes over events of a shard left pending by any consumer
// for at least minIdle, from start ("0-0" for the beginning). It returns
// the next start.
func (q *Queue) ClaimEvents(ctx context.Context, shard int, consumer string, minIdle time.Duration, start string, count int64) ([]EventMsg, string, error) {
	msgs, next, err := q.claim(ctx, q.keys.Events(shard), GroupFanout, consumer, minIdle, start, count)
	return decodeAll(shard, msgs, decodeEvent), next, err
}

// Payloads reads the payloads of events of one shard, nil where missing.
func (q *Queue) Payloads(ctx context.Context, shard int, eventIDs []string) ([][]byte, error) {
	if len(eventIDs) == 0 {
		return nil, nil
	}
	keys := make([]string, len(eventIDs))
	for i, id := range eventIDs {
		keys[i] = q.keys.Payload(shard, id)
	}
	vals, err := q.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("reading %d payloads of shard %d: %w", len(keys), shard, err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if b, ok := v.(string); ok {
			out[i] = []byte(b)
		}
	}
	return out, nil
}

func (q *Queue) read(ctx context.Context, stream, group, consumer, cursor string, count int64, block time.Duration) ([]redis.XMessage, error) {
	if block <= 0 {
		block = -1 // go-redis sends BLOCK 0 (forever) for a zero Block
	}
	res, err := q.blk.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: group, Consumer: consumer, Streams: []string{stream, cursor},
		Count: count, Block: block,
	}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case redis.HasErrorPrefix(err, "NOGROUP"):
		// Redis lost the group (restart without persistence, FLUSHALL):
		// re-create it; the caller reads again.
		if cerr := q.createGroup(ctx, stream, group); cerr != nil {
			return nil, cerr
		}
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s as %s/%s: %w", stream, group, consumer, err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res[0].Messages, nil
}

func (q *Queue) claim(ctx context.Context, stream, group, consumer string, minIdle time.Duration, start string, count int64) ([]redis.XMessage, string, error) {
	msgs, next, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: stream, Group: group, Consumer: consumer, MinIdle: minIdle, Start: start, Count: count,
	}).Result()
	if redis.HasErrorPrefix(err, "NOGROUP") {
		return nil, "0-0", q.createGroup(ctx, stream, group)
	}
	if err != nil {
		return nil, "0-0", fmt.Errorf("claiming from %s as %s/%s: %w", stream, group, consumer, err)
	}
	return msgs, next, nil
}

func decodeAll[T any](shard int, msgs []redis.XMessage, decode func(int, redis.XMessage) T) []T {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]T, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, decode(shard, m))
	}
	return out
}
