package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/engine/tracing"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// A delivery whose work context has ended (a shutdown aborted the work) is
// neither sent nor settled: it stays pending in Redis for recovery, and
// says so in the log and in deliveries_total{result="aborted"}.
func TestDeliverAfterTheWorkEndedLeavesItPending(t *testing.T) {
	srv, hits := countingServer(t, ok)
	st, err := redisstore.New(redisstore.Options{URL: redistest.Start(t).URL, Namespace: "aborted"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	q := st.Queue()
	if err := q.EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	ev := &webhook.Event{ID: "ev1", Trigger: "push", Project: "acme/api", Chain: "ev1", At: time.Now(), Body: []byte(`{}`)}
	if _, err := q.AddEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	evs, err := q.ReadEvents(ctx, 0, "c1", ">", 1, time.Second)
	if err != nil || len(evs) != 1 {
		t.Fatalf("reading the event: %v %v", evs, err)
	}
	f := []redisstore.Fanned{{Shard: 0, StreamID: evs[0].StreamID, EventID: ev.ID, Chain: ev.Chain,
		Deliveries: []webhook.Delivery{{EventID: ev.ID, HookID: 7, Trigger: "push", Chain: ev.Chain, At: ev.At, Attempt: 1, Shared: true}}}}
	if err := q.FanOut(ctx, f, redisstore.ChainRule{Window: time.Minute, MaxHooks: 100}, redisstore.HandOff{}); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.ReadDeliveries(ctx, 0, "c1", ">", 1, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("reading the delivery: %v %v", msgs, err)
	}

	hook := &webhook.Hook{ID: 7, Name: "h", Project: "acme/api", URL: srv.URL, EnableSSLVerification: true}
	hook.Triggers.Add(gitlab.Push)
	set, err := webhook.NewHookSet([]*webhook.Hook{hook})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	d := New(Store{Queue: q, Health: st.Health(), Legacy: st.Legacy()}, "c1", zap.New(core),
		func() *webhook.HookSet { return set }, hooklog.New(st.Log()), new(tracing.Spans))
	d.Configure(Config{Send: *localSend(), Workers: 1, Lease: time.Minute, Retry: RetryPolicy{MaxAttempts: 1, MaxAge: time.Hour},
		Health: DefaultHealthPolicy, HookConcurrency: 1})
	work, abort := context.WithCancel(ctx)
	abort()
	before := testutil.ToFloat64(metrics.Deliveries.WithLabelValues("aborted"))

	d.deliver(work, &msgs[0], func() {})

	if n := hits.Load(); n != 0 {
		t.Errorf("the receiver got %d requests after the work ended", n)
	}
	if got := testutil.ToFloat64(metrics.Deliveries.WithLabelValues("aborted")) - before; got != 1 {
		t.Errorf("deliveries_total{result=aborted} rose by %v, want 1", got)
	}
	if n := logs.FilterMessageSnippet("stays queued").FilterField(zap.Int64("hook_id", 7)).Len(); n != 1 {
		t.Errorf("%d log entries say the delivery stays queued, want 1: %v", n, logs.All())
	}
	pending, err := st.Client().XPendingExt(ctx, &redis.XPendingExtArgs{Stream: st.Keys().Ready(0), Group: redisstore.GroupDeliver,
		Start: "-", End: "+", Count: 10}).Result()
	if err != nil || len(pending) != 1 || pending[0].ID != msgs[0].StreamID || pending[0].Consumer != "c1" {
		t.Fatalf("the delivery is not pending for recovery: %+v %v", pending, err)
	}
}
