package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// uuidV7At is an X-Gitlab-Event-UUID as webhook.NewEvent makes it
// (version 7), stamped with the given time, so a benchmark can stand for a
// steady rate without waiting for it.
func uuidV7At(t time.Time) string {
	var u uuid.UUID
	_, _ = rand.Read(u[:])
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(u[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(u[2:6], uint32(ms))
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}

// redisInfoInt reads one integer field of an INFO section.
func redisInfoInt(tb testing.TB, rdb redis.UniversalClient, section, field string) int64 {
	tb.Helper()
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatalf("no %s in INFO %s", field, section)
	return 0
}

// scriptCalls sums the calls and microseconds of the script commands
// (EVAL, EVALSHA) in INFO commandstats.
func scriptCalls(tb testing.TB, rdb redis.UniversalClient) (calls, usec int64) {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:")
		if !ok {
			rest, ok = strings.CutPrefix(line, "cmdstat_eval:")
		}
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				calls += n
			case "usec":
				usec += n
			}
		}
	}
	return calls, usec
}

// BenchmarkChainChecks is the recursion guard as the fan-out runs it:
// batches of 128 events, each a new chain (an event not caused by a
// webhook request, as nearly all are) registering its hooks, stamped as
// if they came at a steady rate. With "inherited", each event is followed
// by one caused by a webhook request of its chain, triggering another
// hook. It reports the Redis memory left per event (INFO used_memory, all
// chains still in their window) and the chain script's Redis time per
// call (INFO commandstats), which runs within the fan-out script; ns/op is
// one event, round trips included (with the event's queueing and reading,
// which the fan-out does not pay for itself).
//
//	go test ./redisstore -run '^$' -bench ChainChecks -benchtime 100000x
func BenchmarkChainChecks(b *testing.B) {
	for _, bc := range []struct {
		hooks     int
		rate      int // events per second the UUIDs' times stand for
		inherited bool
	}{{1, 500, false}, {5, 500, false}, {1, 5000, false}, {5, 5000, false}, {100, 500, false}, {1, 500, true}} {
		name := fmt.Sprintf("hooks=%d/rate=%d", bc.hooks, bc.rate)
		if bc.inherited {
			name += "/inherited"
		}
		b.Run(name, func(b *testing.B) {
			srv := redistest.Start(b)
			s, err := New(Options{URL: srv.URL, Namespace: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			hooks := make([]int64, bc.hooks)
			for i := range hooks {
				hooks[i] = int64(i + 1)
			}
			check := func(cs []chainCheck) {
				vs, err := checkChains(ctx, s, cs, 30*time.Minute, 100, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				for i, v := range vs {
					for j := range v {
						if v[j] != ChainAllowed {
							b.Fatalf("check %d hook %d: verdict %d", i, cs[i].HookIDs[j], v[j])
						}
					}
				}
				// Only the chains stay: the deliveries queued go, and the
				// events' stream nodes.
				for _, k := range []string{s.c.keys.Ready(0), s.c.keys.Events(0)} {
					if err := s.c.rdb.XTrimMaxLen(ctx, k, 0).Err(); err != nil {
						b.Fatal(err)
					}
				}
			}
			warm := uuidV7At(time.Now())
			check([]chainCheck{{Chain: warm, EventID: warm, HookIDs: hooks}}) // loads the script
			if err := s.c.rdb.ConfigResetStat(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			mem0 := redisInfoInt(b, s.c.rdb, "memory", "used_memory")
			start := time.Now().Add(-time.Duration(b.N) * time.Second / time.Duration(bc.rate))
			batch := make([]chainCheck, 0, 128)
			b.ResetTimer()
			for i := range b.N {
				id := uuidV7At(start.Add(time.Duration(i) * time.Second / time.Duration(bc.rate)))
				batch = append(batch, chainCheck{Chain: id, EventID: id, HookIDs: hooks})
				if bc.inherited {
					child := uuidV7At(time.Now())
					batch = append(batch, chainCheck{Chain: id, EventID: child, HookIDs: []int64{int64(bc.hooks + 1)}})
				}
				if len(batch) >= 128 || i == b.N-1 {
					check(batch)
					batch = batch[:0]
				}
			}
			b.StopTimer()
			calls, usec := scriptCalls(b, s.c.rdb)
			mem1 := redisInfoInt(b, s.c.rdb, "memory", "used_memory")
			b.ReportMetric(float64(mem1-mem0)/float64(b.N), "redis-B/event")
			if calls > 0 {
				b.ReportMetric(float64(usec)/float64(calls), "script-µs/call")
			}
		})
	}
}
