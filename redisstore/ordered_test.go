package redisstore

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func newOrderedStore(t *testing.T, shards int) *Store {
	t.Helper()
	srv := redistest.Start(t)
	s, err := New(Options{URL: srv.URL, Namespace: "ordtest", Shards: shards})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Queue().EnsureGroups(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func orderedEvent(t *testing.T, chain string) *webhook.Event {
	t.Helper()
	ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: "acme/api", Ref: "refs/heads/main"},
		[]byte(`{"object_kind":"push"}`), chain, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// fanOutOrdered captures ev in its shard and fans it out to ordered hook
// hook, as the engine does: the delivery goes to the shard's inbox.
func fanOutOrdered(t *testing.T, s *Store, ev *webhook.Event, hook int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Queue().AddEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	sh := ShardOf(ev.Chain, s.Queue().Shards())
	msgs, err := s.Queue().ReadEvents(ctx, sh, "c", ">", 10, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("read %d events: %v", len(msgs), err)
	}
	f := Fanned{Shard: sh, StreamID: msgs[0].StreamID, EventID: ev.ID, Chain: ev.Chain, Checked: 1, At: ev.At,
		Ordered: []bool{true}, Deliveries: []webhook.Delivery{{EventID: ev.ID, HookID: hook, Trigger: "push",
			Chain: ev.Chain, At: ev.At, Attempt: 1, Shared: true}}}
	if err := s.Queue().FanOut(ctx, []Fanned{f}, ChainRule{Window: time.Minute, MaxHooks: 100}, HandOff{Consumer: "c", Max: 10}); err != nil {
		t.Fatal(err)
	}
}

// watermark is what the engine computes: marks, then the shards.
func watermark(t *testing.T, o *Ordered, now time.Time) int64 {
	t.Helper()
	ctx := context.Background()
	w, err := o.Marks(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	b, hold, err := o.Bound(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hold {
		return 0
	}
	return min(w, b, now.UnixMilli())
}

// An event not fanned out yet, in another shard, holds back the ordered
// deliveries captured after it; once its delivery is in the queue, it goes
// first.
func TestOrderedHeadWaitsForEarlierEventsOfOtherShards(t *testing.T) {
	s := newOrderedStore(t, 4)
	o, ctx := s.Ordered(), context.Background()
	var early, late *webhook.Event
	for late == nil || ShardOf(late.Chain, 4) == ShardOf(early.Chain, 4) {
		early = orderedEvent(t, "")
		late = orderedEvent(t, "")
	}
	// The later event is fanned out and moved to the queue; the earlier
	// one is still in its shard's events stream.
	if _, err := s.Queue().AddEvent(ctx, early); err != nil {
		t.Fatal(err)
	}
	fanOutOrdered(t, s, late, 7)
	msgs, err := o.ReadInbox(ctx)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("inbox: %v %d", err, len(msgs))
	}
	if added, late, err := o.MoveInbox(ctx, msgs); err != nil || added != 1 || late != 0 {
		t.Fatalf("move: %d added, %d late, %v", added, late, err)
	}
	now := time.Now().Add(time.Second)
	w := watermark(t, o, now)
	if w != early.At.UnixMilli() {
		t.Fatalf("watermark %d, want the unfanned event's capture time %d", w, early.At.UnixMilli())
	}
	heads, err := o.Take(ctx, []int{hookSlotOf(7)}, now, w, 10, "p1", time.Minute)
	if err != nil || len(heads) != 0 {
		t.Fatalf("took %v (%v) while an earlier event waits to be fanned out", heads, err)
	}
	// The earlier event is fanned out: its delivery waits in the inbox
	// (still holding the watermark), then moves, and is the head.
	sh := ShardOf(early.Chain, 4)
	ev, err := s.Queue().ReadEvents(ctx, sh, "c", ">", 10, 0)
	if err != nil || len(ev) != 1 {
		t.Fatal(err)
	}
	f := Fanned{Shard: sh, StreamID: ev[0].StreamID, EventID: early.ID, Chain: early.Chain, Checked: 1, At: early.At,
		Ordered: []bool{true}, Deliveries: []webhook.Delivery{{EventID: early.ID, HookID: 7, Trigger: "push",
			Chain: early.Chain, At: early.At, Attempt: 1, Shared: true}}}
	if err := s.Queue().FanOut(ctx, []Fanned{f}, ChainRule{Window: time.Minute, MaxHooks: 100}, HandOff{}); err != nil {
		t.Fatal(err)
	}
	if w := watermark(t, o, now); w != early.At.UnixMilli() {
		t.Fatalf("watermark %d with the earlier delivery in the inbox, want %d", w, early.At.UnixMilli())
	}
	if msgs, err = o.ReadInbox(ctx); err != nil || len(msgs) != 1 {
		t.Fatal(err)
	}
	if _, _, err := o.MoveInbox(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	w = watermark(t, o, now)
	if w != now.UnixMilli() {
		t.Fatalf("watermark %d with nothing waiting, want now", w)
	}
	heads, err = o.Take(ctx, []int{hookSlotOf(7)}, now, w, 10, "p1", time.Minute)
	if err != nil || len(heads) != 1 || heads[0].Key != early.ID || string(heads[0].Delivery.Body) != `{"object_kind":"push"}` {
		t.Fatalf("took %+v (%v), want the earlier event with its payload", heads, err)
	}
	// Leased: nobody else takes it.
	if again, _ := o.Take(ctx, []int{hookSlotOf(7)}, now, w, 10, "p2", time.Minute); len(again) != 0 {
		t.Fatalf("a leased head was taken again: %+v", again)
	}
	st, err := o.Settle(ctx, &heads[0], OrderedSettle{Next: OrderedDone, Take: true, W: w, NewToken: "p1:next", Lease: time.Minute})
	if err != nil || st.Stale || st.Next == nil || st.Next.Key != late.ID {
		t.Fatalf("settled %+v (%v), want the later event leased next", st, err)
	}
	// Both payloads were released from the shards: the queue holds its own.
	for _, e := range []*webhook.Event{early, late} {
		if n, _ := s.Client().Exists(ctx, s.Keys().Payload(ShardOf(e.Chain, 4), e.ID)).Result(); n != 0 {
			t.Errorf("payload of %s still in its shard", e.ID)
		}
	}
}

// A process's capture mark holds back what was captured after it; an
// expired mark (a process dead for a lease) does not.
func TestOrderedCaptureMarks(t *testing.T) {
	s := newOrderedStore(t, 1)
	o, ctx := s.Ordered(), context.Background()
	now := time.Now()
	if w, err := o.Marks(ctx, now); err != nil || w != math.MaxInt64 {
		t.Fatalf("no marks: %d %v", w, err)
	}
	if err := o.PublishMark(ctx, "a", now.Add(-time.Second), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := o.PublishMark(ctx, "dead", now.Add(-time.Hour), now.Add(-time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	w, err := o.Marks(ctx, now)
	if err != nil || w != now.Add(-time.Second).UnixMilli() {
		t.Fatalf("marks: %d %v, want a's", w, err)
	}
	if n, _ := s.Client().HLen(ctx, s.Keys().CaptureMarks()).Result(); n != 1 {
		t.Errorf("%d marks kept, want the expired one forgotten", n)
	}
	ev := orderedEvent(t, "")
	if _, err := o.Add(ctx, 3, []OrderedEntry{{Key: ev.ID, Delivery: webhook.Delivery{EventID: ev.ID, HookID: 3,
		Trigger: "push", Chain: ev.Chain, At: ev.At, Attempt: 1, Body: []byte(`{}`)}}}); err != nil {
		t.Fatal(err)
	}
	if heads, _ := o.Take(ctx, []int{hookSlotOf(3)}, now, w, 1, "p", time.Minute); len(heads) != 0 {
		t.Fatalf("took a head captured after a live process's mark: %+v", heads)
	}
	if heads, _ := o.Take(ctx, []int{hookSlotOf(3)}, now, now.Add(time.Second).UnixMilli(), 1, "p", time.Minute); len(heads) != 1 {
		t.Fatalf("took %+v, want the head once the mark passed it", heads)
	}
}

// An outcome recorded by a process whose lease ran out (another process
// took the head over) changes nothing.
func TestOrderedSettleIsFencedByTheLease(t *testing.T) {
	s := newOrderedStore(t, 1)
	o, ctx := s.Ordered(), context.Background()
	ev := orderedEvent(t, "")
	if _, err := o.Add(ctx, 5, []OrderedEntry{{Key: ev.ID, Delivery: webhook.Delivery{EventID: ev.ID, HookID: 5,
		Trigger: "push", Chain: ev.Chain, At: ev.At, Attempt: 1, Body: []byte(`{}`)}}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w := now.Add(time.Second).UnixMilli()
	first, err := o.Take(ctx, []int{hookSlotOf(5)}, now, w, 1, "p1", 50*time.Millisecond)
	if err != nil || len(first) != 1 {
		t.Fatal(err)
	}
	var second []Head
	for deadline := time.Now().Add(5 * time.Second); len(second) == 0 && time.Now().Before(deadline); {
		second, _ = o.Take(ctx, []int{hookSlotOf(5)}, time.Now(), w, 1, "p2", time.Minute)
	}
	if len(second) != 1 {
		t.Fatal("the head was not taken over after its lease")
	}
	st, err := o.Settle(ctx, &first[0], OrderedSettle{Next: OrderedDone, Lease: time.Minute})
	if err != nil || !st.Stale {
		t.Fatalf("the first process's late outcome: %+v %v, want stale", st, err)
	}
	if n, _ := s.Client().ZCard(ctx, s.Keys().Ordered(5)).Result(); n != 1 {
		t.Fatalf("queue has %d, want the head still there", n)
	}
	if st, err := o.Settle(ctx, &second[0], OrderedSettle{Next: OrderedDone, Lease: time.Minute}); err != nil || st.Stale {
		t.Fatalf("the lease holder's outcome: %+v %v", st, err)
	}
}
