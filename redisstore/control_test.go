package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// The snapshot's oldest waiting delivery counts first attempts on the
// ready stream and those held back in the schedule (a hook at its cap),
// by their capture time, but not retries.
func TestSnapshotOldestWaitingDelivery(t *testing.T) {
	t.Parallel()
	s := newLogStore(t) // a store on a server of its own
	ctx := context.Background()
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(time.Now().UnixMilli()) // capture times are kept in ms
	oldest := func() time.Duration {
		t.Helper()
		snap, err := s.Control().Snapshot(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		return snap.OldestReady
	}
	if got := oldest(); got != 0 {
		t.Fatalf("empty queues: oldest %s, want 0", got)
	}
	delivery := func(ev string, age time.Duration, attempt int) webhook.Delivery {
		return webhook.Delivery{EventID: ev, HookID: 1, Trigger: "push", Chain: ev, At: now.Add(-age),
			Body: []byte(`{}`), Attempt: attempt}
	}
	if err := s.Queue().AddDeliveries(ctx, []webhook.Delivery{delivery("held", time.Minute, 1),
		delivery("retry", time.Hour, 2)}); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Queue().ReadDeliveries(ctx, 0, "c", ">", 10, time.Second)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("read: %v, %d", err, len(msgs))
	}
	for i := range msgs { // held back, as a hook at its cap holds them
		if ok, err := s.Queue().Defer(ctx, &msgs[i], now.Add(time.Hour)); err != nil || !ok {
			t.Fatalf("defer: %v, %v", ok, err)
		}
	}
	if got := oldest(); got != time.Minute {
		t.Errorf("a first attempt held in the schedule for a minute: oldest %s, want 1m0s (the retry does not count)", got)
	}
	if err := s.Queue().AddDeliveries(ctx, []webhook.Delivery{delivery("ready", 2*time.Minute, 1)}); err != nil {
		t.Fatal(err)
	}
	if got := oldest(); got != 2*time.Minute {
		t.Errorf("with an older one on the ready stream: oldest %s, want 2m0s", got)
	}
}
