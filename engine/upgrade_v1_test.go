package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/internal/refcheck"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// The upgrade test: a Redis holding the v1 layout with work in every state
// (written by the frozen v1 writer, upgrade_v1_writer_test.go) is taken
// over by the current engine. Every queued (event, hook) pair must reach
// its receiver, with the Idempotency-Key v1 would have sent; only work a
// v1 consumer held pending may come twice (at-least-once); dead letters
// stay dead until redriven; v1's log entries and hook health read as
// before; and nothing is left queued under the namespace.
//
// After the write it looks only through what a user has: the runtime's
// API (Stats, HookHealth, HookLog, HookLogEntries, Resend, Redrive), the
// dead-letter listing the admin endpoint uses (Store.DeadLetters), the
// receivers, and a SCAN of the namespace (leftoverWork), so that it runs
// unchanged on a new layout with a migrator.

// upgradeHooks are the hooks of the test, by ID: project and group hooks,
// so that an event matches one to three of them.
var upgradeHooks = []struct {
	id             int64
	project, group string
}{
	{1, "acme/api", ""},
	{2, "", "acme"},
	{3, "acme/web", ""},
	{4, "acme/platform/db", ""},
	{5, "", "acme/platform"},
	{6, "beta/svc", ""},  // temporarily disabled by v1
	{7, "gamma/app", ""}, // two failures; its deliveries are dead letters
}

// upgradeMatches are the hooks an event of each project goes to.
var upgradeMatches = map[string][]int64{
	"acme/api":         {1, 2},
	"acme/web":         {3, 2},
	"acme/platform/db": {4, 2, 5},
	"beta/svc":         {6},
	"gamma/app":        {7},
}

// pair is one (event, hook) delivery.
type pair struct {
	event string
	hook  int64
}

// upgradeRequest is a request a receiver got.
type upgradeRequest struct {
	pair
	key, chain, body string
	at               time.Time
}

// upgradeReceivers is a real HTTP server standing for every hook's
// receiver (path /h<id>); it answers 200 and records what came.
type upgradeReceivers struct {
	*httptest.Server
	mu  sync.Mutex
	got []upgradeRequest
}

