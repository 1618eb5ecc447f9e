package engine

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/fanout"
	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/engine/recovery"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// received is one request a test receiver got.
type received struct {
	header http.Header
	body   string
}

// receiver is a real HTTP server that records what arrives.
func receiver(t *testing.T, status int) (*httptest.Server, chan received) {
	t.Helper()
	ch := make(chan received, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- received{header: r.Header.Clone(), body: string(b)}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func next(t *testing.T, ch chan received) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery arrived within 10s")
		return received{}
	}
}

func none(t *testing.T, ch chan received, wait time.Duration) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("unexpected delivery: %v %s", r.header, r.body)
	case <-time.After(wait):
	}
}

// pushHook is a hook of a project or group that takes push events.
func pushHook(t *testing.T, id int64, project, group string) *webhook.Hook {
	t.Helper()
	h := &webhook.Hook{ID: id, Name: "h", Project: project, Group: group, URL: "http://127.0.0.1:1/x", EnableSSLVerification: true}
	h.Triggers.Add(gitlab.Push)
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	return h
}

func testConfig() Config {
	return Config{
		Send:    delivery.SendConfig{Instance: "https://forge.example.com", UserAgent: "GitLab/18.6.0", Timeout: 2 * time.Second, MaxResponseBody: 8 << 10, Network: delivery.NetworkPolicy{AllowLocal: true}},
		Workers: 4, Lease: 3 * time.Second, ClaimInterval: 200 * time.Millisecond,
		Retry:           delivery.RetryPolicy{MaxAttempts: 1, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxAge: time.Hour},
		Health:          delivery.DefaultHealthPolicy,
		HookConcurrency: 8, RecursionWindow: time.Minute, MaxChainHooks: fanout.MaxChainHooks, MaxHandouts: recovery.MaxHandouts,
	}
}

func newRuntime(t *testing.T, redisURL, consumer string, hooks ...*webhook.Hook) *Runtime {
	t.Helper()
	store, err := redisstore.New(redisstore.Options{URL: redisURL, Namespace: "test", Readers: 2})
	if err != nil {
		t.Fatal(err)
	}
	set, err := webhook.NewHookSet(hooks)
	if err != nil {
		t.Fatal(err)
	}
	rt := NewRuntime(store, consumer, zaptest.NewLogger(t))
	rt.Configure(testConfig(), set)
	return rt
}

func pushEvent(t *testing.T, project string) *webhook.Event {
	t.Helper()
	ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: project, Ref: "refs/heads/main"},
		[]byte(`{"object_kind":"push","ref":"refs/heads/main"}`), "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func enqueue(t *testing.T, rt *Runtime, ev *webhook.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rt.Enqueue(ctx, ev); err != nil {
		t.Fatal(err)
	}
}

// streamsDrained waits until both streams are empty: every event fanned out
// and every delivery settled.
func streamsDrained(t *testing.T, rt *Runtime) {
	t.Helper()
	c := rt.store.Client()
	k := rt.store.Keys()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev, _ := c.XLen(context.Background(), k.Events(0)).Result()
		dl, _ := c.XLen(context.Background(), k.Ready(0)).Result()
		if ev == 0 && dl == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("streams not drained: %d events, %d deliveries left", ev, dl)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRuntimeDeliversWithGitLabHeaders(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	srv, got := receiver(t, http.StatusOK)
	h := pushHook(t, 7, "", "acme")
	h.URL, h.Token = srv.URL+"/hook/{secret}", "s3cret-token"
	h.URLVariables = map[string]string{"secret": "abc"}
	h.CustomHeaders = map[string]string{"X-Team": "platform"}
	rt := newRuntime(t, redis.URL, "c1", h)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })

	ev := pushEvent(t, "acme/api")
	enqueue(t, rt, ev)
	r := next(t, got)
	want := map[string]string{
		"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "s3cret-token", "X-Gitlab-Instance": "https://forge.example.com",
		"User-Agent": "GitLab/18.6.0", "Content-Type": "application/json", "X-Gitlab-Event-Uuid": ev.Chain,
		"Idempotency-Key": webhook.IdempotencyKey(ev.ID, 7), "X-Team": "platform",
	}
	for k, v := range want {
		if r.header.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, r.header.Get(k), v)
		}
	}
	if r.header.Get("X-Gitlab-Webhook-Uuid") == "" {
		t.Error("X-Gitlab-Webhook-UUID missing")
	}
	if r.body != string(ev.Body) {
		t.Errorf("body = %s", r.body)
	}
	streamsDrained(t, rt)
	none(t, got, 300*time.Millisecond)
}

func TestRuntimeFailedDeliveryIsSettledNotRepeated(t *testing.T) {
	t.Parallel()
	srv, got := receiver(t, http.StatusInternalServerError)
	rt := startWith(t, testConfig(), hookTo(t, 1, "acme/api", srv.URL))
	enqueue(t, rt, pushEvent(t, "acme/api"))
	next(t, got)
	streamsDrained(t, rt)
	none(t, got, 500*time.Millisecond) // max_attempts 1: GitLab's one attempt
	if st, _ := rt.Stats(context.Background()); st.DeadLetters != 1 {
		t.Fatalf("%d dead letters, want the failed delivery", st.DeadLetters)
	}
}

