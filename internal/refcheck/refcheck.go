// Package refcheck audits the shared payloads of a namespace for tests: it
// recounts, from what the queues and logs still hold, who refers to each
// payload, and compares that with the stored reference counts. A payload
// nobody holds (an orphan: Redis memory that never comes back) and a
// holder whose payload is gone (a reference read after it was freed: a
// delivery that cannot be sent, a log entry without its request) are both
// reported.
//
// The holders of event E's payload (key <ns>:{q<i>}:p:E, count in the
// field E of <ns>:{q<i>}:refs) are: E's entry in the events stream until
// it is fanned out, each delivery of the shared payload in the ready
// stream or the schedule ("p":1 in its stored form), each dead letter with
// "ev" = E, and each hook log entry with "p" = E.
//
// The audit reads key by key, not atomically: run it on a quiet namespace
// (every queue settled, or the processes stopped).
package refcheck

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// Holder kinds, as Report.Holders counts them.
const (
	KindEvent = "event"
	KindReady = "ready"
	KindSched = "sched"
	KindDead  = "dead"
	KindLog   = "log"
)

// Report is what an audit found.
type Report struct {
	// Payloads is how many payload keys exist.
	Payloads int
	// Holders counts the references found, by kind.
	Holders map[string]int
	// Held is, per event ID, how many holders refer to its payload.
	Held map[string]int
	// Problems lists orphan payloads, dangling references and counts that
	// disagree with their holders, sorted; empty when all is well.
	Problems []string
}

// shardKey splits a key of a queue shard: "<ns>:{q<i>.<n>}:<rest>".
var shardKey = regexp.MustCompile(`^\{q(\d+)\.\d+\}:(.*)$`)

// logKey matches a hook log of a shard: "hook:<id>:log".
var logKey = regexp.MustCompile(`^hook:(\d+):log$`)

// shard is what one queue shard holds.
type shard struct {
	payloads map[string]bool
	logs     []string
	held     map[string]map[string]int // event -> kind -> holders
}

func (s *shard) hold(ev, kind string) {
	if s.held[ev] == nil {
		s.held[ev] = map[string]int{}
	}
	s.held[ev][kind]++
}

// Check audits namespace ns on c (a single server, or every master of a
// cluster).
func Check(ctx context.Context, c redis.UniversalClient, ns string) (Report, error) {
	keys, err := scan(ctx, c, ns+":*")
	if err != nil {
		return Report{}, err
	}
	shards := map[int]*shard{}
	get := func(i int) *shard {
		if shards[i] == nil {
			shards[i] = &shard{payloads: map[string]bool{}, held: map[string]map[string]int{}}
		}
		return shards[i]
	}
	for _, k := range keys {
		m := shardKey.FindStringSubmatch(strings.TrimPrefix(k, ns+":"))
		if m == nil {
			continue // hook state, chains of the old layout, settings
		}
		i, _ := strconv.Atoi(m[1])
		sh := get(i)
		switch rest := m[2]; {
		case strings.HasPrefix(rest, "p:"):
			sh.payloads[strings.TrimPrefix(rest, "p:")] = true
		case logKey.MatchString(rest):
			sh.logs = append(sh.logs, k)
		}
	}
	r := Report{Holders: map[string]int{}, Held: map[string]int{}}
	ids := make([]int, 0, len(shards))
	for i := range shards {
		ids = append(ids, i)
	}
	sort.Ints(ids)
	// The refs hash and the queues are named, not found: a shard whose
	// payloads are all gone may still have counts left, and vice versa.
	for _, i := range ids {
		if err := audit(ctx, c, redisstore.Keys{Namespace: ns}, i, shards[i], &r); err != nil {
			return r, err
		}
	}
	sort.Strings(r.Problems)
	return r, nil
}

