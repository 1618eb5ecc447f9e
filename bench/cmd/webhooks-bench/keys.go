package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// keys names the engine's keys in the bench's namespace (the v2 layout:
// queue shards {q<i>}, hook state in {hs<j>}).
var keys = redisstore.Keys{Namespace: "bench"}

// shardCount is how many queue shards Caddy (and the bench's own store)
// writes to: -shards, or the engine's default of 1.
func (b *bench) shardCount() int { return max(b.o.shards, 1) }

// shardsConf is the Caddyfile line that sets the queue shards, if -shards
// was given.
func (b *bench) shardsConf() []string {
	if b.o.shards <= 0 {
		return nil
	}
	return []string{fmt.Sprintf("shards %d", b.o.shards)}
}

// sumShards adds up a per-shard count over the shards in use.
func (b *bench) sumShards(n func(ctx context.Context, i int) int64) int64 {
	ctx := context.Background()
	var total int64
	for i := range b.shardCount() {
		total += n(ctx, i)
	}
	return total
}

// queuedEvents is how many captured events wait for the fan-out.
func (b *bench) queuedEvents() int64 {
	return b.sumShards(func(_ context.Context, i int) int64 { return b.xlen(keys.Events(i)) })
}

// readyDeliveries is how many deliveries wait for a worker (or are in
// flight: an entry leaves the stream when it is settled).
func (b *bench) readyDeliveries() int64 {
	return b.sumShards(func(_ context.Context, i int) int64 { return b.xlen(keys.Ready(i)) })
}

// scheduledDeliveries is how many deliveries wait for a time.
func (b *bench) scheduledDeliveries() int64 {
	return b.sumShards(func(ctx context.Context, i int) int64 {
		n, _ := b.rds.rdb.ZCard(ctx, keys.Schedule(i)).Result()
		return n
	})
}

// hashTags lists the hash tags of the layout for n queue shards: {q<i>.<n>},
// {hs<j>.<n>}, and {d0} (pause flag, samples, throttles).
func hashTags(n int) []string {
	tags := make([]string, 0, n+redisstore.HookSlots+1)
	for i := range n {
		tags = append(tags, "{"+redisstore.ShardTag(i)+"}")
	}
	for j := range redisstore.HookSlots {
		tags = append(tags, "{"+redisstore.HookTag(j)+"}")
	}
	return append(tags, "{d0}")
}

// compactTags writes a node's tags as "q 0,3,7; hs 1,2; d0".
func compactTags(tags []string) string {
	var q, hs, other []string
	for _, t := range tags {
		t = strings.Trim(t, "{}")
		switch {
		case strings.HasPrefix(t, "hs"):
			hs = append(hs, strings.TrimPrefix(t, "hs"))
		case strings.HasPrefix(t, "q"):
			q = append(q, strings.TrimPrefix(t, "q"))
		default:
			other = append(other, t)
		}
	}
	var parts []string
	if len(q) > 0 {
		parts = append(parts, "q "+strings.Join(q, ","))
	}
	if len(hs) > 0 {
		parts = append(parts, "hs "+strings.Join(hs, ","))
	}
	return strings.Join(append(parts, other...), "; ")
}