func newUpgradeReceivers(t *testing.T) *upgradeReceivers {
	r := &upgradeReceivers{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		hook, _ := strconv.ParseInt(strings.TrimPrefix(req.URL.Path, "/h"), 10, 64)
		var p struct {
			Event string `json:"v1_event"`
		}
		_ = json.Unmarshal(b, &p)
		r.mu.Lock()
		r.got = append(r.got, upgradeRequest{pair: pair{p.Event, hook}, key: req.Header.Get("Idempotency-Key"),
			chain: req.Header.Get("X-Gitlab-Event-UUID"), body: string(b), at: time.Now()})
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *upgradeReceivers) requests() []upgradeRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// counts tallies the requests per pair.
func (r *upgradeReceivers) counts() map[pair]int {
	out := map[pair]int{}
	for _, g := range r.requests() {
		out[g.pair]++
	}
	return out
}

// v1Work is what the v1 writer queued, and what the test expects of it.
type v1Work struct {
	queued     map[pair]*v1Delivery // must arrive, without a redrive
	mayRepeat  map[pair]string      // why a pair may arrive twice (v1 held it pending)
	dead       map[pair]*v1Delivery // dead letters: arrive only once redriven
	deadReason map[pair]string
	logged     map[int64][]loggedV1 // per hook: the v1 log entries
	cooling    time.Time            // hook 6 is disabled until then
	events     map[string]*v1Event  // every event, by ID
}

type loggedV1 struct {
	id    int64 // the entry number the API shows ("<ms>-<seq>" as ms*1000+seq)
	entry *v1LogEntry
}

const (
	crashedConsumer = "v1-crashed" // a v1 process that died and never comes back
	upgradedName    = "c1"         // the process being upgraded: v1 before, this runtime after
)

// writeV1 queues work in every state the v1 layout holds it.
func writeV1(t *testing.T, w *v1Writer, now time.Time) *v1Work {
	ctx := context.Background()
	work := &v1Work{queued: map[pair]*v1Delivery{}, mayRepeat: map[pair]string{}, dead: map[pair]*v1Delivery{},
		deadReason: map[pair]string{}, logged: map[int64][]loggedV1{}, events: map[string]*v1Event{}}
	n := 0
	newEvent := func(project string, at time.Time) *v1Event {
		n++
		id, err := uuid.NewV7()
		if err != nil {
			t.Fatal(err)
		}
		e := &v1Event{ID: id.String(), Trigger: "push", Project: project, Namespace: project[:strings.LastIndexByte(project, '/')],
			Ref: "refs/heads/main", At: at}
		e.Chain = e.ID
		if n%10 == 7 { // caused by a webhook request: inherits its X-Gitlab-Event-UUID
			e.Chain = uuid.NewString()
		}
		e.Body = fmt.Appendf(nil, `{"object_kind":"push","ref":"refs/heads/main","project":{"path_with_namespace":%q},`+
			`"v1_event":%q,"n":%d,"message":"caf\u00e9 \"quoted\" <b>"}`, project, e.ID, n)
		work.events[e.ID] = e
		return e
	}
	deliveriesOf := func(e *v1Event, attempt int) []*v1Delivery {
		var out []*v1Delivery
		for _, h := range upgradeMatches[e.Project] {
			out = append(out, &v1Delivery{EventID: e.ID, HookID: h, Trigger: e.Trigger, Chain: e.Chain, At: e.At,
				Body: e.Body, Attempt: attempt})
		}
		return out
	}
	expect := func(d *v1Delivery) { work.queued[pair{d.EventID, d.HookID}] = d }
	fannedOut := func(e *v1Event) { w.registerChain(ctx, e.Chain, e.ID, upgradeMatches[e.Project], 30*time.Minute) }

	w.createGroups(ctx)

	// Hook health: 6 temporarily disabled (its 4th failure), 7 failed twice.
	work.cooling = now.Add(3 * time.Second)
	w.cooling(ctx, 6, 4, now.Add(-time.Minute), work.cooling, "500")
	w.failedBelowThreshold(ctx, 7, 2, now.Add(-10*time.Minute), "502")

	// Events: 50 captured, not yet fanned out, the projects in turn.
	projects := []string{"acme/api", "acme/web", "acme/platform/db", "beta/svc"}
	var evs []*v1Event
	for i := range 50 {
		e := newEvent(projects[i%len(projects)], now.Add(-2*time.Minute+time.Duration(i)*time.Millisecond))
		w.addEvent(ctx, e)
		evs = append(evs, e)
		for _, d := range deliveriesOf(e, 1) {
			expect(d)
		}
	}
	// 0-14 taken by a fan-out consumer that died; it had queued the
	// deliveries of 10-14 but not settled those events (the crash between
	// FanOut's two steps): their replay queues them again.
	w.readAndCrash(ctx, w.events(), v1GroupFanout, crashedConsumer, 15)
	// 15-19 taken by the process being upgraded, stopped before settling.
	w.readAndCrash(ctx, w.events(), v1GroupFanout, upgradedName, 5)
	for i := range 20 {
		for _, d := range deliveriesOf(evs[i], 1) {
			work.mayRepeat[pair{d.EventID, d.HookID}] = "event pending in v1"
		}
	}

	// Ready: 40 deliveries of 20 events fanned out earlier; a fifth are
	// retries the mover put back (attempt 2).
	before := len(work.queued)
	for i := range 20 {
		e := newEvent(projects[i%len(projects)], now.Add(-90*time.Second))
		fannedOut(e)
		attempt := 1
		if i%5 == 4 {
			attempt = 2
		}
		for _, d := range deliveriesOf(e, attempt) {
			w.addReady(ctx, d)
			expect(d)
		}
	}
	if got := len(work.queued) - before; got != 40 {
		t.Fatalf("setup: %d ready deliveries, want 40", got)
	}
	// Half of them taken and held: 14 by the dead consumer, 6 by the
	// process being upgraded.
	ids := append(w.readAndCrash(ctx, w.ready(), v1GroupDeliver, crashedConsumer, 14),
		w.readAndCrash(ctx, w.ready(), v1GroupDeliver, upgradedName, 6)...)
	msgs, err := w.c.XRange(ctx, w.ready(), ids[0], ids[len(ids)-1]).Result()
	if err != nil || len(msgs) != 20 {
		t.Fatalf("setup: reading back the pending deliveries: %v (%d)", err, len(msgs))
	}
	for _, m := range msgs {
		var d struct {
			Ev   string `json:"ev"`
			Hook int64  `json:"hook"`
		}
		doc, _ := m.Values["d"].(string)
		if err := json.Unmarshal([]byte(doc[:strings.Index(doc, `,"body":`)]+"}"), &d); err != nil {
			t.Fatal(err)
		}
		work.mayRepeat[pair{d.Ev, d.Hook}] = "delivery pending in v1"
	}
	// The deliveries the dead fan-out consumer queued for events 10-14,
	// after the 40 (and their chains, registered before queueing).
	for _, e := range evs[10:15] {
		fannedOut(e)
		for _, d := range deliveriesOf(e, 1) {
			w.addReady(ctx, d)
		}
	}

	// Schedule: 20 members. 8 events × hooks 1 and 2: retries (attempt 2
	// or 3), half due already, half due within 3 s; and 4 deliveries of
	// the disabled hook 6, deferred until it comes back.
	for i := range 8 {
		e := newEvent("acme/api", now.Add(-5*time.Minute))
		fannedOut(e)
		due := now.Add(-time.Duration(i+1) * time.Second)
		if i >= 4 {
			due = now.Add(time.Duration(i-3) * 700 * time.Millisecond)
		}
		for _, d := range deliveriesOf(e, 2+i%2) {
			w.schedule(ctx, d, due)
			expect(d)
		}
	}
	for range 4 {
		e := newEvent("beta/svc", now.Add(-3*time.Minute))
		fannedOut(e)
		for _, d := range deliveriesOf(e, 1) {
			w.schedule(ctx, d, work.cooling)
			expect(d)
		}
	}

	// Dead letters: 10 deliveries to hook 7 that used up their attempts.
	for range 10 {
		e := newEvent("gamma/app", now.Add(-30*time.Minute))
		fannedOut(e)
		for _, d := range deliveriesOf(e, 5) {
			p := pair{d.EventID, d.HookID}
			work.dead[p], work.deadReason[p] = d, "gave up after 5 attempts, last: 502"
			w.deadLetter(ctx, d, work.deadReason[p], now.Add(-20*time.Minute))
		}
	}

	// Hook logs: 5 attempts of hook 1, 3 of hook 2, within the retention;
	// two of hook 1's in the same millisecond (sequence 0 and 1).
	for hook, count := range map[int64]int{1: 5, 2: 3} {
		for i := range count {
			e := newEvent("acme/api", now.Add(-time.Hour))
			at := now.Add(-50*time.Minute + time.Duration(min(i, 3))*time.Minute).UTC().Truncate(time.Millisecond)
			status := []string{"200", "500", "internal error"}[i%3]
			le := &v1LogEntry{HookID: hook, EventID: e.ID, Chain: e.Chain, Trigger: "push", Kind: "delivery",
				URL: "http://127.0.0.1/h{secret}", RequestData: json.RawMessage(e.Body), ResponseStatus: status,
				RequestHeaders: map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
					"X-Gitlab-Token": "[REDACTED]", "Idempotency-Key": v1IdempotencyKey(e.ID, hook),
					"X-Gitlab-Event-Uuid": e.Chain},
				ResponseHeaders: map[string]string{"Content-Length": "0"}, Duration: 0.012 * float64(i+1), CreatedAt: at}
			if status == "internal error" {
				le.ResponseHeaders, le.InternalError = map[string]string{}, "dial tcp 127.0.0.1:1: connect: connection refused"
			}
			sid := w.appendLog(ctx, le, 48*time.Hour, 500)
			ms, seq, _ := strings.Cut(sid, "-")
			m, _ := strconv.ParseInt(ms, 10, 64)
			s, _ := strconv.ParseInt(seq, 10, 64)
			work.logged[hook] = append(work.logged[hook], loggedV1{id: m*1000 + s, entry: le})
		}
	}
	if l := work.logged[1]; l[4].id != l[3].id+1 {
		t.Fatalf("setup: log entries %d and %d should share a millisecond", l[3].id, l[4].id)
	}
	return work
}

