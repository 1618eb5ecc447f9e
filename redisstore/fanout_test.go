package redisstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// fanOutOne captures ev and fans it out to hooks (checked in its chain),
// plus one chat message (not checked), as the engine does; it returns the
// event's fan-out.
func fanOutOne(t *testing.T, s *Store, ev *webhook.Event, hooks ...int64) Fanned {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Queue().AddEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Queue().ReadEvents(ctx, 0, "c", ">", 1, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("read %d events: %v", len(msgs), err)
	}
	f := Fanned{Shard: 0, StreamID: msgs[0].StreamID, EventID: ev.ID, Chain: ev.Chain, Checked: len(hooks)}
	for _, h := range hooks {
		f.Deliveries = append(f.Deliveries, webhook.Delivery{EventID: ev.ID, HookID: h, Trigger: "push",
			Chain: ev.Chain, At: ev.At, Attempt: 1, Shared: true})
	}
	f.Deliveries = append(f.Deliveries, webhook.Delivery{EventID: ev.ID, HookID: 99, Trigger: "push",
		Chain: ev.Chain, At: ev.At, Attempt: 1, Body: []byte(`{"text":"chat"}`)})
	fs := []Fanned{f}
	if err := s.Queue().FanOut(ctx, fs, ChainRule{Window: 30 * time.Minute, MaxHooks: 100}, HandOff{}); err != nil {
		t.Fatal(err)
	}
	return fs[0]
}

// queuedHooks reads the ready stream's deliveries of event id (for a
// consumer of its own) and returns their hooks.
func queuedHooks(t *testing.T, s *Store, id string) []int64 {
	t.Helper()
	ds, err := s.Queue().ReadDeliveries(context.Background(), 0, "reader-"+id, ">", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var hooks []int64
	for _, d := range ds {
		if d.Err != nil {
			t.Fatalf("delivery %s: %v", d.StreamID, d.Err)
		}
		if d.Delivery.EventID == id {
			hooks = append(hooks, d.Delivery.HookID)
		}
	}
	return hooks
}

// TestFanOutRunsTheRecursionGuard: the fan-out script queues only the
// deliveries the event's chain allows (a hook the chain already triggered
// through another event is refused; chat messages are not checked), and
// the shared payload is held by exactly the deliveries queued (a lone one
// carries it inline, and nothing is stored): an event whose every hook is
// refused leaves no payload behind.
func TestFanOutRunsTheRecursionGuard(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	event := func(chain string) *webhook.Event {
		ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: "acme/api", Ref: "refs/heads/main"},
			[]byte(`{"ref":"refs/heads/main"}`), chain, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	refs := func(id string) (int64, bool) {
		n, _ := s.c.rdb.HGet(ctx, s.c.keys.Refs(0), id).Int64()
		exists := s.c.rdb.Exists(ctx, s.c.keys.Payload(0, id)).Val() == 1
		return n, exists
	}

	first := event("")
	if f := fanOutOne(t, s, first, 1, 2); f.Already || !slices.Equal(f.Verdicts, []ChainVerdict{A, A}) {
		t.Fatalf("first event: already %v, verdicts %v, want both allowed", f.Already, f.Verdicts)
	}
	if got := queuedHooks(t, s, first.ID); !slices.Equal(got, []int64{1, 2, 99}) {
		t.Errorf("first event queued hooks %v, want [1 2 99]", got)
	}
	if n, ok := refs(first.ID); n != 2 || !ok {
		t.Errorf("first event's payload: %d references (stored %v), want 2 (its two hook deliveries)", n, ok)
	}

	// Called back by hook 1's receiver: same chain, hooks 1 and 3.
	second := event(first.Chain)
	if f := fanOutOne(t, s, second, 1, 3); !slices.Equal(f.Verdicts, []ChainVerdict{R, A}) {
		t.Fatalf("second event's verdicts %v, want hook 1 refused, hook 3 allowed", f.Verdicts)
	}
	if got := queuedHooks(t, s, second.ID); !slices.Equal(got, []int64{3, 99}) {
		t.Errorf("second event queued hooks %v, want [3 99]", got)
	}
	if n, ok := refs(second.ID); n != 0 || ok {
		t.Errorf("second event's payload: %d references (stored %v), want none: its lone delivery carries it", n, ok)
	}

	third := event(first.Chain)
	if f := fanOutOne(t, s, third, 2, 3); !slices.Equal(f.Verdicts, []ChainVerdict{R, R}) {
		t.Fatalf("third event's verdicts %v, want both refused", f.Verdicts)
	}
	if got := queuedHooks(t, s, third.ID); !slices.Equal(got, []int64{99}) {
		t.Errorf("third event queued hooks %v, want only the chat message", got)
	}
	if n, ok := refs(third.ID); n != 0 || ok {
		t.Errorf("third event's payload: %d references (stored %v), want it gone", n, ok)
	}
}

// TestFanOutOfASettledEventQueuesNothing: an event another consumer fanned
// out already is neither queued again nor registered again in its chain.
func TestFanOutOfASettledEventQueuesNothing(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: "acme/api", Ref: "refs/heads/main"},
		[]byte(`{}`), "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := fanOutOne(t, s, ev, 1)
	again := []Fanned{{Shard: 0, StreamID: f.StreamID, EventID: ev.ID, Chain: ev.Chain, Checked: 1,
		Deliveries: f.Deliveries[:1]}}
	if err := s.Queue().FanOut(ctx, again, ChainRule{Window: 30 * time.Minute, MaxHooks: 100}, HandOff{}); err != nil {
		t.Fatal(err)
	}
	if !again[0].Already || len(again[0].Verdicts) != 0 {
		t.Fatalf("second fan-out: already %v, verdicts %v", again[0].Already, again[0].Verdicts)
	}
	if got := queuedHooks(t, s, ev.ID); !slices.Equal(got, []int64{1, 99}) {
		t.Errorf("queued hooks %v, want [1 99] once", got)
	}
}

