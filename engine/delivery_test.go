package engine

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/engine/recovery"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// scripted is a receiver that answers each request with the next scripted
// status (the last one repeats) and records what arrived and when.
type scripted struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	header   http.Header // added to every answer
	got      []received
	times    []time.Time
	arrived  chan struct{}
}

func newScripted(t *testing.T, statuses ...int) *scripted {
	s := &scripted{statuses: statuses, header: http.Header{}, arrived: make(chan struct{}, 1000)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		status := s.statuses[min(len(s.got), len(s.statuses)-1)]
		s.got = append(s.got, received{header: r.Header.Clone(), body: string(b)})
		s.times = append(s.times, time.Now())
		for k, v := range s.header {
			w.Header()[k] = v
		}
		s.mu.Unlock()
		w.WriteHeader(status)
		s.arrived <- struct{}{}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scripted) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.arrived:
		case <-time.After(15 * time.Second):
			t.Fatalf("only %d of %d requests arrived", s.count(), n)
		}
	}
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *scripted) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-s.arrived:
		t.Fatalf("unexpected request #%d", s.count())
	case <-time.After(d):
	}
}

// startWith starts a runtime with cfg and hooks on a Redis of its own.
func startWith(t *testing.T, cfg Config, hooks ...*webhook.Hook) *Runtime {
	t.Helper()
	return startOn(t, redistest.Start(t).URL, cfg, hooks...)
}

// startOn starts a runtime on the given Redis.
func startOn(t *testing.T, redisURL string, cfg Config, hooks ...*webhook.Hook) *Runtime {
	t.Helper()
	rt := newRuntime(t, redisURL, "c1", hooks...)
	rt.Configure(cfg, rt.Hooks())
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	return rt
}

func hookTo(t *testing.T, id int64, project, url string) *webhook.Hook {
	h := pushHook(t, id, project, "")
	h.URL = url
	return h
}