func TestUpgradeFromV1LayoutLosesNothing(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rcv := newUpgradeReceivers(t)
	c := srv.Client()
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	work := writeV1(t, &v1Writer{t: t, c: c, ns: "test"}, time.Now())

	// The upgraded process starts under the name it had.
	var hooks []*webhook.Hook
	for _, h := range upgradeHooks {
		hk := pushHook(t, h.id, h.project, h.group)
		hk.URL = rcv.URL + "/h" + strconv.FormatInt(h.id, 10)
		hooks = append(hooks, hk)
	}
	rt := newRuntime(t, srv.URL, upgradedName, hooks...)
	// It starts silent for a moment. A runtime reads which hooks are
	// disabled when it starts and every DisabledInterval after; a delivery
	// it reads before that first read completes goes out as if no hook
	// were disabled. That window is main's, at every start, not the
	// upgrade's: the silence keeps it out of this test, so that a request
	// to hook 6 before its time can only mean its v1 state was lost.
	cfg := testConfig()
	cfg.Retry.MaxAttempts = 5
	cfg.Silent = true
	rt.Configure(cfg, rt.Hooks())
	start := time.Now()
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })

	// The hooks' health reads as v1 left it: 6 disabled until its time,
	// 7 with two failures.
	if h, err := rt.HookHealth(ctx, 6); err != nil || h.AlertStatus != delivery.AlertTemporarilyDisabled ||
		h.DisabledUntil == nil || !h.DisabledUntil.Equal(work.cooling.Truncate(time.Millisecond)) {
		t.Errorf("hook 6 after the upgrade: %+v, %v; want temporarily disabled until %s as v1 left it",
			h, err, work.cooling.Format(time.RFC3339Nano))
	}
	if h, err := rt.HookHealth(ctx, 7); err != nil || h.Failures != 2 || h.AlertStatus != delivery.AlertExecutable {
		t.Errorf("hook 7 after the upgrade: %+v, %v; want the 2 failures v1 counted", h, err)
	}
	time.Sleep(time.Until(start.Add(delivery.DisabledInterval + 200*time.Millisecond)))
	cfg.Silent = false
	rt.Configure(cfg, rt.Hooks())

	// Every queued pair arrives.
	within(t, 15*time.Second, "every queued delivery to arrive", func() (bool, string) {
		got := rcv.counts()
		var missing []pair
		for p := range work.queued {
			if got[p] == 0 {
				missing = append(missing, p)
			}
		}
		return len(missing) == 0, fmt.Sprintf("%d of %d pairs missing, e.g. %v", len(missing), len(work.queued), firstPair(missing))
	})
	drained := time.Since(start)
	within(t, 5*time.Second, "the queues to empty", func() (bool, string) {
		st, err := rt.Stats(ctx)
		return err == nil && st.Events == 0 && st.Ready == 0 && st.Scheduled == 0, fmt.Sprintf("%+v %v", st, err)
	})
	time.Sleep(300 * time.Millisecond) // room for a late duplicate

	// Dead letters: still listed, nothing of theirs sent.
	got := rcv.counts()
	for p := range work.dead {
		if got[p] > 0 {
			t.Errorf("dead letter %v was sent without a redrive", p)
		}
	}
	dls, err := rt.store.DeadLetters().List(ctx, "-", 100)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[pair]string{}
	for _, dl := range dls {
		listed[pair{dl.Delivery.EventID, dl.Delivery.HookID}] = dl.Reason
		if p := (pair{dl.Delivery.EventID, dl.Delivery.HookID}); work.dead[p] != nil &&
			(dl.Err != nil || string(dl.Delivery.Body) != string(work.dead[p].Body) || dl.Delivery.Attempt != 5) {
			t.Errorf("dead letter %v reads as %+v (err %v)", p, dl.Delivery, dl.Err)
		}
	}
	if !reflect.DeepEqual(listed, work.deadReason) {
		t.Errorf("dead letters after the upgrade: %v\nwant v1's: %v", listed, work.deadReason)
	}
	if h, _ := rt.HookHealth(ctx, 7); h.Failures != 2 {
		t.Errorf("hook 7 has %d failures before its dead letters were redriven, want v1's 2", h.Failures)
	}

	// v1's log entries: same IDs, statuses and request data.
	for hook, want := range work.logged {
		checkV1Log(t, rt, hook, want)
	}

	// Redriven, the dead letters go out.
	if n, err := rt.Redrive(ctx, nil, true); err != nil || n != len(work.dead) {
		t.Fatalf("redrive all = %d, %v; want %d", n, err, len(work.dead))
	}
	within(t, 10*time.Second, "the redriven dead letters to arrive", func() (bool, string) {
		got := rcv.counts()
		n := 0
		for p := range work.dead {
			if got[p] > 0 {
				n++
			}
		}
		return n == len(work.dead), fmt.Sprintf("%d of %d arrived", n, len(work.dead))
	})

	// A v1 log entry can be resent: same payload, same Idempotency-Key.
	resent := work.logged[1][0].entry
	entries, err := rt.HookLogEntries(ctx, 1, work.logged[1][0].id)
	if err != nil || len(entries) != 1 {
		t.Fatalf("reading v1 log entry to resend: %v (%d)", err, len(entries))
	}
	if res, err := rt.Resend(ctx, hooks[0], &entries[0]); err != nil || !res.Success() {
		t.Fatalf("resending a v1 log entry: %+v, %v", res, err)
	}

	within(t, 5*time.Second, "every queue to empty", func() (bool, string) {
		st, err := rt.Stats(ctx)
		return err == nil && st == (Stats{}), fmt.Sprintf("%+v %v", st, err)
	})
	time.Sleep(300 * time.Millisecond)

	// The tally: nothing lost, duplicates only of what v1 held pending,
	// every request as v1 would have sent it.
	all := rcv.requests()
	counts := map[pair]int{}
	dupReasons := map[string]int{}
	for _, r := range all {
		counts[r.pair]++
		var want *v1Delivery
		switch {
		case work.queued[r.pair] != nil:
			want = work.queued[r.pair]
		case work.dead[r.pair] != nil:
			want = work.dead[r.pair]
		case r.event == resent.EventID && r.hook == 1:
			if r.body != string(resent.RequestData) || r.key != v1IdempotencyKey(resent.EventID, 1) || r.chain != resent.Chain {
				t.Errorf("resend of a v1 log entry: key %s, chain %s, body %s", r.key, r.chain, r.body)
			}
			continue
		default:
			t.Errorf("unexpected request to hook %d for event %q: %s", r.hook, r.event, r.body)
			continue
		}
		if r.key != v1IdempotencyKey(r.event, r.hook) {
			t.Errorf("%v: Idempotency-Key %s, v1 would have sent %s", r.pair, r.key, v1IdempotencyKey(r.event, r.hook))
		}
		if r.chain != want.Chain {
			t.Errorf("%v: X-Gitlab-Event-UUID %s, want %s", r.pair, r.chain, want.Chain)
		}
		if r.body != string(want.Body) {
			t.Errorf("%v: body %s\nwant %s", r.pair, r.body, want.Body)
		}
		if r.hook == 6 && r.at.Before(work.cooling) {
			t.Errorf("%v: sent at %s, while v1 had the hook disabled until %s", r.pair,
				r.at.Format(time.RFC3339Nano), work.cooling.Format(time.RFC3339Nano))
		}
	}
	lost := 0
	for p := range work.queued {
		if counts[p] == 0 {
			lost++
		}
	}
	for p := range work.dead {
		if counts[p] == 0 {
			lost++
		}
	}
	dups := 0
	for p, n := range counts {
		if n < 2 || (p.event == resent.EventID && p.hook == 1) {
			continue
		}
		dups += n - 1
		why, ok := work.mayRepeat[p]
		if !ok {
			t.Errorf("%v arrived %d times; v1 did not hold it pending, so once is the rule", p, n)
			why = "not pending in v1"
		}
		dupReasons[why] += n - 1
	}
	if lost > 0 {
		t.Errorf("%d pairs lost", lost)
	}
	t.Logf("upgrade: %d pairs queued + %d dead letters; all queued arrived %s after start; %d requests, %d duplicates %v",
		len(work.queued), len(work.dead), drained.Round(time.Millisecond), len(all), dups, dupReasons)

	// What a user checks last: the hooks are healthy again and nothing is
	// left queued anywhere under the namespace.
	for _, id := range []int64{6, 7} {
		if h, err := rt.HookHealth(ctx, id); err != nil || h.AlertStatus != delivery.AlertExecutable || h.Failures != 0 {
			t.Errorf("hook %d after its deliveries succeeded: %+v, %v", id, h, err)
		}
	}
	if left := leftoverWork(t, rt, "test"); len(left) > 0 {
		t.Errorf("work left under the namespace after the drain:\n  %s", strings.Join(left, "\n  "))
	}
	// Moved work carries its own payload; what the new layout's events
	// stored once is freed with its last holder.
	refcheck.Assert(t, rt.store.Client(), "test")
}

