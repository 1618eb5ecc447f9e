package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// chainCheck is one event's recursion check, as the fan-out makes it: the
// event, its chain's shard, and the hooks it would trigger.
type chainCheck struct {
	Chain, EventID string
	Shard          int
	HookIDs        []int64
}

// queueChecks queues each check's event in its shard and reads it, as
// fan-out finds events: pending, ready to be fanned out to one delivery
// per hook, all of them checked in the chain.
func queueChecks(ctx context.Context, s *Store, checks []chainCheck) ([]Fanned, error) {
	q := s.Queue()
	out := make([]Fanned, len(checks))
	for i, c := range checks {
		stream := s.c.keys.Events(c.Shard)
		if err := q.createGroup(ctx, stream, GroupFanout); err != nil {
			return nil, err
		}
		id, err := s.c.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"id", c.EventID}}).Result()
		if err != nil {
			return nil, err
		}
		read, err := s.c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: GroupFanout, Consumer: "chaintest",
			Streams: []string{stream, ">"}, Count: 1, Block: -1}).Result()
		if err != nil {
			return nil, err
		}
		if len(read) != 1 || len(read[0].Messages) != 1 || read[0].Messages[0].ID != id {
			return nil, fmt.Errorf("read %v of shard %d, want the event just added (%s)", read, c.Shard, id)
		}
		f := Fanned{Shard: c.Shard, StreamID: id, EventID: c.EventID, Chain: c.Chain, Checked: len(c.HookIDs)}
		for _, h := range c.HookIDs {
			f.Deliveries = append(f.Deliveries, webhook.Delivery{EventID: c.EventID, HookID: h, Trigger: "push",
				Chain: c.Chain, At: time.Now(), Body: []byte(`{}`)})
		}
		out[i] = f
	}
	return out, nil
}

// verdicts fans queued checks out at a given time, in one call (one round
// trip), and returns the chain's verdict on each hook of each.
func verdicts(ctx context.Context, s *Store, evs []Fanned, window time.Duration, maxHooks int, at time.Time) ([][]ChainVerdict, error) {
	if err := s.Queue().fanOut(ctx, evs, ChainRule{Window: window, MaxHooks: maxHooks}, HandOff{}, at); err != nil {
		return nil, err
	}
	out := make([][]ChainVerdict, len(evs))
	for i := range evs {
		if evs[i].Already {
			return nil, fmt.Errorf("event %s was fanned out already", evs[i].EventID)
		}
		out[i] = evs[i].Verdicts
	}
	return out, nil
}

// checkChains runs checks through the fan-out at a given time.
func checkChains(ctx context.Context, s *Store, checks []chainCheck, window time.Duration, maxHooks int, at time.Time) ([][]ChainVerdict, error) {
	evs, err := queueChecks(ctx, s, checks)
	if err != nil {
		return nil, err
	}
	return verdicts(ctx, s, evs, window, maxHooks, at)
}

// chainTester runs one event's chain check at a given time.
type chainTester struct {
	t        *testing.T
	s        *Store
	shard    int
	window   time.Duration
	maxHooks int
}

func (c chainTester) check(at time.Time, chain, event string, hooks ...int64) []ChainVerdict {
	c.t.Helper()
	vs, err := checkChains(context.Background(), c.s,
		[]chainCheck{{Chain: chain, EventID: event, Shard: c.shard, HookIDs: hooks}}, c.window, c.maxHooks, at)
	if err != nil {
		c.t.Fatal(err)
	}
	if len(vs) != 1 || len(vs[0]) != len(hooks) {
		c.t.Fatalf("verdicts %v for hooks %v", vs, hooks)
	}
	return vs[0]
}

func (c chainTester) want(at time.Time, chain, event string, hooks []int64, want ...ChainVerdict) {
	c.t.Helper()
	if got := c.check(at, chain, event, hooks...); !slices.Equal(got, want) {
		c.t.Errorf("event %s of chain %s, hooks %v: verdicts %v, want %v", event[len(event)-4:], chain[len(chain)-4:], hooks, got, want)
	}
}