// audit recounts the holders of shard i and compares them with its refs.
func audit(ctx context.Context, c redis.UniversalClient, k redisstore.Keys, i int, sh *shard, r *Report) error {
	problem := func(format string, args ...any) {
		r.Problems = append(r.Problems, fmt.Sprintf("shard %d: ", i)+fmt.Sprintf(format, args...))
	}
	err := xrange(ctx, c, k.Events(i), func(m redis.XMessage) {
		if ev, _ := m.Values["id"].(string); ev != "" {
			sh.hold(ev, KindEvent)
		}
	})
	if err != nil {
		return err
	}
	delivery := func(kind, where, s string) {
		d, err := redisstore.DecodeDelivery(s)
		if err != nil {
			return // undecodable: settled without touching any payload
		}
		if d.Shared {
			sh.hold(d.EventID, kind)
		} else if len(d.Body) == 0 {
			problem("%s %s carries neither a body nor a shared payload", kind, where)
		}
	}
	if err := xrange(ctx, c, k.Ready(i), func(m redis.XMessage) {
		s, _ := m.Values["d"].(string)
		delivery(KindReady, m.ID, s)
	}); err != nil {
		return err
	}
	members, err := c.ZRange(ctx, k.Schedule(i), 0, -1).Result()
	if err != nil {
		return fmt.Errorf("reading %s: %w", k.Schedule(i), err)
	}
	for n, s := range members {
		delivery(KindSched, "#"+strconv.Itoa(n), s)
	}
	if err := xrange(ctx, c, k.Dead(i), func(m redis.XMessage) {
		ev, _ := m.Values["ev"].(string)
		s, _ := m.Values["d"].(string)
		d, derr := redisstore.DecodeDelivery(s)
		switch {
		case derr == nil && d.Shared && d.EventID != ev:
			problem("dead letter %s shares the payload of %s but holds %q", m.ID, d.EventID, ev)
		case derr == nil && !d.Shared && ev != "":
			problem("dead letter %s carries its body but holds the payload of %s", m.ID, ev)
		}
		if ev != "" {
			sh.hold(ev, KindDead)
		}
	}); err != nil {
		return err
	}
	tails, err := c.HGetAll(ctx, k.LogTails(i)).Result()
	if err != nil {
		return fmt.Errorf("reading %s: %w", k.LogTails(i), err)
	}
	for _, lk := range sh.logs {
		holding := 0
		if err := xrange(ctx, c, lk, func(m redis.XMessage) {
			if ev, _ := m.Values["p"].(string); ev != "" {
				sh.hold(ev, KindLog)
				holding++
			}
		}); err != nil {
			return err
		}
		// The log's count of entries holding a reference, where kept.
		hook := logKey.FindStringSubmatch(lk[strings.LastIndex(lk, "}:")+2:])
		if hook == nil {
			continue
		}
		if n, ok := tails[hook[1]+":r"]; ok && n != strconv.Itoa(holding) {
			problem("log of hook %s: tails count %s entries holding a payload, it has %d", hook[1], n, holding)
		}
	}
	refs, err := c.HGetAll(ctx, k.Refs(i)).Result()
	if err != nil {
		return fmt.Errorf("reading %s: %w", k.Refs(i), err)
	}
	r.Payloads += len(sh.payloads)
	events := map[string]bool{}
	for ev := range sh.held {
		events[ev] = true
	}
	for ev := range refs {
		events[ev] = true
	}
	for ev := range sh.payloads {
		events[ev] = true
	}
	for ev := range events {
		total := 0
		for kind, n := range sh.held[ev] {
			total += n
			r.Holders[kind] += n
		}
		if total > 0 {
			r.Held[ev] = total
		}
		count, counted := refs[ev]
		switch {
		case sh.payloads[ev] && total == 0:
			problem("orphan payload of event %s (refs says %q)", ev, count)
		case !sh.payloads[ev] && total > 0:
			problem("event %s held by %s, but its payload is gone", ev, describe(sh.held[ev]))
		}
		if n, _ := strconv.Atoi(count); (counted || total > 0) && (n != total || n <= 0) {
			problem("event %s: refs says %q, held by %s", ev, count, describe(sh.held[ev]))
		}
	}
	return nil
}

// describe lists holders by kind, "ready 1, log 2", or "nobody".
func describe(kinds map[string]int) string {
	var parts []string
	for _, kind := range []string{KindEvent, KindReady, KindSched, KindDead, KindLog} {
		if n := kinds[kind]; n > 0 {
			parts = append(parts, kind+" "+strconv.Itoa(n))
		}
	}
	if len(parts) == 0 {
		return "nobody"
	}
	return strings.Join(parts, ", ")
}

// xrange calls fn for each entry of a stream, a page at a time.
func xrange(ctx context.Context, c redis.UniversalClient, stream string, fn func(redis.XMessage)) error {
	for from := "-"; ; {
		msgs, err := c.XRangeN(ctx, stream, from, "+", 1000).Result()
		if err != nil {
			return fmt.Errorf("reading %s: %w", stream, err)
		}
		for _, m := range msgs {
			fn(m)
		}
		if len(msgs) < 1000 {
			return nil
		}
		from = "(" + msgs[len(msgs)-1].ID
	}
}

// scan lists the keys matching pattern, on every master of a cluster.
func scan(ctx context.Context, c redis.UniversalClient, pattern string) ([]string, error) {
	var keys []string
	one := func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		var out []string
		var cursor uint64
		for range 100_000 {
			ks, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return nil, fmt.Errorf("scanning %s: %w", pattern, err)
			}
			out = append(out, ks...)
			if cursor = next; cursor == 0 {
				return out, nil
			}
		}
		return nil, fmt.Errorf("scanning %s: too many keys", pattern)
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		ch := make(chan []string, 64)
		err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			ks, err := one(ctx, m)
			ch <- ks
			return err
		})
		close(ch)
		for ks := range ch {
			keys = append(keys, ks...)
		}
		return keys, err
	}
	return one(ctx, c)
}

// Assert audits ns and fails tb with every problem found. It returns the
// report, for tests that check who holds what.
func Assert(tb testing.TB, c redis.UniversalClient, ns string) Report {
	tb.Helper()
	r, err := Check(context.Background(), c, ns)
	if err != nil {
		tb.Fatalf("auditing the payloads of %s: %v", ns, err)
	}
	if len(r.Problems) > 0 {
		tb.Errorf("payload references of %s are wrong (%d payloads, holders %v):\n  %s", ns, r.Payloads, r.Holders,
			strings.Join(r.Problems, "\n  "))
	}
	return r
}