// checkV1Log reads a hook's log through the runtime, as the API does, and
// finds v1's entries in it unchanged.
func checkV1Log(t *testing.T, rt *Runtime, hook int64, want []loggedV1) {
	t.Helper()
	ctx := context.Background()
	refs, err := rt.HookLog(ctx, hook)
	if err != nil {
		t.Fatalf("listing the log of hook %d: %v", hook, err)
	}
	status := map[int64]string{}
	for _, r := range refs {
		status[r.ID] = r.Status
	}
	ids := make([]int64, 0, len(want))
	for _, w := range want {
		if s, ok := status[w.id]; !ok || s != w.entry.ResponseStatus {
			t.Errorf("hook %d log: v1 entry %d listed %v with status %q, want %q", hook, w.id, ok, s, w.entry.ResponseStatus)
		}
		ids = append(ids, w.id)
	}
	got, err := rt.HookLogEntries(ctx, hook, ids...)
	if err != nil || len(got) != len(want) {
		t.Fatalf("reading v1 entries of hook %d: %v (%d of %d)", hook, err, len(got), len(want))
	}
	for i, g := range got {
		w := want[i].entry
		if g.ID != want[i].id || g.EventID != w.EventID || g.Chain != w.Chain || g.Kind != w.Kind || g.URL != w.URL ||
			g.ResponseStatus != w.ResponseStatus || g.InternalError != w.InternalError || !g.CreatedAt.Equal(w.CreatedAt) ||
			string(g.RequestData) != string(w.RequestData) || !reflect.DeepEqual(g.RequestHeaders, w.RequestHeaders) {
			t.Errorf("hook %d log entry %d reads as %+v\nv1 wrote %+v", hook, want[i].id, g, w)
		}
	}
}

