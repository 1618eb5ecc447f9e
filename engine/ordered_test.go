package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/grt-continuation/caddy-webhooks/internal/ordercheck"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// sequence is a receiver that records the seq field of each payload in
// the order requests arrive, and answers 500 to every fail-th request.
type sequence struct {
	*httptest.Server
	mu      sync.Mutex
	arrived []int
	delay   time.Duration
	fail    int
	n       int
}

func newSequence(t *testing.T, fail int, delay time.Duration) *sequence {
	t.Helper()
	s := &sequence{fail: fail, delay: delay}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct{ Seq int }
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("payload without seq: %s", b)
		}
		time.Sleep(s.delay)
		s.mu.Lock()
		s.arrived = append(s.arrived, p.Seq)
		s.n++
		failing := s.fail > 0 && s.n%s.fail == 0
		s.mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// inOrder waits (bounded) until every seq in want arrived, then checks
// that each first arrival came after the first arrivals of every smaller
// seq that arrived: a retry may repeat an event, a later one never goes
// before it.
func (s *sequence) inOrder(t *testing.T, want []int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		s.mu.Lock()
		seen := map[int]bool{}
		for _, q := range s.arrived {
			seen[q] = true
		}
		missing := 0
		for _, q := range want {
			if !seen[q] {
				missing++
			}
		}
		arrived := append([]int(nil), s.arrived...)
		s.mu.Unlock()
		if missing == 0 {
			checkOrder(t, arrived, want)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events never arrived; arrived: %v", missing, len(want), arrived)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkOrder asserts the capture order of what arrived (ordercheck).
func checkOrder(t *testing.T, arrived, want []int) {
	t.Helper()
	n := ordercheck.Check(t, arrived, want)
	t.Logf("%d events arrived in capture order, in %d requests (%d repeats of an event: retries)", n, len(arrived), len(arrived)-n)
}

// orderedRuntime is a runtime on shards shards with the ordered hook h.
func orderedRuntime(t testing.TB, redisURL, consumer string, shards int, h *webhook.Hook) *Runtime {
	t.Helper()
	return orderedRuntimeOn(t, redisURL, redisstore.ModeSingle, consumer, shards, h)
}

// orderedRuntimeOn is orderedRuntime on a Redis of mode.
func orderedRuntimeOn(t testing.TB, redisURL, mode, consumer string, shards int, h *webhook.Hook) *Runtime {
	t.Helper()
	store, err := redisstore.New(redisstore.Options{URL: redisURL, Mode: mode, Namespace: "test", Shards: shards, Readers: 2 * shards})
	if err != nil {
		t.Fatal(err)
	}
	set, err := webhook.NewHookSet([]*webhook.Hook{h})
	if err != nil {
		t.Fatal(err)
	}
	log := zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt)
	}
	rt := NewRuntime(store, consumer, log)
	cfg := testConfig()
	cfg.Retry.MaxAttempts, cfg.Retry.Backoff, cfg.Retry.MaxBackoff = 100, 20*time.Millisecond, 100*time.Millisecond
	cfg.Health.Threshold = 1000 // a fifth of attempts fail: never disabled here
	rt.Configure(cfg, set)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	return rt
}

// seqEvent is a push whose payload carries seq, in a chain of its own, so
// consecutive events land in different shards.
func seqEvent(t testing.TB, seq int) *webhook.Event {
	t.Helper()
	ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: "acme/api", Ref: "refs/heads/main"},
		fmt.Appendf(nil, `{"object_kind":"push","ref":"refs/heads/main","seq":%d}`, seq), "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// Two processes on four shards, events captured one after the other by
