package engine

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/internal/refcheck"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// With four shards, events spread over all of them, every delivery
// arrives once, and a chain (X-Gitlab-Event-UUID) keeps its events in one
// shard: a hook it triggered is not triggered again by a later event of
// the chain, another hook is, with the chain's UUID.
func TestShardsSpreadEventsAndKeepChains(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const shards = 4
	api, web := newRecorder(t, always(http.StatusOK)), newRecorder(t, always(http.StatusOK))
	rt := startSharded(t, redisstore.Options{URL: srv.URL, Shards: shards}, testConfig(),
		hookTo(t, 1, "acme/api", api.URL), hookTo(t, 2, "acme/web", web.URL))
	ctx := context.Background()
	var roots []*webhook.Event
	for sh := range shards {
		for i := range 8 {
			roots = append(roots, eventIn(t, "acme/api", pushBody(fmt.Sprintf("root %d/%d", sh, i)), sh, shards))
		}
	}
	for _, ev := range roots {
		enqueue(t, rt, ev)
	}
	api.waitTotal(t, len(roots))
	// Events caused by the first root of each shard's deliveries.
	caused := func(project string, root *webhook.Event) *webhook.Event {
		ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: project, Ref: "refs/heads/main"},
			pushBody("caused by "+root.ID), root.Chain, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		enqueue(t, rt, ev)
		return ev
	}
	var again, webFirst, webAgain []*webhook.Event
	for sh := range shards {
		root := roots[sh*8]
		again = append(again, caused("acme/api", root)) // hook 1 again: a loop
		webFirst = append(webFirst, caused("acme/web", root))
	}
	web.waitTotal(t, shards)
	for sh := range shards {
		webAgain = append(webAgain, caused("acme/web", roots[sh*8])) // hook 2 again: a loop
	}
	settled(t, rt)
	time.Sleep(300 * time.Millisecond)
	settled(t, rt)

	for _, ev := range roots {
		if got := api.requests(ev.ID, 1); len(got) != 1 || got[0].body != string(ev.Body) {
			t.Errorf("root %s reached hook 1 %d times", ev.ID, len(got))
		}
	}
	for sh := range shards {
		if n := len(api.requests(again[sh].ID, 1)); n != 0 {
			t.Errorf("shard %d: hook 1 triggered again in its chain (%d requests)", sh, n)
		}
		got := web.requests(webFirst[sh].ID, 2)
		if len(got) != 1 || got[0].header.Get("X-Gitlab-Event-Uuid") != roots[sh*8].Chain {
			t.Errorf("shard %d: hook 2's first event of the chain: %d requests, X-Gitlab-Event-UUID %v", sh, len(got),
				headerOf(got, "X-Gitlab-Event-Uuid"))
		}
		if n := len(web.requests(webAgain[sh].ID, 2)); n != 0 {
			t.Errorf("shard %d: hook 2 triggered again in its chain (%d requests)", sh, n)
		}
	}
	if api.total() != len(roots) || web.total() != shards {
		t.Errorf("hook 1 got %d requests, hook 2 %d; want %d and %d", api.total(), web.total(), len(roots), shards)
	}
	// What Redis holds: each shard logged its 8 roots, and the one event
	// of its chain that reached hook 2.
	c, k := rt.store.Client(), rt.store.Keys()
	for sh := range shards {
		n1, _ := c.XLen(ctx, k.HookLog(sh, 1)).Result()
		n2, _ := c.XLen(ctx, k.HookLog(sh, 2)).Result()
		if n1 != 8 || n2 != 1 {
			t.Errorf("shard %d logged %d deliveries to hook 1 and %d to hook 2, want 8 and 1", sh, n1, n2)
		}
	}
	refcheck.Assert(t, c, "test")
}

// deadBefore tells whether dead letter a was written before b: by its
// stream ID (Redis's clock, then its sequence), then its shard for equal
// IDs in two shards.
func deadBefore(a, b string) bool {
	key := func(id string) [3]int64 {
		sid, _, _ := strings.Cut(id, "@")
		ms, seq, _ := strings.Cut(sid, "-")
		m, _ := strconv.ParseInt(ms, 10, 64)
		q, _ := strconv.ParseInt(seq, 10, 64)
		return [3]int64{m, q, int64(deadShard(id))}
	}
	ka, kb := key(a), key(b)
	for i := range ka {
		if ka[i] != kb[i] {
			return ka[i] < kb[i]
		}
	}
	return false
}