// leftoverWork lists the streams and sorted sets under ns that still hold
// work: entries of any stream but a hook log (kept for its retention by
// design), entries pending in any consumer group, members of any sorted
// set, and a dead-letter byte count without dead letters.
func leftoverWork(t *testing.T, rt *Runtime, ns string) []string {
	t.Helper()
	ctx := context.Background()
	c := rt.store.Client()
	var left []string
	var cursor uint64
	for range 1000 {
		keys, next, err := c.Scan(ctx, cursor, ns+":*", 500).Result()
		if err != nil {
			t.Fatalf("scanning %s: %v", ns, err)
		}
		for _, k := range keys {
			typ, _ := c.Type(ctx, k).Result()
			switch typ {
			case "stream":
				if n, _ := c.XLen(ctx, k).Result(); n > 0 && !strings.HasSuffix(k, ":log") {
					left = append(left, fmt.Sprintf("stream %s: %d entries", k, n))
				}
				groups, _ := c.XInfoGroups(ctx, k).Result()
				for _, g := range groups {
					if g.Pending > 0 {
						left = append(left, fmt.Sprintf("stream %s: %d pending in group %s", k, g.Pending, g.Name))
					}
				}
			case "zset":
				if n, _ := c.ZCard(ctx, k).Result(); n > 0 {
					left = append(left, fmt.Sprintf("sorted set %s: %d members", k, n))
				}
			case "string":
				if strings.HasSuffix(k, ":dead:bytes") {
					if v, _ := c.Get(ctx, k).Result(); v != "0" {
						left = append(left, fmt.Sprintf("%s = %s with no dead letters", k, v))
					}
				}
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	slices.Sort(left)
	return left
}

// within polls cond every 20ms until it holds, or fails the test after
// limit with cond's last description.
func within(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, desc := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %s for %s: %s", limit, what, desc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func firstPair(s []pair) any {
	if len(s) == 0 {
		return nil
	}
	return s[0]
}