const (
	R = ChainRecursive
	A = ChainAllowed
	L = ChainTooLong
)

func newEventID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// TestChainGuard is GitLab's recursion guard over the events of a chain: a
// hook already triggered in the chain by another event is not triggered
// again, a replay of the same event is not recursion, whether the chain's
// first event had a few hooks or many (a record too long for the root
// hash) and whichever shard the chain is on.
func TestChainGuard(t *testing.T) {
	s := newLogStore(t)
	for _, tc := range []struct {
		name  string
		shard int
		base  int64 // hook ids start here: long ones make a long root record
	}{{"few hooks", 0, 1}, {"long record", 0, 1_000_000_000_001}, {"shard 3", 3, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			c := chainTester{t: t, s: s, shard: tc.shard, window: 30 * time.Minute, maxHooks: 100}
			h := func(i int64) int64 { return tc.base + i }
			many := []int64{}
			for i := range int64(10) {
				many = append(many, h(10+i))
			}
			now := time.Now()
			root := newEventID(t)
			c.want(now, root, root, append([]int64{h(1), h(2)}, many...), slices.Repeat([]ChainVerdict{A}, 12)...)
			// The fan-out of the first event again (it crashed before settling),
			// now with one hook more: nothing is recursion.
			c.want(now, root, root, []int64{h(1), h(2), h(3)}, A, A, A)
			// A receiver of hook 1 called the app, which announced an event of
			// the same chain.
			second := newEventID(t)
			c.want(now, root, second, []int64{h(1), h(4)}, R, A)
			c.want(now, root, second, []int64{h(1), h(4)}, R, A) // its replay
			c.want(now, root, root, []int64{h(1), h(2), h(4), h(5)}, A, A, R, A)
			third := newEventID(t)
			c.want(now, root, third, []int64{h(2), h(4), h(5), h(6), h(12)}, R, R, R, A, R)
			// Another chain is not concerned.
			other := newEventID(t)
			c.want(now, other, other, []int64{h(1), h(4)}, A, A)
			c.want(now, other, newEventID(t), []int64{h(1), h(5)}, R, A)
			if s.c.rdb.Exists(context.Background(), chainKey(s.c.keys.Namespace, tc.shard, root)).Val() != 1 {
				t.Errorf("chain %s has no hash of its own in shard %d after its second event", root, tc.shard)
			}
		})
	}
	keys, err := s.c.rdb.Keys(context.Background(), s.c.keys.Namespace+":*chain*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, s.c.keys.shard(0)+"chain:") && !strings.HasPrefix(k, s.c.keys.shard(3)+"chain:") {
			t.Errorf("chain key %s is outside the hash tags of shards 0 and 3", k)
		}
	}
}

// TestChainTooLong: a chain triggers at most maxHooks hooks, counted over
// its events, the first one included.
func TestChainTooLong(t *testing.T) {
	c := chainTester{t: t, s: newLogStore(t), window: 30 * time.Minute, maxHooks: 3}
	now := time.Now()
	root := newEventID(t)
	c.want(now, root, root, []int64{1, 2, 3, 4, 5}, A, A, A, L, L)
	c.want(now, root, root, []int64{1, 6}, A, L)
	c.want(now, root, newEventID(t), []int64{1, 7}, R, L)
	short := newEventID(t)
	c.want(now, short, short, []int64{1, 2}, A, A)
	c.want(now, short, newEventID(t), []int64{3, 4}, A, L)
}