func headerOf(rs []received, name string) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.header.Get(name))
	}
	return out
}

// Dead letters of every shard are listed as one list, oldest first: paged
// by the last ID of each page, each comes exactly once; redriven by those
// IDs, each is delivered with its payload.
func TestDeadLettersPageAndRedriveAcrossShards(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const shards = 4
	var fixed atomic.Bool
	rcv := newRecorder(t, func(string, int) int {
		if fixed.Load() {
			return http.StatusOK
		}
		return http.StatusUnprocessableEntity
	})
	cfg := testConfig()
	cfg.Health.Threshold = 1000
	rt := startSharded(t, redisstore.Options{URL: srv.URL, Shards: shards}, cfg, hookTo(t, 1, "acme/api", rcv.URL))
	ctx := context.Background()
	sent := map[string]string{}
	for i := range 20 {
		ev := eventIn(t, "acme/api", pushBody("dead "+strconv.Itoa(i)), i%shards, shards)
		enqueue(t, rt, ev)
		sent[ev.ID] = string(ev.Body)
	}
	rcv.waitTotal(t, 20)
	settled(t, rt)

	var pages [][]redisstore.DeadLetter
	var all []redisstore.DeadLetter
	for after := "-"; len(pages) < 20; {
		page, err := rt.store.DeadLetters().List(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages = append(pages, page)
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	seen := map[string]int{}
	perShard := map[int]int{}
	for i, d := range all {
		seen[d.ID]++
		perShard[deadShard(d.ID)]++
		if i > 0 && !deadBefore(all[i-1].ID, d.ID) {
			t.Errorf("dead letter %s listed after %s: not oldest first", d.ID, all[i-1].ID)
		}
		if d.Err != nil || sent[d.Delivery.EventID] == "" {
			t.Errorf("dead letter %s: %v, event %s", d.ID, d.Err, d.Delivery.EventID)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("dead letter %s listed %d times", id, n)
		}
	}
	if len(seen) != 20 || len(perShard) != shards {
		t.Fatalf("%d dead letters listed over %d pages, from shards %v; want 20 from all %d shards", len(seen), len(pages),
			perShard, shards)
	}
	if d, _ := rt.Stats(ctx); d.DeadLetters != 20 {
		t.Errorf("stats count %d dead letters, want 20", d.DeadLetters)
	}

	fixed.Store(true)
	ids := make([]string, len(all))
	for i, d := range all {
		ids[i] = d.ID
	}
	if n, err := rt.Redrive(ctx, ids, false); err != nil || n != 20 {
		t.Fatalf("redrive: %d, %v", n, err)
	}
	rcv.waitTotal(t, 40)
	settled(t, rt)
	for id, body := range sent {
		got := rcv.requests(id, 1)
		if len(got) != 2 || got[1].body != body {
			t.Errorf("event %s: %d requests, last %q; want the refusal and the redriven delivery of %q", id, len(got),
				got[len(got)-1].body, body)
		}
	}
	if left, _ := rt.store.DeadLetters().List(ctx, "-", 100); len(left) != 0 {
		t.Errorf("%d dead letters left after redriving them all", len(left))
	}
	refcheck.Assert(t, rt.store.Client(), "test")
}

// A namespace run with four shards, then with two: the shards left behind
// (2 and 3) still hold events, deliveries, a delivery a dead process took,
// a retry and a dead letter. The new process drains them all: each
// delivery arrives once, and the dead letter is listed, counted and
// redriven.
func TestLoweringShardsDrainsTheShardsLeftBehind(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rcv := newRecorder(t, always(http.StatusOK))
	h := hookTo(t, 1, "acme/api", rcv.URL)
	ctx := context.Background()

	old, err := redisstore.New(redisstore.Options{URL: srv.URL, Namespace: "test", Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	if err := old.Queue().NoteShards(ctx); err != nil {
		t.Fatal(err)
	}
	var want []*webhook.Event // one delivery each to hook 1
	delivery := func(ev *webhook.Event) webhook.Delivery {
		return webhook.Delivery{EventID: ev.ID, HookID: 1, Trigger: ev.Trigger, Chain: ev.Chain, At: ev.At, Body: ev.Body,
			Shared: true, Attempt: 1}
	}
	queue := func(sh int, tag string) *webhook.Event {
		t.Helper()
		ev := eventIn(t, "acme/api", pushBody(tag), sh, 4)
		if err := old.Queue().AddDeliveries(ctx, []webhook.Delivery{delivery(ev)}); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	take := func(sh int) *redisstore.DeliveryMsg {
		t.Helper()
		ds, err := old.Queue().ReadDeliveries(ctx, sh, "old", ">", 1, time.Second)
		if err != nil || len(ds) != 1 {
			t.Fatalf("reading a delivery of shard %d: %v, %d", sh, err, len(ds))
		}
		return &ds[0]
	}
	// A dead letter in shard 2.
	deadEv := queue(2, "dead letter")
	if _, err := old.Queue().Settle(ctx, take(2), redisstore.Outcome{Reason: "refused", At: time.Now()}, nil,
		redisstore.Rules{}); err != nil {
		t.Fatal(err)
	}
	// A retry due soon in shard 3.
	want = append(want, queue(3, "retry"))
	if ok, err := old.Queue().Defer(ctx, take(3), time.Now().Add(300*time.Millisecond)); err != nil || !ok {
		t.Fatalf("deferring: %v, %v", ok, err)
	}
	// A delivery the old process took and never settled, in shard 3.
	want = append(want, queue(3, "taken"))
	take(3)
	// Ready deliveries in shards 2 and 3, and an event in each shard.
	want = append(want, queue(2, "ready"), queue(3, "ready"))
	for sh := range 4 {
		ev := eventIn(t, "acme/api", pushBody("event"), sh, 4)
		if _, err := old.Queue().AddEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		want = append(want, ev)
	}
	_ = old.Close()

	cfg := testConfig()
	cfg.Send.Timeout, cfg.Lease = 500*time.Millisecond, time.Second
	rt := startSharded(t, redisstore.Options{URL: srv.URL, Shards: 2}, cfg, h)
	rcv.waitTotal(t, len(want))
	settled(t, rt)
	for _, ev := range want {
		if got := rcv.requests(ev.ID, 1); len(got) != 1 || got[0].body != string(ev.Body) {
			t.Errorf("event %s (shard %d of 4): %d requests", ev.ID, redisstore.ShardOf(ev.Chain, 4), len(got))
		}
	}
	if rt.store.Queue().ReadShards() != 4 {
		t.Errorf("the new process reads %d shards, want the 4 recorded", rt.store.Queue().ReadShards())
	}
	dls, err := rt.store.DeadLetters().List(ctx, "-", 10)
	if err != nil || len(dls) != 1 || dls[0].Delivery.EventID != deadEv.ID || !strings.HasSuffix(dls[0].ID, "@2") {
		t.Fatalf("dead letters after lowering the shards: %+v, %v; want the one of shard 2", dls, err)
	}
	if st, _ := rt.Stats(ctx); st.DeadLetters != 1 {
		t.Errorf("stats count %d dead letters, want the one listed", st.DeadLetters)
	}
	if n, err := rt.Redrive(ctx, []string{dls[0].ID}, false); err != nil || n != 1 {
		t.Fatalf("redrive: %d, %v", n, err)
	}
	if got := rcv.waitFor(t, deadEv.ID, 1, 1); got[0].body != string(deadEv.Body) {
		t.Errorf("redriven dead letter arrived with %q", got[0].body)
	}
	settled(t, rt)
	rcv.mu.Lock()
	total := rcv.n
	rcv.mu.Unlock()
	if total != len(want)+1 {
		t.Errorf("%d requests in all, want %d: something was sent twice", total, len(want)+1)
	}
	refcheck.Assert(t, rt.store.Client(), "test")
}

// A backlog in one shard does not hold up another: thousands of
// deliveries to a slow receiver queued in shard 0, then one event in
// shard 1 to another hook, which arrives while most of the backlog is
// still queued.
func TestShardBacklogDoesNotStarveAnother(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	slow := newRecorder(t, always(http.StatusOK))
	slow.delay = 20 * time.Millisecond
	fast := newRecorder(t, always(http.StatusOK))
	cfg := testConfig()
	cfg.Workers, cfg.HookConcurrency = 4, 8 // the slow hook may take every worker
	rt := shardedRuntime(t, redisstore.Options{URL: srv.URL, Shards: 2}, "c1", cfg,
		hookTo(t, 1, "acme/slow", slow.URL), hookTo(t, 2, "acme/fast", fast.URL))
	ctx := context.Background()
	s := rt.store
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	chain := ""
	for i := 0; redisstore.ShardOf(chain, 2) != 0 || chain == ""; i++ {
		chain = uuid.NewString()
	}
	const backlog = 2000
	body := pushBody("backlog")
	ds := make([]webhook.Delivery, backlog)
	for i := range ds {
		ds[i] = webhook.Delivery{EventID: uuid.NewString(), HookID: 1, Trigger: "push", Chain: chain, At: time.Now(),
			Body: body, Shared: true, Attempt: 1}
	}
	if err := s.Queue().AddDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	slow.waitTotal(t, 8) // the backlog is being worked on

	ev := eventIn(t, "acme/fast", pushBody("the other shard"), 1, 2)
	enqueue(t, rt, ev)
	fast.waitFor(t, ev.ID, 2, 1)
	queued, _ := s.Client().XLen(ctx, s.Keys().Ready(0)).Result()
	t.Logf("the other shard's event arrived with %d of %d backlog deliveries still queued (%d sent)", queued, backlog, slow.total())
	if queued < backlog/2 {
		t.Errorf("the other shard's event arrived only once the backlog was down to %d of %d", queued, backlog)
	}
}

// On a Redis Cluster of three masters, twelve shards spread the work over
// all three: each serves part of the commands of a delivery run, and
// nothing is lost.
func TestClusterShardsUseEveryMaster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster")
	}
	cluster := redistest.StartCluster(t, 3)
	rcv := &keyReceiver{keys: map[string]int{}}
	url := newServer(t, rcv)
	const shards = 12
	cfg := testConfig()
	rt := startSharded(t, redisstore.Options{URL: cluster.URL, Mode: redisstore.ModeCluster, Shards: shards}, cfg,
		hookTo(t, 1, "acme/api", url))
	k := rt.store.Keys()
	owners := map[string]int{}
	for i := range shards {
		owners[cluster.NodeFor(t, k.Ready(i)).Addr]++
	}
	if len(owners) != 3 {
		t.Fatalf("the %d shards live on %d masters: %v", shards, len(owners), owners)
	}
	before := commandCalls(t, cluster)
	var evs []*webhook.Event
	for i := range 240 {
		ev := pushEvent(t, "acme/api")
		ev.Body = pushBody("cluster " + strconv.Itoa(i))
		enqueue(t, rt, ev)
		evs = append(evs, ev)
	}
	allArrive(t, rcv, evs)
	settled(t, rt)
	after := commandCalls(t, cluster)
	var total int64
	for addr := range after {
		total += after[addr] - before[addr]
	}
	var shares []string
	for _, n := range cluster.Nodes {
		d := after[n.Addr] - before[n.Addr]
		share := float64(d) / float64(total)
		shares = append(shares, fmt.Sprintf("%s %.0f%% (%d shards)", n.Addr, 100*share, owners[n.Addr]))
		if share < 0.1 {
			t.Errorf("master %s served %d of %d commands of the run", n.Addr, d, total)
		}
	}
	t.Logf("commands per master over 240 events: %s", strings.Join(shares, ", "))
	refcheck.Assert(t, rt.store.Client(), "test")
}

// commandCalls sums each master's calls of the commands the engine sends
// (INFO commandstats), leaving out the harness's own.
func commandCalls(t *testing.T, c *redistest.Cluster) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, n := range c.Nodes {
		cl := n.Client()
		info, err := cl.Info(context.Background(), "commandstats").Result()
		cl.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
			if !ok {
				continue
			}
			switch strings.TrimPrefix(name, "cmdstat_") {
			case "info", "cluster|info", "cluster|slots", "cluster|shards", "cluster|nodes", "cluster|keyslot", "ping",
				"command", "command|docs", "hello", "client|setinfo", "client|setname", "select":
				continue
			}
			calls, _, _ := strings.Cut(rest, ",")
			v, _ := strconv.ParseInt(calls, 10, 64)
			out[n.Addr] += v
		}
	}
	return out
}
