package recovery

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// The mover waits until the next scheduled delivery is due (not a fixed
// second), then puts it back on the ready stream.
func TestMoveStepWaitsForTheNextDueDelivery(t *testing.T) {
	ctx := context.Background()
	store, err := redisstore.New(redisstore.Options{URL: redistest.Start(t).URL, Namespace: "test", Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	d := webhook.Delivery{EventID: "ev", HookID: 1, Trigger: "push", At: time.Now(), Body: []byte(`{}`), Attempt: 1}
	if err := store.Queue().AddDeliveries(ctx, []webhook.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	msgs, err := store.Queue().ReadDeliveries(ctx, 0, "c1", ">", 10, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("read %d deliveries: %v", len(msgs), err)
	}
	due := time.Now().Add(300 * time.Millisecond)
	if _, err := store.Queue().Defer(ctx, &msgs[0], due); err != nil {
		t.Fatal(err)
	}
	r := New(Store{Queue: store.Queue()}, "c1", zaptest.NewLogger(t), nil, nil, nil)
	wait, err := r.MoveStep(ctx)
	if err != nil || wait <= 0 || wait > 300*time.Millisecond {
		t.Fatalf("before the delivery is due: wait %v (%v), want at most 300ms", wait, err)
	}
	time.Sleep(time.Until(due) + 10*time.Millisecond)
	if wait, err = r.MoveStep(ctx); err != nil || wait != 0 {
		t.Fatalf("moving the due delivery: wait %v (%v), want none", wait, err)
	}
	again, err := store.Queue().ReadDeliveries(ctx, 0, "c1", ">", 10, time.Second)
	if err != nil || len(again) != 1 || again[0].Delivery.EventID != "ev" {
		t.Fatalf("after the move, read %v (%v), want the delivery again", again, err)
	}
	// Nothing is scheduled now: the step waits until this process
	// schedules a delivery, and returns then, long before idleMove.
	for len(store.Queue().Scheduled()) > 0 {
		<-store.Queue().Scheduled() // the signal of the first Defer
	}
	var deferred atomic.Bool
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		if _, err := r.MoveStep(ctx); err != nil {
			t.Error(err)
		}
		if !deferred.Load() {
			t.Error("the step on an empty schedule returned before anything was scheduled")
		}
	}()
	deferred.Store(true)
	if _, err := store.Queue().Defer(ctx, &again[0], time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	<-done
	if took := time.Since(start); took >= idleMove {
		t.Errorf("the step waited %v: scheduling did not wake it", took)
	}
}