// TestChainWindow: a chain remembers its hooks for the window after its
// last registration, as GitLab's 30-minute key, and forgets them after.
func TestChainWindow(t *testing.T) {
	const window = 30 * time.Minute
	c := chainTester{t: t, s: newLogStore(t), window: window, maxHooks: 100}
	t0 := time.Now()

	quiet := newEventID(t)
	c.want(t0, quiet, quiet, []int64{1}, A)
	c.want(t0.Add(window-time.Second), quiet, newEventID(t), []int64{1}, R)

	late := newEventID(t)
	c.want(t0, late, late, []int64{1}, A)
	c.want(t0.Add(window+2*time.Second), late, newEventID(t), []int64{1}, A)

	replayed := newEventID(t)
	c.want(t0, replayed, replayed, []int64{1}, A)
	c.want(t0.Add(20*time.Minute), replayed, replayed, []int64{1}, A) // registers again
	c.want(t0.Add(40*time.Minute), replayed, newEventID(t), []int64{1}, R)

	// A later event of the chain keeps all of it: GitLab's key is touched by
	// every registration.
	busy := newEventID(t)
	c.want(t0, busy, busy, []int64{1}, A)
	c.want(t0.Add(20*time.Minute), busy, newEventID(t), []int64{2}, A)
	c.want(t0.Add(40*time.Minute), busy, newEventID(t), []int64{1, 2}, R, R)
}

// TestRootChainsShareKeys: chains that never see a second event, nearly
// all of them, do not cost a key each; every chain key expires on its own
// within the window.
func TestRootChainsShareKeys(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	const events, window = 3000, 10 * time.Minute
	checks := make([]chainCheck, 0, 100)
	for i := range events {
		id := newEventID(t)
		checks = append(checks, chainCheck{Chain: id, EventID: id, HookIDs: []int64{1, 2}})
		if len(checks) == cap(checks) || i == events-1 {
			if _, err := checkChains(ctx, s, checks, window, 100, time.Now()); err != nil {
				t.Fatal(err)
			}
			checks = checks[:0]
		}
	}
	keys, err := s.c.rdb.Keys(ctx, s.c.keys.Namespace+":*chain*").Result()
	if err != nil {
		t.Fatal(err)
	}
	// Within a minute: two time buckets of chainSubBuckets hashes at most.
	if len(keys) > 2*chainSubBuckets {
		t.Errorf("%d events left %d chain keys, want at most %d", events, len(keys), 2*chainSubBuckets)
	}
	for _, k := range keys {
		if ttl := s.c.rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > window {
			t.Errorf("chain key %s has TTL %s, want one within the window %s", k, ttl, window)
		}
	}
}

// TestChainScriptsStayInOneSlot: on a Redis Cluster, the chain checks of
// every shard run, each inside its shard's slot.
func TestChainScriptsStayInOneSlot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster")
	}
	cluster := redistest.StartCluster(t, 3)
	s, err := New(Options{URL: cluster.URL, Mode: ModeCluster, Namespace: "chaintest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	var checks []chainCheck
	roots := map[int]string{}
	for shard := range 8 {
		root := newEventID(t)
		roots[shard] = root
		checks = append(checks, chainCheck{Chain: root, EventID: root, Shard: shard, HookIDs: []int64{1, 2}})
	}
	if _, err := checkChains(ctx, s, checks, time.Minute, 100, time.Now()); err != nil {
		t.Fatal(err)
	}
	checks = checks[:0]
	for shard, root := range roots {
		checks = append(checks, chainCheck{Chain: root, EventID: newEventID(t), Shard: shard, HookIDs: []int64{2, 3}})
	}
	vs, err := checkChains(ctx, s, checks, time.Minute, 100, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		if !slices.Equal(v, []ChainVerdict{R, A}) {
			t.Errorf("shard %d: second event's verdicts %v, want [0 1]", checks[i].Shard, v)
		}
	}
	nodes := map[string]bool{}
	for shard := range 8 {
		nodes[cluster.NodeFor(t, chainKey(s.c.keys.Namespace, shard, "x")).Addr] = true
	}
	if len(nodes) < 2 {
		t.Errorf("the 8 shards' chain keys are all on one node: the test proves nothing across nodes")
	}
}