// either, a receiver that fails a fifth of the requests, and one process
// that dies halfway with work in hand: the ordered hook's receiver gets
// every event, in capture order.
func TestOrderedHookDeliversInCaptureOrderAcrossProcessesAndShards(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	rcv := newSequence(t, 5, time.Millisecond)
	h := hookTo(t, 1, "acme/api", rcv.URL)
	h.Ordered = true
	a := orderedRuntime(t, redis.URL, "instance-a", 4, h)
	b := orderedRuntime(t, redis.URL, "instance-b", 4, h)
	t.Cleanup(func() { _ = b.Close(time.Second) })
	shards := map[int]bool{}
	var want []int
	for seq := range 120 {
		rt := a
		if seq%2 == 1 || seq >= 60 {
			rt = b
		}
		if seq == 60 {
			_ = a.Close(0) // dies with work in hand
		}
		ev := seqEvent(t, seq)
		shards[redisstore.ShardOf(ev.Chain, 4)] = true
		enqueue(t, rt, ev)
		want = append(want, seq)
	}
	if len(shards) < 4 {
		t.Fatalf("events landed in %d of 4 shards", len(shards))
	}
	rcv.inOrder(t, want)
}

// A failing head holds the events behind it: none is sent until it
// succeeds; the queue shows it blocked, by which event, and why.
func TestOrderedHookHeadBlocksUntilItSucceeds(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	var mu sync.Mutex
	failing := true
	var got []int
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct{ Seq int }
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &p)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, p.Seq)
		if failing {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	h := hookTo(t, 1, "acme/api", srv)
	h.Ordered = true
	rt := orderedRuntime(t, redis.URL, "only", 2, h)
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	first := seqEvent(t, 0)
	enqueue(t, rt, first)
	for seq := 1; seq < 5; seq++ {
		enqueue(t, rt, seqEvent(t, seq))
	}
	ctx := context.Background()
	var st redisstore.OrderedState
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if st, err = rt.OrderedState(ctx, 1); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		tries := len(got)
		mu.Unlock()
		if st.Blocked != nil && st.Pending == 5 && tries >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue state %+v after %d requests: want 5 pending, blocked", st, tries)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Blocked.EventID != first.ID || st.Blocked.LastStatus != "503" || st.Blocked.Attempts < 2 {
		t.Errorf("blocked by %+v, want event %s with 503", st.Blocked, first.ID)
	}
	mu.Lock()
	for i, q := range got {
		if q != 0 {
			t.Fatalf("request %d carried event %d while event 0 had not succeeded: %v", i, q, got)
		}
	}
	failing = false
	mu.Unlock()
	deadline = time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		seq := append([]int(nil), got...)
		mu.Unlock()
		if n > 0 && seq[n-1] == 4 {
			checkOrder(t, seq, []int{0, 1, 2, 3, 4})
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("arrived %v", seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The last request arrived before its settle: wait for the queue to
	// empty rather than read it once.
	for deadline = time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := rt.OrderedState(ctx, 1)
		if err == nil && st.Pending == 0 && st.Blocked == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the last delivery: queue %+v (%v), want empty", st, err)
		}
	}
}

// An event captured before another but still on its way to Redis (a
// capture under way, or one in the spool) holds the later one back; once
// it is queued, it goes first.
func TestOrderedHookWaitsForCapturesOnTheirWay(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"capture", "spool"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			redis := redistest.Start(t)
			rcv := newSequence(t, 0, 0)
			h := hookTo(t, 1, "acme/api", rcv.URL)
			h.Ordered = true
			rt := orderedRuntime(t, redis.URL, "only", 2, h)
			t.Cleanup(func() { _ = rt.Close(time.Second) })
			enqueue(t, rt, seqEvent(t, -1)) // once it arrives, heads go as soon as they may
			rcv.inOrder(t, []int{-1})
			early := seqEvent(t, 0)
			release := func() {}
			switch via {
			case "capture": // built, not yet enqueued
				release = rt.Capturing(early.At)
			case "spool": // spooled while Redis was down, not replayed yet
				var mu sync.Mutex
				spooled := true
				rt.SetFailover(Failover{Spooled: func() {}, Oldest: func() (time.Time, bool) {
					mu.Lock()
					defer mu.Unlock()
					return early.At, spooled
				}})
				release = func() { mu.Lock(); spooled = false; mu.Unlock() }
			}
			enqueue(t, rt, seqEvent(t, 1))
			time.Sleep(time.Second) // the later event would have gone by now
			rcv.mu.Lock()
			got := append([]int(nil), rcv.arrived...)
			rcv.mu.Unlock()
			if len(got) > 1 {
				t.Fatalf("arrived %v while the earlier event was on its way", got)
			}
			enqueue(t, rt, early)
			release()
			rcv.inOrder(t, []int{-1, 0, 1})
		})
	}
}