func deadReasons(t *testing.T, rt *Runtime) []string {
	t.Helper()
	dl, err := rt.store.DeadLetters().List(context.Background(), "-", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dl {
		out = append(out, d.Reason)
	}
	return out
}

func TestTransientFailuresAreRetriedWithTheSameKey(t *testing.T) {
	t.Parallel()
	rcv := newScripted(t, 503, 500, 200)
	cfg := testConfig()
	cfg.Retry.MaxAttempts = 5
	rt := startWith(t, cfg, hookTo(t, 1, "acme/api", rcv.URL))
	ev := pushEvent(t, "acme/api")
	enqueue(t, rt, ev)
	rcv.wait(t, 3)
	rcv.quiet(t, 500*time.Millisecond)
	keys, attempts := map[string]bool{}, map[string]bool{}
	for _, g := range rcv.got {
		keys[g.header.Get("Idempotency-Key")] = true
		attempts[g.header.Get("X-Gitlab-Webhook-Uuid")] = true
	}
	if len(keys) != 1 || !keys[webhook.IdempotencyKey(ev.ID, 1)] {
		t.Errorf("Idempotency-Keys %v: want the same one on every attempt", keys)
	}
	if len(attempts) != 3 {
		t.Errorf("X-Gitlab-Webhook-UUID should be new per attempt, got %d distinct", len(attempts))
	}
	streamsDrained(t, rt)
	if r := deadReasons(t, rt); len(r) != 0 {
		t.Errorf("dead letters %v", r)
	}
	if h, _ := rt.HookHealth(context.Background(), 1); h.AlertStatus != delivery.AlertExecutable || h.Failures != 0 {
		t.Errorf("health after success = %+v, want reset", h)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	rcv := newScripted(t, 429, 200)
	rcv.header.Set("Retry-After", "2")
	cfg := testConfig()
	cfg.Retry.MaxAttempts, cfg.Retry.MaxBackoff = 3, 10*time.Second
	rt := startWith(t, cfg, hookTo(t, 1, "acme/api", rcv.URL))
	enqueue(t, rt, pushEvent(t, "acme/api"))
	rcv.wait(t, 2)
	if gap := rcv.times[1].Sub(rcv.times[0]); gap < 1900*time.Millisecond {
		t.Fatalf("second attempt after %s, before the receiver's Retry-After of 2s", gap)
	}
}

func TestClientErrorsAreDeadLetteredAndRedrivable(t *testing.T) {
	t.Parallel()
	rcv := newScripted(t, 400, 200)
	cfg := testConfig()
	cfg.Retry.MaxAttempts = 5
	rt := startWith(t, cfg, hookTo(t, 1, "acme/api", rcv.URL))
	enqueue(t, rt, pushEvent(t, "acme/api"))
	rcv.wait(t, 1)
	rcv.quiet(t, 700*time.Millisecond) // a 4xx is not retried
	streamsDrained(t, rt)
	reasons := deadReasons(t, rt)
	if len(reasons) != 1 || !strings.Contains(reasons[0], "client error 400") {
		t.Fatalf("dead letters %v", reasons)
	}
	dl, _ := rt.store.DeadLetters().List(context.Background(), "-", 10)
	if n, err := rt.store.DeadLetters().Redrive(context.Background(), dl[0].ID); n != 1 || err != nil {
		t.Fatalf("redrive = %d, %v", n, err)
	}
	rcv.wait(t, 1)
	if rcv.got[1].header.Get("Idempotency-Key") != rcv.got[0].header.Get("Idempotency-Key") {
		t.Error("a redriven delivery must keep its Idempotency-Key")
	}
	streamsDrained(t, rt)
	if st, _ := rt.Stats(context.Background()); st.DeadLetters != 0 {
		t.Errorf("%d dead letters left after redrive", st.DeadLetters)
	}
}

func TestFourthFailureDisablesTemporarilyAndDeliveriesWait(t *testing.T) {
	t.Parallel()
	rcv := newScripted(t, 500, 500, 500, 500, 200)
	cfg := testConfig()
	cfg.Health.Base, cfg.Health.Max = 2*time.Second, 10*time.Second
	rt := startWith(t, cfg, hookTo(t, 1, "acme/api", rcv.URL))
	ctx := context.Background()
	for i := range 4 {
		enqueue(t, rt, pushEvent(t, "acme/api"))
		rcv.wait(t, 1)
		streamsDrained(t, rt)
		h, _ := rt.HookHealth(ctx, 1)
		if want := i + 1; h.Failures != want {
			t.Fatalf("after failure %d: %+v", want, h)
		}
		if i < 3 && h.AlertStatus != delivery.AlertExecutable {
			t.Fatalf("disabled after only %d failures", i+1)
		}
	}
	h, _ := rt.HookHealth(ctx, 1)
	if h.AlertStatus != delivery.AlertTemporarilyDisabled || h.DisabledUntil == nil {
		t.Fatalf("after the 4th failure: %+v, want temporarily_disabled", h)
	}
	until := *h.DisabledUntil
	if n := disabledHooks(t, rt, time.Now()); n != 1 {
		t.Fatalf("%d hooks counted disabled, want 1", n)
	}
	// GitLab drops events for a disabled hook; we keep them until it is back.
	enqueue(t, rt, pushEvent(t, "acme/api"))
	rcv.wait(t, 1)
	if at := rcv.times[4]; at.Before(until) {
		t.Fatalf("delivered at %s while the hook was disabled until %s", at, until)
	}
	streamsDrained(t, rt)
	if h, _ := rt.HookHealth(ctx, 1); h.AlertStatus != delivery.AlertExecutable || h.Failures != 0 {
		t.Fatalf("after a success: %+v, want reset", h)
	}
	if n := disabledHooks(t, rt, time.Now()); n != 0 {
		t.Fatalf("%d hooks counted disabled after recovery", n)
	}
}

func TestClientErrorsAtTheThresholdDisableUntilReenabled(t *testing.T) {
	t.Parallel()
	rcv := newScripted(t, 404, 404, 404, 404, 200)
	rt := startWith(t, testConfig(), hookTo(t, 1, "acme/api", rcv.URL))
	ctx := context.Background()
	for range 4 {
		enqueue(t, rt, pushEvent(t, "acme/api"))
		rcv.wait(t, 1)
		streamsDrained(t, rt)
	}
	if h, _ := rt.HookHealth(ctx, 1); h.AlertStatus != delivery.AlertDisabled {
		t.Fatalf("after 4 client errors: %+v, want disabled", h)
	}
	if n := disabledHooks(t, rt, time.Now().Add(48*time.Hour)); n != 1 {
		t.Fatalf("a hook disabled until re-enabled counts at any time; got %d", n)
	}
	enqueue(t, rt, pushEvent(t, "acme/api"))
	streamsDrained(t, rt)
	rcv.quiet(t, 500*time.Millisecond) // nothing is sent to a disabled hook
	reasons := deadReasons(t, rt)
	if last := reasons[len(reasons)-1]; !strings.HasPrefix(last, "hook disabled") {
		t.Fatalf("last dead letter %q", last)
	}
	// A person (or a successful test) re-enables; the kept delivery is redriven.
	if err := rt.ResetHealth(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n := disabledHooks(t, rt, time.Now()); n != 0 {
		t.Fatalf("%d hooks counted disabled after re-enabling", n)
	}
	dl, _ := rt.store.DeadLetters().List(ctx, "-", 100)
	if n, _ := rt.store.DeadLetters().Redrive(ctx, dl[len(dl)-1].ID); n != 1 {
		t.Fatal("redrive failed")
	}
	rcv.wait(t, 1)
}

func TestGoneDisablesAtOnce(t *testing.T) {
	t.Parallel()
	rcv := newScripted(t, 410)
	rt := startWith(t, testConfig(), hookTo(t, 1, "acme/api", rcv.URL))
	enqueue(t, rt, pushEvent(t, "acme/api"))
	rcv.wait(t, 1)
	streamsDrained(t, rt)
	if h, _ := rt.HookHealth(context.Background(), 1); h.AlertStatus != delivery.AlertDisabled {
		t.Fatalf("after 410: %+v, want disabled", h)
	}
}

func TestHangingReceiverSlowsOnlyItself(t *testing.T) {
	t.Parallel()
	var inflight, peak atomic.Int32
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	fast := newScripted(t, 200)
	cfg := testConfig()
	cfg.Workers, cfg.HookConcurrency = 8, 2
	cfg.Send.Timeout, cfg.Lease = 5*time.Second, 10*time.Second
	rt := startWith(t, cfg, hookTo(t, 1, "acme/slow", hang.URL), hookTo(t, 2, "acme/fast", fast.URL))
	const n = 20
	for range n {
		enqueue(t, rt, pushEvent(t, "acme/slow"))
		enqueue(t, rt, pushEvent(t, "acme/fast"))
	}
	// Every fast delivery arrives while the slow receiver still holds its
	// first requests: it never got more than its two slots.
	fast.wait(t, n)
	if p := peak.Load(); p > 2 {
		t.Fatalf("the hanging hook had %d deliveries in flight, cap is 2", p)
	}
	if inflight.Load() == 0 {
		t.Fatal("the slow receiver was expected to still be hanging")
	}
}

func TestCallsPerMinuteDelaysInsteadOfDropping(t *testing.T) {
	t.Parallel()
	rcv := newScripted(t, 200)
	cfg := testConfig()
	cfg.CallsPerMinute = 3
	rt := startWith(t, cfg, hookTo(t, 1, "acme/api", rcv.URL), hookTo(t, 2, "acme/other", rcv.URL))
	for i := range 5 {
		project := "acme/api"
		if i%2 == 1 {
			project = "acme/other" // same top-level namespace, same bucket
		}
		enqueue(t, rt, pushEvent(t, project))
	}
	rcv.wait(t, 3)
	rcv.quiet(t, 700*time.Millisecond)
	if st, _ := rt.Stats(context.Background()); st.Scheduled != 2 {
		t.Fatalf("%d deliveries waiting for the next minute, want 2", st.Scheduled)
	}
}

func TestRecursiveWebhooksAreBlocked(t *testing.T) {
	t.Parallel()
	rcv := newScripted(t, 200)
	rt := startWith(t, testConfig(), hookTo(t, 1, "acme/api", rcv.URL))
	first := pushEvent(t, "acme/api")
	enqueue(t, rt, first)
	rcv.wait(t, 1)
	// The receiver reacted by calling the app, which announced a new event
	// carrying the same X-Gitlab-Event-UUID: the same hook must not fire.
	again, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: "acme/api", Ref: "refs/heads/main"},
		[]byte(`{"ref":"refs/heads/main"}`), first.Chain, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, rt, again)
	streamsDrained(t, rt)
	rcv.quiet(t, 500*time.Millisecond)
}

func TestSilentModeKeepsDeliveriesQueued(t *testing.T) {
	t.Parallel()
	rcv := newScripted(t, 200)
	cfg := testConfig()
	cfg.Silent = true
	rt := startWith(t, cfg, hookTo(t, 1, "acme/api", rcv.URL))
	enqueue(t, rt, pushEvent(t, "acme/api"))
	rcv.quiet(t, 1500*time.Millisecond)
	cfg.Silent = false
	rt.Configure(cfg, rt.Hooks())
	rcv.wait(t, 1)
	streamsDrained(t, rt)
}

func TestPoisonDeliveriesAreDeadLettered(t *testing.T) {
	t.Parallel()
	rcv := newScripted(t, 200)
	h := hookTo(t, 1, "acme/api", rcv.URL)
	redisSrv := redistest.Start(t)
	rt := newRuntime(t, redisSrv.URL, "c1", h)
	ctx := context.Background()
	if err := rt.store.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	enqueue(t, rt, pushEvent(t, "acme/api"))
	msgs, _ := rt.store.Queue().ReadEvents(ctx, 0, "c1", ">", 10, time.Second)
	if err := rt.fan.FanOut(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	// A delivery that crashed every consumer that took it.
	ds, _ := rt.store.Queue().ReadDeliveries(ctx, 0, "crasher", ">", 10, time.Second)
	c := rt.store.Client()
	for range recovery.MaxHandouts {
		c.XClaim(ctx, &redis.XClaimArgs{Stream: rt.store.Keys().Ready(0), Group: redisstore.GroupDeliver,
			Consumer: "crasher", MinIdle: 0, Messages: []string{ds[0].StreamID}})
	}
	time.Sleep(3100 * time.Millisecond) // past the lease, so the janitor claims it
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	streamsDrained(t, rt)
	rcv.quiet(t, 300*time.Millisecond)
	if r := deadReasons(t, rt); len(r) != 1 || !strings.HasPrefix(r[0], "poison") {
		t.Fatalf("dead letters %v", r)
	}
}

// TestHookAtItsCapIsFedWithoutTheSchedule: a burst to a busy but healthy
// hook, as large as the room to park (2 × workers here), waits in the
// process for the hook's slots instead of bouncing through the retry
// schedule, and the cap still holds. (Beyond that room, the rest waits in
// the schedule, so one hook cannot fill the process with its backlog.)
// Not parallel: it counts a process-wide metric.
func TestHookAtItsCapIsFedWithoutTheSchedule(t *testing.T) {
	var inflight, peak atomic.Int32
	var got atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		got.Add(1)
	}))
	defer rcv.Close()
	cfg := testConfig()
	cfg.Workers, cfg.HookConcurrency = 8, 2
	before := testutil.ToFloat64(metrics.Deferred.WithLabelValues("saturated"))
	rt := startWith(t, cfg, hookTo(t, 1, "acme/busy", rcv.URL))
	n := int32(2 * cfg.Workers)
	for range n {
		enqueue(t, rt, pushEvent(t, "acme/busy"))
	}
	deadline := time.Now().Add(15 * time.Second)
	for got.Load() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got.Load() != n {
		t.Fatalf("%d of %d deliveries arrived", got.Load(), n)
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("the hook had %d deliveries in flight, cap is 2", p)
	}
	if d := testutil.ToFloat64(metrics.Deferred.WithLabelValues("saturated")) - before; d != 0 {
		t.Errorf("%v deliveries went through the schedule", d)
	}
}

// disabledHooks counts the hooks disabled at now, as the monitor reads
// them.
func disabledHooks(t *testing.T, rt *Runtime, now time.Time) int64 {
	t.Helper()
	snap, err := rt.store.Control().Snapshot(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	return snap.DisabledHooks
}