// TestFanOutHandsDeliveriesToIdleWorkers: the fan-out takes at most the
// room it was given of the deliveries it queues, for the workers'
// consumer, with their payload; they are pending for that consumer, and a
// read by another consumer gets only the rest. With older deliveries
// waiting, those go first, their payloads read as well.
func TestFanOutHandsDeliveriesToIdleWorkers(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	fanOut := func(body string, ho HandOff, hooks ...int64) Fanned {
		t.Helper()
		ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: "acme/api", Ref: "refs/heads/main"},
			[]byte(body), "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Queue().AddEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		msgs, err := s.Queue().ReadEvents(ctx, 0, "c", ">", 1, 0)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("read %d events: %v", len(msgs), err)
		}
		f := Fanned{Shard: 0, StreamID: msgs[0].StreamID, EventID: ev.ID, Chain: ev.Chain, Checked: len(hooks)}
		for _, h := range hooks {
			f.Deliveries = append(f.Deliveries, webhook.Delivery{EventID: ev.ID, HookID: h, Trigger: "push",
				Chain: ev.Chain, At: ev.At, Attempt: 1, Shared: true})
		}
		fs := []Fanned{f}
		if err := s.Queue().FanOut(ctx, fs, ChainRule{Window: 30 * time.Minute, MaxHooks: 100}, ho); err != nil {
			t.Fatal(err)
		}
		return fs[0]
	}
	pending := func(consumer string) int64 {
		t.Helper()
		p, err := s.c.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.c.keys.Ready(0), Group: GroupDeliver,
			Start: "-", End: "+", Count: 100, Consumer: consumer}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return int64(len(p))
	}

	f := fanOut(`{"n":1}`, HandOff{Consumer: "w", Max: 1}, 1, 2)
	if len(f.Taken) != 1 || f.Taken[0].Err != nil || f.Taken[0].Delivery.HookID != 1 ||
		string(f.Taken[0].Delivery.Body) != `{"n":1}` {
		t.Fatalf("taken %+v, want hook 1's delivery with its payload", f.Taken)
	}
	if n := pending("w"); n != 1 {
		t.Errorf("%d deliveries pending for the workers' consumer, want 1", n)
	}
	if got := queuedHooks(t, s, f.EventID); !slices.Equal(got, []int64{2}) {
		t.Errorf("another consumer read hooks %v, want [2]", got)
	}

	old := fanOut(`{"n":2}`, HandOff{}, 3) // waits in the stream
	f = fanOut(`{"n":3}`, HandOff{Consumer: "w", Max: 5}, 4)
	if len(f.Taken) != 1 || f.Taken[0].Delivery.EventID != old.EventID || string(f.Taken[0].Delivery.Body) != `{"n":2}` {
		t.Fatalf("taken %+v, want the older delivery (hook 3) with its payload", f.Taken)
	}
	if got := queuedHooks(t, s, f.EventID); !slices.Equal(got, []int64{4}) {
		t.Errorf("another consumer read hooks %v, want [4]", got)
	}
}

// TestAddEventForTakesItForTheFanOut: a capture may take the event it
// stores for its process's fan-out, in the same script: it is pending for
// that consumer with its body as captured, and no other read gets it.
// With older events waiting, the oldest is taken instead (without body).
// Before the fan-out's group exists, the event is stored all the same.
func TestAddEventForTakesItForTheFanOut(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	event := func(body string) *webhook.Event {
		ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: "acme/api", Ref: "refs/heads/main"},
			[]byte(body), "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	early := event(`{"n":0}`)
	if _, taken, err := s.Queue().AddEventFor(ctx, early, "f1"); err != nil || taken != nil {
		t.Fatalf("AddEventFor without the group: taken %+v, error %v; want it stored, not taken", taken, err)
	}
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := s.Queue().ReadEvents(ctx, 0, "other", ">", 10, 0); len(msgs) != 1 || msgs[0].Event.ID != early.ID {
		t.Fatalf("read %+v, want the event stored before the group", msgs)
	}
	first := event(`{"n":1}`)
	_, taken, err := s.Queue().AddEventFor(ctx, first, "f1")
	if err != nil {
		t.Fatal(err)
	}
	if taken == nil || taken.Err != nil || taken.Event.ID != first.ID || taken.Event.Project != "acme/api" ||
		string(taken.Event.Body) != `{"n":1}` {
		t.Fatalf("taken %+v, want the event with its body", taken)
	}
	if msgs, _ := s.Queue().ReadEvents(ctx, 0, "other", ">", 10, 0); len(msgs) != 0 {
		t.Errorf("another consumer read %d events, want none", len(msgs))
	}
	mine, _ := s.Queue().ReadEvents(ctx, 0, "f1", "0", 10, 0)
	if len(mine) != 1 || mine[0].StreamID != taken.StreamID {
		t.Errorf("pending for the fan-out's consumer: %+v, want the event taken", mine)
	}

	waiting := event(`{"n":2}`)
	if _, err := s.Queue().AddEvent(ctx, waiting); err != nil {
		t.Fatal(err)
	}
	_, taken, err = s.Queue().AddEventFor(ctx, event(`{"n":3}`), "f1")
	if err != nil {
		t.Fatal(err)
	}
	if taken == nil || taken.Event.ID != waiting.ID || taken.Event.Body != nil {
		t.Fatalf("taken %+v, want the older event, without its body", taken)
	}
}
