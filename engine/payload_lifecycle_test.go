package engine

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/engine/recovery"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/internal/refcheck"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// A payload is stored once per event and lives as long as its longest
// holder. After a mix of work has settled — successes, retries that
// succeed, deliveries dead-lettered, dead letters trimmed by count and by
// bytes, dead letters redriven and delivered, logs trimmed by length and
// by age, an event no hook takes, an event only a chat integration takes,
// a delivery of a deleted hook, an undecodable entry, a poison delivery —
// no payload is left that nobody holds, none that is held is gone, and
// every count matches its holders.
func TestSettledWorkLeavesNoOrphanPayloads(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const shards = 2
	ok := newRecorder(t, always(http.StatusOK))
	flaky := newRecorder(t, firstFails)
	var failing atomic.Bool
	failing.Store(true)
	bad := newRecorder(t, func(string, int) int {
		if failing.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	slack := newRecorder(t, always(http.StatusOK))
	poisoned := newRecorder(t, always(http.StatusOK))
	hooks := []*webhook.Hook{
		hookTo(t, 1, "acme/api", ok.URL),
		hookTo(t, 2, "acme/api", flaky.URL),
		hookTo(t, 3, "acme/api", bad.URL),
		slackHook(t, 4, "mike/diaspora", slack.URL),
		hookTo(t, 6, "acme/poison", poisoned.URL),
	}
	cfg := testConfig()
	cfg.Send.Timeout, cfg.Lease = 500*time.Millisecond, time.Second
	cfg.Retry = delivery.RetryPolicy{MaxAttempts: 2, Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxAge: time.Hour}
	cfg.Health.Threshold = 1000                                                  // hook 3's failures dead-letter, never disable it
	cfg.DeadLetters = redisstore.DeadLetterLimits{MaxEntries: 6, MaxBytes: 6000} // 3 entries and 3000 bytes per shard
	cfg.Log = hooklog.Policy{MaxEntries: 4}                                      // per hook and shard
	rt := shardedRuntime(t, redisstore.Options{URL: srv.URL, Shards: shards}, "c1", cfg, hooks...)
	s, c, k := rt.store, rt.store.Client(), rt.store.Keys()
	ctx := context.Background()
	sent := map[string][]byte{} // what each event's payload is

	// Before the runtime starts: a delivery that crashed every consumer
	// that took it (poison), one of a hook deleted since, and an entry
	// nothing can decode.
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	queue := func(ev *webhook.Event, hook int64) {
		t.Helper()
		sent[ev.ID] = ev.Body
		if err := s.Queue().AddDeliveries(ctx, []webhook.Delivery{{EventID: ev.ID, HookID: hook, Trigger: ev.Trigger, Chain: ev.Chain,
			At: ev.At, Body: ev.Body, Shared: true, Attempt: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	poison := eventIn(t, "acme/poison", pushBody("poison"), 0, shards)
	queue(poison, 6)
	ds, err := s.Queue().ReadDeliveries(ctx, 0, "crasher", ">", 10, time.Second)
	if err != nil || len(ds) != 1 {
		t.Fatalf("reading the poison delivery: %v, %d", err, len(ds))
	}
	for range recovery.MaxHandouts {
		c.XClaim(ctx, &redis.XClaimArgs{Stream: k.Ready(0), Group: redisstore.GroupDeliver, Consumer: "crasher",
			Messages: []string{ds[0].StreamID}})
	}
	deleted := eventIn(t, "acme/gone", pushBody("deleted hook"), 1, shards)
	queue(deleted, 99)
	if err := c.XAdd(ctx, &redis.XAddArgs{Stream: k.Ready(1), Values: []any{"d", `{"ev":"garbage`}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })

	// Phase 1: five small events per shard to hooks 1 (succeeds), 2 (fails
	// once, then succeeds) and 3 (fails twice: dead-lettered, 5 per shard
	// where 3 are kept); an event no hook takes; one only Slack takes.
	var phase1 []*webhook.Event
	for sh := range shards {
		for range 5 {
			ev := eventIn(t, "acme/api", pushBody("phase 1"), sh, shards)
			enqueue(t, rt, ev)
			sent[ev.ID] = ev.Body
			phase1 = append(phase1, ev)
		}
	}
	nobody := pushEvent(t, "nobody/listens")
	enqueue(t, rt, nobody)
	chatOnly := samplePush(t, "mike/diaspora")
	enqueue(t, rt, chatOnly)
	ok.waitTotal(t, 10)
	flaky.waitTotal(t, 20)
	bad.waitTotal(t, 20)
	slack.waitTotal(t, 1)
	settled(t, rt)
	for sh, dls := range deadByShard(t, rt) {
		if n := len(dls); n != 3 {
			t.Errorf("shard %d keeps %d dead letters, want 3 (max_dead_letters 6 over 2 shards)", sh, n)
		}
	}
	for sh := range shards {
		if n, _ := c.XLen(ctx, k.HookLog(sh, 1)).Result(); n != 4 {
			t.Errorf("hook 1's log in shard %d holds %d entries, want 4 (max entries)", sh, n)
		}
	}
	if poisoned.total() != 0 {
		t.Errorf("the poison delivery was sent %d times, want it dead-lettered unsent", poisoned.total())
	}
	// Everything logged so far is older than cut.
	cut := time.Now()
	time.Sleep(5 * time.Millisecond)

	// Phase 2: two large events in shard 1; two of their dead letters are
	// over shard 1's byte bound together, so only the last stays.
	pad := strings.Repeat("x", 1400)
	var large []*webhook.Event
	for range 2 {
		ev := eventIn(t, "acme/api", []byte(`{"object_kind":"push","ref":"refs/heads/main","pad":"`+pad+`"}`), 1, shards)
		enqueue(t, rt, ev)
		sent[ev.ID] = ev.Body
		large = append(large, ev)
	}
	bad.waitTotal(t, 24)
	settled(t, rt)
	dead := deadByShard(t, rt)
	if d := dead[1]; len(d) != 1 || (d[0].Delivery.EventID != large[0].ID && d[0].Delivery.EventID != large[1].ID) {
		t.Fatalf("shard 1 keeps %d dead letters, want only the last large one (max_dead_letter_bytes)", len(d))
	}

	// Phase 3: the receiver is fixed; the oldest dead letter of each shard
	// is redriven and delivered with its payload.
	failing.Store(false)
	redriven := []redisstore.DeadLetter{dead[0][0], dead[1][0]}
	if n, err := rt.Redrive(ctx, []string{redriven[0].ID, redriven[1].ID}, false); err != nil || n != 2 {
		t.Fatalf("redrive: %d, %v", n, err)
	}
	for _, d := range redriven {
		rcv := map[int64]*recorder{3: bad, 6: poisoned}[d.Delivery.HookID]
		got := rcv.waitFor(t, d.Delivery.EventID, d.Delivery.HookID, 1)
		if last := got[len(got)-1]; last.body != string(sent[d.Delivery.EventID]) {
			t.Errorf("redriven dead letter %s arrived with %q, want %q", d.ID, last.body, sent[d.Delivery.EventID])
		}
	}
	settled(t, rt)

	// Phase 4: the logs lose what is older than cut, as the janitor trims
	// them once their retention has passed.
	n, err := s.Log().Trim(ctx, redisstore.LogLimits{Retention: time.Hour, MaxEntries: 4}, cut.Add(time.Hour))
	if err != nil || n == 0 {
		t.Fatalf("trimming the logs by age: %d entries, %v", n, err)
	}

	r := refcheck.Assert(t, c, "test")
	if r.Holders[refcheck.KindDead] == 0 || r.Holders[refcheck.KindLog] == 0 {
		t.Errorf("nothing left to check: holders %v", r.Holders)
	}
	// Who holds what: the payloads of phase 1 (logged before cut) only by
	// their dead letters still kept and the log entry of a redriven one;
	// the others by nobody; the large ones by their log entries.
	want := map[string]int{}
	for _, dls := range deadByShard(t, rt) {
		for _, d := range dls {
			want[d.Delivery.EventID]++
		}
	}
	for _, d := range redriven {
		want[d.Delivery.EventID]++
	}
	for _, ev := range append(phase1, nobody, chatOnly, deleted, poison) {
		if r.Held[ev.ID] != want[ev.ID] {
			t.Errorf("event %s: payload held %d times, want %d (dead letters kept, redriven deliveries' log entries)",
				ev.ID, r.Held[ev.ID], want[ev.ID])
		}
	}
	for _, ev := range large {
		if r.Held[ev.ID] < 3 {
			t.Errorf("large event %s: payload held %d times, want at least its 3 hooks' log entries", ev.ID, r.Held[ev.ID])
		}
	}
	checked := 0
	for _, id := range []int64{1, 2, 3, 6} {
		checked += checkLogBodies(t, rt, id, sent)
	}
	if checked == 0 {
		t.Error("no log entry left to read")
	}
	t.Logf("after settling: %d payloads, holders %v, %d log entries read back", r.Payloads, r.Holders, checked)
}

// A payload shared by several holders is read intact by each, whichever
// of the others went first: log entries of the other hooks of an event
// after one hook's log was trimmed, a log entry after the event's dead
// letter was trimmed, dead letters after every log entry of their event
// was trimmed (redriven, they deliver the payload as it was captured).
func TestPayloadHoldersReadItAfterTheOthersWent(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const shards = 2
	var fixed atomic.Bool
	refusing := func(string, int) int {
		if fixed.Load() {
			return http.StatusOK
		}
		return http.StatusBadRequest
	}
	a, b, c := newRecorder(t, always(200)), newRecorder(t, always(200)), newRecorder(t, always(200))
	e, f, g := newRecorder(t, refusing), newRecorder(t, always(200)), newRecorder(t, refusing)
	hooks := []*webhook.Hook{
		groupHook(t, 1, "acme", a.URL),
		hookTo(t, 2, "acme/api", b.URL), hookTo(t, 3, "acme/api", c.URL), hookTo(t, 5, "acme/api", e.URL),
		hookTo(t, 6, "acme/web", f.URL), hookTo(t, 7, "acme/web", g.URL),
	}
	cfg := testConfig()
	cfg.Health.Threshold = 1000                                  // refusals dead-letter, never disable
	cfg.DeadLetters = redisstore.DeadLetterLimits{MaxEntries: 2} // one per shard
	cfg.Log = hooklog.Policy{MaxEntries: 3}                      // per hook and shard
	rt := startSharded(t, redisstore.Options{URL: srv.URL, Shards: shards}, cfg, hooks...)
	s, rdb := rt.store, rt.store.Client()
	ctx := context.Background()
	sent := map[string][]byte{}
	send := func(ev *webhook.Event) *webhook.Event {
		enqueue(t, rt, ev)
		sent[ev.ID] = ev.Body
		return ev
	}
	held := func(ev *webhook.Event, want int, why string) {
		t.Helper()
		if r := refcheck.Assert(t, rdb, "test"); r.Held[ev.ID] != want {
			t.Errorf("event %s: payload held %d times, want %d (%s)", ev.ID, r.Held[ev.ID], want, why)
		}
	}
	logged := func(hook int64, ev *webhook.Event) bool {
		t.Helper()
		refs, err := rt.HookLog(ctx, hook)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int64, len(refs))
		for i, r := range refs {
			ids[i] = r.ID
		}
		es, err := rt.HookLogEntries(ctx, hook, ids...)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range es {
			if en.EventID == ev.ID {
				return true
			}
		}
		return false
	}

	// One event to hooks 1, 2, 3 (delivered) and 5 (refused: dead letter).
	e0 := send(eventIn(t, "acme/api", pushBody("e0 to three hooks"), 0, shards))
	settled(t, rt)
	held(e0, 5, "4 log entries and a dead letter")

	// Hook 1's log in that shard fills up with other events and loses e0's
	// entry; the other hooks' entries of e0 read as before.
	for i := range 3 {
		send(eventIn(t, "acme/other", pushBody("to hook 1 only "+string(rune('a'+i))), 0, shards))
	}
	a.waitTotal(t, 4)
	settled(t, rt)
	if logged(1, e0) {
		t.Fatal("hook 1's log still lists e0: it was not trimmed")
	}
	for _, id := range []int64{2, 3, 5} {
		if !logged(id, e0) {
			t.Errorf("hook %d's log lost e0 when hook 1's log was trimmed", id)
		}
	}
	for _, id := range []int64{1, 2, 3, 5} {
		checkLogBodies(t, rt, id, sent)
	}
	held(e0, 4, "hooks 2, 3, 5's log entries and hook 5's dead letter")

	// Two events to hooks 6 (delivered) and 7 (refused) in the other
	// shard, whose dead-letter bound is one: e1's dead letter is trimmed,
	// its log entries still read.
	e1 := send(eventIn(t, "acme/web", pushBody("e1"), 1, shards))
	settled(t, rt)
	e2 := send(eventIn(t, "acme/web", pushBody("e2"), 1, shards))
	settled(t, rt)
	if dl := deadByShard(t, rt)[1]; len(dl) != 1 || dl[0].Delivery.EventID != e2.ID {
		t.Fatalf("shard 1's dead letters: %+v, want only e2's", dl)
	}
	held(e1, 3, "hooks 1, 6, 7's log entries")
	for _, id := range []int64{1, 6, 7} {
		if n := checkLogBodies(t, rt, id, sent); n == 0 {
			t.Errorf("hook %d's log is empty", id)
		}
	}

	// A resend of hook 2's entry of e0 sends the payload as captured and
	// is logged with its own copy, taking no reference.
	h2, _ := rt.Hooks().Get(2)
	refs, err := rt.HookLog(ctx, 2)
	if err != nil || len(refs) != 1 {
		t.Fatalf("hook 2's log: %v, %v", refs, err)
	}
	es, err := rt.HookLogEntries(ctx, 2, refs[0].ID)
	if err != nil || len(es) != 1 || es[0].EventID != e0.ID {
		t.Fatalf("hook 2's entry of e0: %+v, %v", es, err)
	}
	if res, err := rt.Resend(ctx, h2, &es[0]); err != nil || !res.Success() {
		t.Fatalf("resend: %+v, %v", res, err)
	}
	if got := b.requests(e0.ID, 2); len(got) != 2 || got[1].body != string(e0.Body) {
		t.Errorf("resend of e0 to hook 2 arrived with %v", got)
	}
	if n := checkLogBodies(t, rt, 2, sent); n != 2 {
		t.Errorf("hook 2's log holds %d entries, want the delivery and the resend", n)
	}
	held(e0, 4, "hooks 2, 3, 5's log entries and hook 5's dead letter; the resend's entry has its own copy")

	// Every log entry goes (its retention passed): only the dead letters
	// hold their payloads, and e1's is gone.
	if _, err := s.Log().Trim(ctx, redisstore.LogLimits{Retention: time.Hour, MaxEntries: 3}, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	held(e0, 1, "hook 5's dead letter")
	held(e1, 0, "nobody")
	held(e2, 1, "hook 7's dead letter")

	// The receivers are fixed; every dead letter is redriven and delivered
	// with the payload as captured.
	fixed.Store(true)
	if n, err := rt.Redrive(ctx, nil, true); err != nil || n != 2 {
		t.Fatalf("redrive all: %d, %v", n, err)
	}
	for _, w := range []struct {
		rcv  *recorder
		hook int64
		ev   *webhook.Event
	}{{e, 5, e0}, {g, 7, e2}} {
		got := w.rcv.waitFor(t, w.ev.ID, w.hook, 2)
		for i, r := range got {
			if r.body != string(w.ev.Body) {
				t.Errorf("hook %d, attempt %d of event %s: body %q, want %q", w.hook, i+1, w.ev.ID, r.body, w.ev.Body)
			}
		}
	}
	settled(t, rt)
	held(e0, 1, "hook 5's log entry of the redriven delivery")
	held(e2, 1, "hook 7's log entry of the redriven delivery")
	if n, _ := s.Control().QueueDepths(ctx); n.Dead != 0 {
		t.Errorf("%d dead letters left after redriving all", n.Dead)
	}
	for _, id := range []int64{5, 7} {
		checkLogBodies(t, rt, id, sent)
	}
}

// A retry reads the payload after every other holder let it go: the
// event's other delivery settled and every log entry of it trimmed.
func TestRetrySendsThePayloadAfterItsOtherHoldersWent(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cfg := testConfig()
	cfg.Retry = delivery.RetryPolicy{MaxAttempts: 3, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxAge: time.Hour}
	var rt *Runtime
	okGot := make(chan struct{}, 1)
	ok := newRecorder(t, func(string, int) int {
		okGot <- struct{}{}
		return http.StatusOK
	})
	retried := newRecorder(t, func(_ string, attempt int) int {
		if attempt > 1 {
			return http.StatusOK
		}
		// Hold deliveries back before answering: the retry waits in the
		// queue while the other holders go.
		select {
		case <-okGot:
		case <-time.After(5 * time.Second):
		}
		silent := cfg
		silent.Silent = true
		rt.Configure(silent, rt.Hooks())
		return http.StatusServiceUnavailable
	})
	rt = startSharded(t, redisstore.Options{URL: srv.URL, Shards: 2}, cfg,
		hookTo(t, 1, "acme/api", ok.URL), hookTo(t, 2, "acme/api", retried.URL))
	s, rdb := rt.store, rt.store.Client()
	ctx := context.Background()
	ev := pushEvent(t, "acme/api")
	ev.Body = []byte(`{"object_kind":"push","ref":"refs/heads/main","commits":[{"message":"retry me ` + strings.Repeat("é", 200) + `"}]}`)
	enqueue(t, rt, ev)
	retried.waitTotal(t, 1)
	waiting := func() (bool, string) {
		// Facts that stay true once true, since the runtime is silent from
		// hook 2's first answer on: the retry waits in the ready stream
		// (the failure's settle logged the attempt and scheduled it, in
		// one script) and hook 1's attempt is logged. Queue depths read
		// beside the logs would not do: the first attempt in flight is a
		// ready entry too, and may settle between the looks.
		ready := readyDeliveries(t, rt)
		log1, _ := rt.HookLog(ctx, 1)
		log2, _ := rt.HookLog(ctx, 2)
		retry := len(ready) == 1 && ready[0].HookID == 2 && ready[0].Attempt == 2
		return retry && len(log1) == 1 && len(log2) == 1,
			fmt.Sprintf("ready %s, hook logs %d and %d", describeDeliveries(ready), len(log1), len(log2))
	}
	within(t, 10*time.Second, "the retry to be due and the other delivery settled", waiting)
	if _, err := s.Log().Trim(ctx, redisstore.LogLimits{Retention: time.Hour, MaxEntries: 10}, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if r := refcheck.Assert(t, rdb, "test"); r.Held[ev.ID] != 1 || r.Holders[refcheck.KindReady] != 1 {
		t.Fatalf("before the retry: payload held %d times, holders %v; want only the retry", r.Held[ev.ID], r.Holders)
	}
	rt.Configure(cfg, rt.Hooks())
	got := retried.waitFor(t, ev.ID, 2, 2)
	for i, r := range got {
		if r.body != string(ev.Body) {
			t.Errorf("attempt %d: body %q, want %q", i+1, r.body, ev.Body)
		}
	}
	within(t, 10*time.Second, "the retry to settle", func() (bool, string) {
		d, _ := s.Control().QueueDepths(ctx)
		return d.Ready+d.Scheduled == 0, fmt.Sprintf("%+v", d)
	})
	if r := refcheck.Assert(t, rdb, "test"); r.Held[ev.ID] != 1 || r.Holders[refcheck.KindLog] != 1 {
		t.Errorf("after the retry: payload held %d times, holders %v; want the retry's log entry", r.Held[ev.ID], r.Holders)
	}
	if ok.total() != 1 {
		t.Errorf("hook 1 got %d requests, want 1", ok.total())
	}
}

// An event added twice (a capture retried after a timeout whose first
// write had landed, a spool replay) is delivered twice to each hook, with
// the same Idempotency-Key. When both copies fail and wait for their retry
// together, they are one entry of the schedule: the payload must still be
// freed once every holder is gone.
func TestTwiceAddedEventFailingTwiceLeavesNoOrphanPayload(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rcv := newRecorder(t, func(_ string, attempt int) int {
		if attempt <= 2 {
			return http.StatusServiceUnavailable // both copies' first attempts
		}
		return http.StatusOK
	})
	cfg := testConfig()
	cfg.Retry = delivery.RetryPolicy{MaxAttempts: 3, Backoff: 200 * time.Millisecond, MaxBackoff: time.Second, MaxAge: time.Hour}
	rt := startSharded(t, redisstore.Options{URL: srv.URL, Shards: 2}, cfg, hookTo(t, 1, "acme/api", rcv.URL))
	ev := pushEvent(t, "acme/api")
	enqueue(t, rt, ev)
	enqueue(t, rt, ev)
	rcv.waitFor(t, ev.ID, 1, 3)
	settled(t, rt)
	time.Sleep(500 * time.Millisecond) // a fourth request would come now
	settled(t, rt)
	if n := len(rcv.requests(ev.ID, 1)); n > 4 {
		t.Errorf("%d requests, want at most 4 (two copies, each retried once)", n)
	}
	// The log keeps every attempt; nothing else holds the payload.
	r := refcheck.Assert(t, rt.store.Client(), "test")
	if r.Holders[refcheck.KindLog] != r.Held[ev.ID] {
		t.Errorf("payload held %d times, holders %v; want only its log entries", r.Held[ev.ID], r.Holders)
	}
	if _, err := rt.store.Log().Trim(context.Background(), redisstore.LogLimits{Retention: time.Hour, MaxEntries: 10},
		time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if r := refcheck.Assert(t, rt.store.Client(), "test"); r.Payloads != 0 {
		t.Errorf("%d payloads left once every log entry went", r.Payloads)
	}
}
