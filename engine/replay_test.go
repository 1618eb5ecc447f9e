package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/engine/replay"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// byEvent is a receiver that answers by the seq in the payload: status
// says what, given the seq and how many times it came before.
type byEvent struct {
	*httptest.Server
	mu     sync.Mutex
	times  map[int]int
	keys   map[int][]string
	status func(seq, before int) int
}

func newByEvent(t *testing.T, status func(seq, before int) int) *byEvent {
	t.Helper()
	r := &byEvent{times: map[int]int{}, keys: map[int][]string{}, status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p struct{ Seq int }
		b, _ := io.ReadAll(req.Body)
		_ = json.Unmarshal(b, &p)
		r.mu.Lock()
		before := r.times[p.Seq]
		r.times[p.Seq]++
		r.keys[p.Seq] = append(r.keys[p.Seq], req.Header.Get("Idempotency-Key"))
		r.mu.Unlock()
		w.WriteHeader(r.status(p.Seq, before))
	}))
	t.Cleanup(r.Close)
	return r
}

// count is how many requests carried seq.
func (r *byEvent) count(seq int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.times[seq]
}

// waitFor polls cond (bounded).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Six events; 1, 3 and 4 fail (twice: they are given up on). 3 is resent
// by hand once the receiver takes it. A replay of what failed until then
// sends 1 and 4 again (not 3, delivered since), with their
// Idempotency-Keys; a dry run of every attempt counts all six; a replay
// of the dead letters redrives 1, 3 and 4. Bad requests are refused,
// saying why.
func TestReplaySendsWhatFailedAgain(t *testing.T) {
	t.Parallel()
	fixed3, fixed := false, false
	var mu sync.Mutex
	rcv := newByEvent(t, func(seq, before int) int {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case fixed, seq == 3 && fixed3:
			return http.StatusOK
		case seq == 1 || seq == 3 || seq == 4:
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	cfg := testConfig()
	cfg.Retry.MaxAttempts, cfg.Retry.Backoff = 2, 50*time.Millisecond
	// Six failures, three events' two attempts: in an unlucky order four
	// come in a row, which would disable the hook for a minute. Replay is
	// under test here, not auto-disabling.
	cfg.Health.Threshold = 1000
	h := hookTo(t, 1, "acme/api", rcv.URL)
	rt := startWith(t, cfg, h, hookTo(t, 2, "acme/other", rcv.URL))
	ctx := context.Background()
	start := time.Now()
	evs := make([]*webhook.Event, 6)
	for i := range evs {
		evs[i] = seqEvent(t, i)
		enqueue(t, rt, evs[i])
	}
	waitFor(t, "every attempt", func() bool {
		st, _ := rt.Stats(ctx)
		return rcv.count(1) == 2 && rcv.count(4) == 2 && rcv.count(3) == 2 && st.DeadLetters == 3 && st.Scheduled == 0 && st.Ready == 0
	})
	until := time.Now()
	mu.Lock()
	fixed3 = true
	mu.Unlock()
	refs, err := rt.HookLog(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs { // newest first: event 3's last attempt
		es, _ := rt.HookLogEntries(ctx, 1, ref.ID)
		if len(es) == 1 && es[0].EventID == evs[3].ID {
			if res, err := rt.Resend(ctx, h, &es[0]); err != nil || !res.Success() {
				t.Fatalf("resending event 3: %+v %v", res, err)
			}
			break
		}
	}

	since := start.Add(-time.Second)
	dry, err := rt.StartReplay(ctx, replay.Request{Hooks: []int64{1}, Since: since, Status: replay.All, DryRun: true})
	if err != nil || dry.Matched != 6 || dry.ID != 0 {
		t.Fatalf("dry run of every attempt: %+v %v, want 6 and nothing queued", dry, err)
	}
	dry, err = rt.StartReplay(ctx, replay.Request{Project: "acme/api", Since: since, Until: until, Status: replay.Failed, DryRun: true})
	if err != nil || dry.Matched != 2 || !slices.Equal(dry.Hooks, []int64{1}) {
		t.Fatalf("dry run of what failed in acme/api: %+v %v, want 2 of hook 1", dry, err)
	}
	mu.Lock()
	fixed = true // the receiver is back
	mu.Unlock()
	job, err := rt.StartReplay(ctx, replay.Request{Hooks: []int64{1}, Since: since, Until: until, Status: replay.Failed})
	if err != nil || job.ID == 0 || job.Matched != 2 {
		t.Fatalf("replay: %+v %v", job, err)
	}
	waitFor(t, "the replay done", func() bool {
		j, _ := rt.ReplayJob(ctx, job.ID)
		return j.State == redisstore.ReplayDone && rcv.count(1) == 3 && rcv.count(4) == 3
	})
	if rcv.count(3) != 3 || rcv.count(0) != 1 {
		t.Errorf("events 0 and 3 were sent again: %d, %d requests", rcv.count(0), rcv.count(3))
	}
	rcv.mu.Lock()
	for _, seq := range []int{1, 4} {
		want := webhook.IdempotencyKey(evs[seq].ID, 1)
		for _, k := range rcv.keys[seq] {
			if k != want {
				t.Errorf("event %d was sent with Idempotency-Key %s, want its own %s", seq, k, want)
			}
		}
	}
	rcv.mu.Unlock()
	j, _ := rt.ReplayJob(ctx, job.ID)
	if j.Queued != 2 || j.Gone != 0 || j.Finished == nil {
		t.Errorf("replay record %+v", j)
	}

	dead, err := rt.StartReplay(ctx, replay.Request{Since: since, Status: replay.Dead})
	if err != nil || dead.Matched != 3 {
		t.Fatalf("replay of the dead letters: %+v %v", dead, err)
	}
	waitFor(t, "the dead letters redriven", func() bool { return rcv.count(1) == 4 && rcv.count(4) == 4 && rcv.count(3) == 4 })
	if st, _ := rt.Stats(ctx); st.DeadLetters != 0 {
		t.Errorf("%d dead letters left", st.DeadLetters)
	}

	for _, c := range []struct {
		req  replay.Request
		want string
	}{
		{replay.Request{Since: since, Status: "broken"}, `status must be failed, dead or all, got "broken"`},
		{replay.Request{Since: since, Status: replay.Failed, Hooks: []int64{9}}, "there is no hook 9"},
		{replay.Request{Since: since, Status: replay.Failed, Group: "nobody"}, "group nobody has no hooks"},
		{replay.Request{Status: replay.Failed}, "since is required"},
		{replay.Request{Since: time.Now().Add(time.Hour), Status: replay.Failed}, "must be before until"},
	} {
		_, err := rt.StartReplay(ctx, c.req)
		var ie *replay.InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an input error with %q", c.req, err, c.want)
		}
	}
	// A range reaching past what the logs keep says so.
	old, err := rt.StartReplay(ctx, replay.Request{Since: time.Now().Add(-72 * time.Hour), Status: replay.Failed, DryRun: true})
	if err != nil || len(old.Notes) != 1 || !strings.Contains(old.Notes[0], "are no longer there") {
		t.Errorf("dry run over 72h: %+v %v, want a note on the logs' retention", old, err)
	}
}

// A replay waits while the ready queue holds its depth of deliveries:
// with deliveries paused, it feeds no more than that; once they go, the
// rest follows.
func TestReplayLeavesTheQueueToLiveDeliveries(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	failing := true
	var mu sync.Mutex
	rcv := newByEvent(t, func(int, int) int {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
	h := hookTo(t, 1, "acme/api", rcv.URL)
	h.AutoDisable = &webhook.AutoDisable{Mode: webhook.AutoDisableOff} // thirty 400s in a row
	rt := startOn(t, redis.URL, testConfig(), h)
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	for i := range 30 {
		enqueue(t, rt, seqEvent(t, i))
	}
	waitFor(t, "30 dead letters", func() bool { st, _ := rt.Stats(ctx); return st.DeadLetters == 30 })
	mu.Lock()
	failing = false
	mu.Unlock()
	if err := rt.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	job, err := rt.StartReplay(ctx, replay.Request{Since: start, Status: replay.Dead})
	if err != nil || job.Matched != 30 {
		t.Fatalf("replay: %+v %v", job, err)
	}
	depth := min(max(testConfig().Workers/4, 2), 8)
	waitFor(t, "the first pages", func() bool { st, _ := rt.Stats(ctx); return st.Ready >= int64(depth) })
	time.Sleep(300 * time.Millisecond) // a dozen feeder steps
	if st, _ := rt.Stats(ctx); st.Ready != int64(depth) || st.DeadLetters != int64(30-depth) {
		t.Fatalf("while deliveries were paused the replay queued %d (%d dead letters left), want %d", st.Ready, st.DeadLetters, depth)
	}
	if err := rt.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay done", func() bool {
		j, _ := rt.ReplayJob(ctx, job.ID)
		st, _ := rt.Stats(ctx)
		return j.State == redisstore.ReplayDone && st.Ready == 0 && st.DeadLetters == 0
	})
	for i := range 30 {
		if rcv.count(i) != 2 {
			t.Errorf("event %d: %d requests, want the failed one and the replayed one", i, rcv.count(i))
		}
	}
}