// An ordered head whose payload is gone cannot block its hook for ever:
// it is dead-lettered, saying so, and the deliveries behind it go.
func TestOrderedHeadWithoutPayloadIsDeadLettered(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	rcv := newSequence(t, 0, 0)
	h := hookTo(t, 1, "acme/api", rcv.URL)
	h.Ordered = true
	rt := orderedRuntime(t, redis.URL, "only", 1, h)
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	lost, next := seqEvent(t, 0), seqEvent(t, 1)
	// The first delivery reached the queue without its payload (its key in
	// Redis was lost); the second has its own.
	if _, err := rt.store.Ordered().Add(context.Background(), 1, []redisstore.OrderedEntry{
		{Key: lost.ID, Delivery: webhook.Delivery{EventID: lost.ID, HookID: 1, Trigger: "push", Chain: lost.Chain, At: lost.At, Attempt: 1}},
	}); err != nil {
		t.Fatal(err)
	}
	enqueue(t, rt, next)
	rcv.inOrder(t, []int{1})
	reasons := deadReasons(t, rt)
	if len(reasons) != 1 || !strings.Contains(reasons[0], "the payload of this delivery is gone") {
		t.Fatalf("dead letters %v, want the head without payload, saying why", reasons)
	}
}

// A hook made unordered while its queue holds deliveries: they still go,
// in order, and new ones go the unordered way.
func TestOrderedQueueDrainsAfterTheHookIsMadeUnordered(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	var mu sync.Mutex
	failing := true
	rcv := newSequence(t, 0, 0)
	gate := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f := failing
		mu.Unlock()
		if f {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rcv.Config.Handler.ServeHTTP(w, r)
	}))
	h := hookTo(t, 1, "acme/api", gate)
	h.Ordered = true
	rt := orderedRuntime(t, redis.URL, "only", 2, h)
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	for seq := range 3 {
		enqueue(t, rt, seqEvent(t, seq))
	}
	waitFor(t, "the queue blocked", func() bool {
		st, _ := rt.OrderedState(context.Background(), 1)
		return st.Pending == 3 && st.Blocked != nil
	})
	unordered := *h
	unordered.Ordered = false
	set, _ := webhook.NewHookSet([]*webhook.Hook{&unordered})
	cfg := *rt.cfg.Load()
	rt.Configure(cfg, set)
	mu.Lock()
	failing = false
	mu.Unlock()
	enqueue(t, rt, seqEvent(t, 3)) // goes its own way, unordered
	var queued []int
	waitFor(t, "every event", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		queued = slices.DeleteFunc(slices.Clone(rcv.arrived), func(q int) bool { return q == 3 })
		return slices.Contains(rcv.arrived, 3) && len(queued) >= 3
	})
	checkOrder(t, queued, []int{0, 1, 2}) // the queue's, in order
}

// On a Redis Cluster, where shards and hook slots live on different
// masters, two processes keep an ordered hook's capture order too.
func TestOrderedHookOnACluster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster")
	}
	cluster := redistest.StartCluster(t, 3)
	rcv := newSequence(t, 5, 0)
	h := hookTo(t, 1, "acme/api", rcv.URL)
	h.Ordered = true
	a := orderedRuntimeOn(t, cluster.URL, redisstore.ModeCluster, "instance-a", 6, h)
	b := orderedRuntimeOn(t, cluster.URL, redisstore.ModeCluster, "instance-b", 6, h)
	t.Cleanup(func() { _ = a.Close(time.Second); _ = b.Close(time.Second) })
	var want []int
	for seq := range 60 {
		rt := a
		if seq%2 == 1 {
			rt = b
		}
		enqueue(t, rt, seqEvent(t, seq))
		want = append(want, seq)
	}
	rcv.inOrder(t, want)
}
