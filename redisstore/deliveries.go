package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// ReadDeliveries reads deliveries of a shard for consumer, with their
// payloads; cursor as ReadEvents.
func (q *Queue) ReadDeliveries(ctx context.Context, shard int, consumer, cursor string, count int64, block time.Duration) ([]DeliveryMsg, error) {
	msgs, err := q.read(ctx, q.keys.Ready(shard), GroupDeliver, consumer, cursor, count, block)
	if err != nil {
		return nil, err
	}
	out := decodeAll(shard, msgs, decodeDelivery)
	return out, q.fillPayloads(ctx, shard, out)
}

// ClaimDeliveries is ClaimEvents for the deliveries stream.
func (q *Queue) ClaimDeliveries(ctx context.Context, shard int, consumer string, minIdle time.Duration, start string, count int64) ([]DeliveryMsg, string, error) {
	msgs, next, err := q.claim(ctx, q.keys.Ready(shard), GroupDeliver, consumer, minIdle, start, count)
	if err != nil {
		return nil, next, err
	}
	out := decodeAll(shard, msgs, decodeDelivery)
	return out, next, q.fillPayloads(ctx, shard, out)
}

// fillPayloads reads the shared payloads of msgs (one MGET: a shard is one
// slot), each once however many deliveries share it. A payload that is
// missing makes its delivery undecodable.
func (q *Queue) fillPayloads(ctx context.Context, shard int, msgs []DeliveryMsg) error {
	var keys []string
	var at map[string]int
	for i := range msgs {
		d := &msgs[i].Delivery
		if msgs[i].Err != nil || !d.Shared || d.Body != nil {
			continue
		}
		if at == nil {
			at = make(map[string]int, len(msgs))
		}
		if _, ok := at[d.EventID]; !ok {
			at[d.EventID] = len(keys)
			keys = append(keys, q.keys.Payload(shard, d.EventID))
		}
	}
	if len(keys) == 0 {
		return nil
	}
	vals, err := q.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return fmt.Errorf("reading %d payloads of shard %d: %w", len(keys), shard, err)
	}
	for i := range msgs {
		d := &msgs[i].Delivery
		if msgs[i].Err != nil || !d.Shared || d.Body != nil {
			continue
		}
		b, ok := vals[at[d.EventID]].(string)
		if !ok {
			msgs[i].Err = fmt.Errorf("entry %s: the payload of event %s is missing", msgs[i].StreamID, d.EventID)
			continue
		}
		d.Body = json.RawMessage(b)
	}
	return nil
}

// AddDeliveries queues deliveries without an event, each in the shard of
// its chain.
func (q *Queue) AddDeliveries(ctx context.Context, ds []webhook.Delivery) error {
	_, err := runScripts(ctx, q.rdb, len(ds), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		d := &ds[i]
		sh := ShardOf(d.Chain, q.shards)
		ev, body := "", ""
		if d.Shared {
			ev, body = d.EventID, string(d.Body)
		}
		return addDeliveryScript.queue(ctx, p, eval, []string{q.keys.Ready(sh), q.keys.Refs(sh), q.keys.Payload(sh, d.EventID)},
			EncodeDelivery(d), ev, body)
	})
	if err != nil {
		return fmt.Errorf("queueing %d deliveries: %w", len(ds), err)
	}
	return nil
}

// SettleDeliveries acknowledges and deletes deliveries that will not be
// sent (undecodable, or their hook is gone).
func (q *Queue) SettleDeliveries(ctx context.Context, msgs ...*DeliveryMsg) error {
	_, err := runScripts(ctx, q.rdb, len(msgs), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		m := msgs[i]
		ev := ""
		if m.Err == nil && m.Delivery.Shared {
			ev = m.Delivery.EventID
		}
		return dropDeliveryScript.queue(ctx, p, eval, []string{q.keys.Ready(m.Shard), q.keys.Refs(m.Shard)},
			GroupDeliver, m.StreamID, ev, q.keys.PayloadPrefix(m.Shard))
	})
	if err != nil {
		return fmt.Errorf("settling %d deliveries: %w", len(msgs), err)
	}
	return nil
}

// Defer takes a ready entry off the stream and schedules it for due. It
// returns false when another consumer settled the entry first.
func (q *Queue) Defer(ctx context.Context, m *DeliveryMsg, due time.Time) (bool, error) {
	member := EncodeDelivery(&m.Delivery)
	ev := ""
	if m.Delivery.Shared {
		ev = m.Delivery.EventID
	}
	var cmd *redis.Cmd
	_, err := q.work.do(ctx, func(p redis.Pipeliner, eval bool) {
		cmd = deferDeliveryScript.queue(ctx, p, eval, []string{q.keys.Ready(m.Shard), q.keys.Schedule(m.Shard), q.keys.Refs(m.Shard)},
			GroupDeliver, m.StreamID, due.UnixMilli(), member, ev, q.keys.PayloadPrefix(m.Shard))
	})
	var n int64
	if err == nil {
		n, err = cmd.Int64()
	}
	if err != nil {
		return false, fmt.Errorf("deferring delivery %s of hook %d: %w", m.StreamID, m.Delivery.HookID, err)
	}
	if n == 1 {
		q.noteScheduled()
	}
	return n == 1, nil
}

// MoveDue moves up to limit due deliveries of each shard to its ready
// stream and returns how many it moved at most in one shard, and when the
// next one is due (zero if none).
func (q *Queue) MoveDue(ctx context.Context, now time.Time, limit int) (int, time.Time, error) {
	n := q.readShards()
	cmds, err := runScripts(ctx, q.rdb, n, func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		return moveDueScript.queue(ctx, p, eval, []string{q.keys.Schedule(i), q.keys.Ready(i)}, now.UnixMilli(), limit)
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("moving due deliveries: %w", err)
	}
	most := 0
	var next time.Time
	for _, c := range cmds {
		res, _ := c.Slice()
		if len(res) < 2 {
			continue
		}
		moved, _ := res[0].(int64)
		most = max(most, int(moved))
		if v, ok := res[1].(string); ok && v != "-1" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil {
				if t := time.UnixMilli(int64(ms)); next.IsZero() || t.Before(next) {
					next = t
				}
			}
		}
	}
	return most, next, nil
}

// DeliveryCounts returns how many times each pending ready entry of a
// shard was handed out (to any consumer), for poison detection.
func (q *Queue) DeliveryCounts(ctx context.Context, shard int, first, last string) (map[string]int64, error) {
	pend, err := q.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: q.keys.Ready(shard), Group: GroupDeliver, Start: first, End: last, Count: 1000,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("reading pending deliveries: %w", err)
	}
	out := make(map[string]int64, len(pend))
	for _, p := range pend {
		out[p.ID] = p.RetryCount
	}
	return out, nil
}
