package redisstore

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// DeadLetters is the deliveries given up on: a stream per shard, kept
// within their bounds as they are added (Queue.Settle), listed across the
// shards, and put back on the ready streams on request.
type DeadLetters struct{ *conn }

// DeadLetter is a delivery given up on. Its ID is the entry's stream ID,
// followed by "@<shard>" outside shard 0.
type DeadLetter struct {
	ID       string
	Delivery webhook.Delivery
	Reason   string
	At       time.Time
	Err      error
}

// deadID names a dead letter across shards.
func deadID(shard int, streamID string) string {
	if shard == 0 {
		return streamID
	}
	return streamID + "@" + strconv.Itoa(shard)
}

// parseDeadID is deadID's inverse.
func parseDeadID(id string) (shard int, streamID string, err error) {
	sid, sh, found := strings.Cut(id, "@")
	if found {
		if shard, err = strconv.Atoi(sh); err != nil || shard < 0 || shard >= MaxShards {
			return 0, "", fmt.Errorf("dead letter id %q: bad shard", id)
		}
	}
	if _, _, ok := parseStreamID(sid); !ok {
		return 0, "", fmt.Errorf("dead letter id %q: bad stream id", id)
	}
	return shard, sid, nil
}

// parseStreamID splits "<ms>-<seq>" (or "<ms>").
func parseStreamID(id string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	ms, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if found {
		if seq, err = strconv.ParseUint(b, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return ms, seq, true
}

// streamLess orders stream IDs, then shards.
func streamLess(a string, ash int, b string, bsh int) bool {
	am, as, _ := parseStreamID(a)
	bm, bs, _ := parseStreamID(b)
	if am != bm {
		return am < bm
	}
	if as != bs {
		return as < bs
	}
	return ash < bsh
}

// List lists up to count dead letters of all shards, oldest first,
// after the dead letter start ("-" for the beginning).
func (dl *DeadLetters) List(ctx context.Context, start string, count int64) ([]DeadLetter, error) {
	afterShard, afterID := -1, ""
	if start != "-" {
		var err error
		if afterShard, afterID, err = parseDeadID(start); err != nil {
			return nil, err
		}
	}
	n := dl.readShards()
	cmds := make([]*redis.XMessageSliceCmd, n)
	_, err := dl.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			from := "-"
			switch {
			case afterShard < 0:
			case i > afterShard:
				from = afterID // the same stream ID in a later shard comes after
			default:
				from = "(" + afterID
			}
			cmds[i] = p.XRangeN(ctx, dl.keys.Dead(i), from, "+", count)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	type item struct {
		shard int
		msg   redis.XMessage
	}
	var all []item
	for i, c := range cmds {
		for _, m := range c.Val() {
			all = append(all, item{i, m})
		}
	}
	sort.Slice(all, func(a, b int) bool {
		return streamLess(all[a].msg.ID, all[a].shard, all[b].msg.ID, all[b].shard)
	})
	if int64(len(all)) > count {
		all = all[:count]
	}
	out := make([]DeadLetter, 0, len(all))
	for _, it := range all {
		v := fields(it.msg.Values)
		d, err := DecodeDelivery(v.str("d"))
		at, _ := v.int("at")
		out = append(out, DeadLetter{ID: deadID(it.shard, it.msg.ID), Delivery: d, Reason: v.str("reason"),
			At: time.UnixMilli(at), Err: err})
	}
	return out, nil
}

// Redrive puts dead letters back on their shards' ready streams as first
// attempts. It returns how many it moved; unknown IDs are skipped.
func (dl *DeadLetters) Redrive(ctx context.Context, ids ...string) (int, error) {
	moved := 0
	for _, id := range ids {
		shard, sid, err := parseDeadID(id)
		if err != nil {
			continue
		}
		msgs, err := dl.rdb.XRange(ctx, dl.keys.Dead(shard), sid, sid).Result()
		if err != nil {
			return moved, fmt.Errorf("redriving dead letter %s: %w", id, err)
		}
		if len(msgs) == 0 {
			continue
		}
		d, err := DecodeDelivery(fields(msgs[0].Values).str("d"))
		if err != nil {
			return moved, fmt.Errorf("redriving dead letter %s: %w", id, err)
		}
		d.Attempt = 1
		n, err := redriveScript.run(ctx, dl.rdb, []string{dl.keys.Dead(shard), dl.keys.Ready(shard), dl.keys.DeadBytes(shard)},
			sid, EncodeDelivery(&d)).Int64()
		if err != nil {
			return moved, fmt.Errorf("redriving dead letter %s: %w", id, err)
		}
		moved += int(n)
	}
	return moved, nil
}
