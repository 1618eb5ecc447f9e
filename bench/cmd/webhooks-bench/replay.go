package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/engine/replay"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// replayPriority is scenario 12: live latency while a large replay runs.
// Hook 1 takes the live events (1 KB pushes at a steady rate through the
// capture path); hook 2, which takes no live event, has dead letters (the
// outage the replay is for). Live p99 (app response → arrival, as
// scenario 4) is measured without a replay, then while a replay of the
// dead letters (POST /webhooks/replays) runs at Caddy's defaults; the
// replay's own rate is what it sent meanwhile.
func (b *bench) replayPriority() error {
	rate, dur, dead := 500, 10*time.Second, 100_000
	if b.o.smoke {
		rate, dur, dead = 200, time.Second, 2000
	}
	hooks := []hookConf{{id: 1, path: "/h/1", filter: "wildcard main"}, {id: 2, path: "/h/2", filter: "wildcard replay-*"}}
	extra := []string{fmt.Sprintf("hook_concurrency %d", b.o.workers)}
	rateName := fmt.Sprintf("default replay_rate %d", replay.DefaultRate)
	if b.o.replayRate > 0 {
		extra = append(extra, fmt.Sprintf("replay_rate %d", b.o.replayRate))
		rateName = fmt.Sprintf("replay_rate %d", b.o.replayRate)
	}
	if err := b.startCaddy("replay", hooks, extra...); err != nil {
		return err
	}
	defer b.stopCaddy()
	if err := b.fillDeadLetters(2, dead); err != nil {
		return err
	}
	client := newClient(64)
	openLoop(client, http.MethodPost, b.candURL("/event"), nil, rate, dur/5) // warm up
	b.drained(time.Minute)

	measure := func() (p50, p99 float64, n int) {
		b.rcv.reset()
		b.rcv.record.Store(true)
		defer b.rcv.record.Store(false)
		res := openLoop(client, http.MethodPost, b.candURL("/event"), nil, rate, dur)
		b.errs += res.errs
		waitFor(30*time.Second, func() bool { return len(b.rcv.latencies()) >= int(res.n) })
		lat := b.rcv.latencies()
		slices.Sort(lat)
		if len(lat) == 0 {
			return math.NaN(), math.NaN(), 0
		}
		return ms(pct(lat, 50)), ms(pct(lat, 99)), len(lat)
	}
	// A/B rounds in turn, so the machine's other load falls on both: while
	// the bench holds the replay feeder's lock, no Caddy feeds the replay.
	if err := b.holdReplays(true); err != nil {
		return err
	}
	if err := b.admin(http.MethodPost, "/webhooks/replays", `{"hooks":[2],"status":"dead","since":"1h"}`); err != nil {
		return err
	}
	var base, cand [2][]float64
	var fed time.Duration
	startDead := b.deadLetters()
	for r := 0; r < b.o.rounds; r++ {
		for k := 0; k < 2; k++ {
			during := (r+k)%2 == 1
			if err := b.holdReplays(!during); err != nil {
				return err
			}
			if !during { // what was fed already leaves the queue first
				b.drained(time.Minute)
			}
			start := time.Now()
			p50, p99, n := measure()
			if during {
				fed += time.Since(start)
				cand[0], cand[1] = append(cand[0], p50), append(cand[1], p99)
			} else {
				base[0], base[1] = append(base[0], p50), append(base[1], p99)
			}
			logf("scenario 12 round %d %s: p50 %.2f ms p99 %.2f ms (%d samples), %d dead letters left",
				r+1, []string{"without the replay", "during the replay"}[btoi(during)], p50, p99, n, b.deadLetters())
		}
	}
	_ = b.holdReplays(true)
	b.drained(time.Minute)
	sent := startDead - b.deadLetters()
	replayRate := float64(sent) / fed.Seconds()
	if sent <= 0 {
		b.note("scenario 12: the replay sent nothing while live events were measured")
	}
	name := "live latency at %d events/s while a %d-delivery replay runs (%s): %s ms (base: no replay)"
	b.add("12", sprintf(name, rate, dead, rateName, "p50"), median(base[0]), median(cand[0]), "", nil)
	b.add("12", sprintf(name, rate, dead, rateName, "p99"), median(base[1]), median(cand[1]), "≤ 2× base",
		func(r row) bool { return r.cand <= 2*r.base })
	b.add("12", sprintf("replay's own rate meanwhile, deliveries/s (%s)", rateName), math.NaN(), replayRate, "reported", nil)
	_ = b.admin(http.MethodDelete, "/webhooks/replays/1", "")
	return nil
}

// holdReplays holds (or lets go) the replay feeder's lock, so that no
// Caddy feeds replays while the bench holds it.
func (b *bench) holdReplays(hold bool) error {
	ctx := context.Background()
	if !hold {
		return b.rds.rdb.Del(ctx, keys.ReplayLock()).Err()
	}
	return b.rds.rdb.Set(ctx, keys.ReplayLock(), "webhooks-bench", time.Hour).Err()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fillDeadLetters puts n dead letters of hook in the dead-letter streams,
// as deliveries given up on (payload in the letter, ts 0 so the receiver
// does not count them as live latency).
func (b *bench) fillDeadLetters(hook int64, n int) error {
	ctx := context.Background()
	now := time.Now()
	body := sizedBody(0, "refs/heads/replay-1", payloadSize)
	const page = 2000
	for done := 0; done < n; done += page {
		_, err := b.rds.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := done; i < min(done+page, n); i++ {
				id := "00000000-0000-7000-8000-" + fmt.Sprintf("%012d", i)
				d := webhook.Delivery{EventID: id, HookID: hook, Trigger: "push", Chain: id, At: now, Body: body, Attempt: 8}
				doc := redisstore.EncodeDelivery(&d)
				sh := redisstore.ShardOf(id, b.shardCount())
				size := len(doc) + len("exhausted (bench)")
				p.XAdd(ctx, &redis.XAddArgs{Stream: keys.Dead(sh), Values: []any{"d", doc, "reason", "exhausted (bench)",
					"at", strconv.FormatInt(now.UnixMilli(), 10), "n", size}})
				p.IncrBy(ctx, keys.DeadBytes(sh), int64(size))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("filling dead letters: %w", err)
		}
	}
	return nil
}

// deadLetters counts the dead letters of every shard.
func (b *bench) deadLetters() int64 {
	return b.sumShards(func(_ context.Context, i int) int64 { return b.xlen(keys.Dead(i)) })
}

// admin calls Caddy's admin API.
func (b *bench) admin(method, path, body string) error {
	req, err := http.NewRequest(method, "http://"+b.caddy.admin+path, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, out)
	}
	return nil
}
