package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// The same delivery twice (an event added twice) deferred twice is one
// member of the schedule, holding one reference to the payload.
func TestTwiceDeferredDeliveryHoldsItsPayloadOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s, err := New(Options{URL: srv.URL, Namespace: "df"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	d := webhook.Delivery{EventID: "ev-1", HookID: 1, Trigger: "push", Chain: "ev-1", At: time.UnixMilli(1000),
		Body: []byte(`{"a":1}`), Shared: true, Attempt: 1}
	if err := s.Queue().AddDeliveries(ctx, []webhook.Delivery{d, d}); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Queue().ReadDeliveries(ctx, 0, "c", ">", 10, time.Second)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("read: %v, %d", err, len(msgs))
	}
	for i := range msgs {
		if ok, err := s.Queue().Defer(ctx, &msgs[i], time.Now().Add(time.Hour)); err != nil || !ok {
			t.Fatalf("defer: %v, %v", ok, err)
		}
	}
	members, _ := s.c.rdb.ZCard(ctx, s.c.keys.Schedule(0)).Result()
	refs, _ := s.c.rdb.HGet(ctx, s.c.keys.Refs(0), "ev-1").Result()
	if members != 1 || refs != "1" {
		t.Fatalf("%d scheduled, refs %q; want one member holding one reference", members, refs)
	}
	if n, _, err := s.Queue().MoveDue(ctx, time.Now().Add(2*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("move: %d, %v", n, err)
	}
	msgs, err = s.Queue().ReadDeliveries(ctx, 0, "c", ">", 10, time.Second)
	if err != nil || len(msgs) != 1 || string(msgs[0].Delivery.Body) != `{"a":1}` {
		t.Fatalf("read the moved delivery: %v, %+v", err, msgs)
	}
	if err := s.Queue().SettleDeliveries(ctx, &msgs[0]); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.c.rdb.Exists(ctx, s.c.keys.Payload(0, "ev-1"), s.c.keys.Refs(0)).Result(); n != 0 {
		t.Errorf("payload or count left once the delivery settled")
	}
}