func TestRuntimeClaimsWorkOfADeadConsumer(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	srv, got := receiver(t, http.StatusOK)
	h := pushHook(t, 1, "acme/api", "")
	h.URL = srv.URL
	// The dead process: queued an event, fanned it out, took the delivery
	// and died before sending it.
	dead := newRuntime(t, redis.URL, "dead", h)
	ev := pushEvent(t, "acme/api")
	ctx := context.Background()
	if err := dead.store.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	enqueue(t, dead, ev)
	msgs, err := dead.store.Queue().ReadEvents(ctx, 0, "dead", ">", 10, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("read events: %v %d", err, len(msgs))
	}
	if err := dead.fan.FanOut(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if d, err := dead.store.Queue().ReadDeliveries(ctx, 0, "dead", ">", 10, time.Second); err != nil || len(d) != 1 {
		t.Fatalf("read deliveries: %v %d", err, len(d))
	}

	alive := newRuntime(t, redis.URL, "alive", h)
	cfg := testConfig()
	cfg.Lease = 2500 * time.Millisecond
	alive.Configure(cfg, alive.Hooks())
	start := time.Now()
	if err := alive.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = alive.Close(time.Second) })
	r := next(t, got)
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("claimed after %s: before the lease ran out", waited)
	}
	if r.header.Get("Idempotency-Key") != webhook.IdempotencyKey(ev.ID, 1) {
		t.Errorf("recovered delivery has another Idempotency-Key")
	}
	streamsDrained(t, alive)
	none(t, got, 300*time.Millisecond)
}

func TestRuntimeRereadsItsOwnPendingWorkAtOnce(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	srv, got := receiver(t, http.StatusOK)
	h := pushHook(t, 1, "acme/api", "")
	h.URL = srv.URL
	// A previous run of this same process read the event and crashed.
	before := newRuntime(t, redis.URL, "me", h)
	ctx := context.Background()
	if err := before.store.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	enqueue(t, before, pushEvent(t, "acme/api"))
	if msgs, err := before.store.Queue().ReadEvents(ctx, 0, "me", ">", 10, time.Second); err != nil || len(msgs) != 1 {
		t.Fatalf("read: %v %d", err, len(msgs))
	}
	after := newRuntime(t, redis.URL, "me", h)
	cfg := testConfig()
	cfg.Lease, cfg.ClaimInterval = time.Hour, time.Hour // only the own-pending read can deliver it
	after.Configure(cfg, after.Hooks())
	if err := after.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = after.Close(time.Second) })
	next(t, got)
	streamsDrained(t, after)
}

func TestRuntimeSurvivesLostConsumerGroup(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	srv, got := receiver(t, http.StatusOK)
	rt := startOn(t, redis.URL, testConfig(), hookTo(t, 1, "acme/api", srv.URL))
	enqueue(t, rt, pushEvent(t, "acme/api"))
	next(t, got)

	redis.Restart() // no persistence: streams and groups are gone (NOGROUP)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rt.Enqueue(ctx, pushEvent(t, "acme/api"))
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("enqueue after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	next(t, got)
	streamsDrained(t, rt)
}

func TestRuntimeDropsDeliveriesOfRemovedHooks(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	srv, got := receiver(t, http.StatusOK)
	h := pushHook(t, 1, "acme/api", "")
	h.URL = srv.URL
	rt := newRuntime(t, redis.URL, "c1", h)
	ctx := context.Background()
	if err := rt.store.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	enqueue(t, rt, pushEvent(t, "acme/api"))
	msgs, _ := rt.store.Queue().ReadEvents(ctx, 0, "c1", ">", 10, time.Second)
	if err := rt.fan.FanOut(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	empty, _ := webhook.NewHookSet(nil)
	rt.Configure(testConfig(), empty) // the hook is deleted before its delivery goes out
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	streamsDrained(t, rt)
	none(t, got, 300*time.Millisecond)
}

// Not parallel: it counts a process-wide metric.
func TestRuntimeStartIsIdempotentAndCloseStops(t *testing.T) {
	redis := redistest.Start(t)
	srv, got := receiver(t, http.StatusOK)
	h := pushHook(t, 1, "acme/api", "")
	h.URL = srv.URL
	rt := newRuntime(t, redis.URL, "c1", h)
	running := testutil.ToFloat64(metrics.RuntimesRunning)
	for range 3 {
		if err := rt.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if d := testutil.ToFloat64(metrics.RuntimesRunning) - running; d != 1 {
		t.Fatalf("three Starts started %v runtimes", d)
	}
	const n = 20
	for range n {
		enqueue(t, rt, pushEvent(t, "acme/api"))
	}
	for range n {
		next(t, got)
	}
	streamsDrained(t, rt)
	none(t, got, 300*time.Millisecond)
	ctx := context.Background()
	cs, err := rt.store.Client().XInfoConsumers(ctx, rt.store.Keys().Ready(0), redisstore.GroupDeliver).Result()
	if err != nil || len(cs) != 1 {
		t.Fatalf("delivery consumers = %v, %v; want exactly one", cs, err)
	}
	if err := rt.Close(time.Second); err != nil {
		t.Fatal(err)
	}
	if d := testutil.ToFloat64(metrics.RuntimesRunning) - running; d != 0 {
		t.Fatalf("after Close %v runtimes still counted", d)
	}
	if err := rt.Start(); err == nil {
		t.Fatal("a closed runtime started again")
	}
}

func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
