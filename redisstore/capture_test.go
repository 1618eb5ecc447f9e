package redisstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// capturedEvent is an event of a fresh chain with a 1 KB-ish payload.
func capturedEvent(t *testing.T) *webhook.Event {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	return &webhook.Event{ID: id, Chain: id, Trigger: "push", Project: "acme/api", Namespace: "acme",
		Ref: "refs/heads/main", At: time.Now(), Body: []byte(`{"object_kind":"push","ref":"refs/heads/main"}`)}
}

// capture fans ev out to hooks (checked in its chain) and chats (own
// bodies) as it is captured, taking up to take deliveries for consumer c.
func capture(t *testing.T, s *Store, ev *webhook.Event, take int, hooks []int64, chats ...string) *Captured {
	t.Helper()
	c := &Captured{Event: ev, Checked: len(hooks)}
	for _, h := range hooks {
		c.Deliveries = append(c.Deliveries, webhook.Delivery{EventID: ev.ID, HookID: h, Trigger: ev.Trigger,
			Chain: ev.Chain, At: ev.At, Attempt: 1, Shared: true})
	}
	for i, body := range chats {
		c.Deliveries = append(c.Deliveries, webhook.Delivery{EventID: ev.ID, HookID: 900 + int64(i),
			Trigger: ev.Trigger, Chain: ev.Chain, At: ev.At, Attempt: 1, Body: []byte(body)})
	}
	if err := s.Queue().Capture(context.Background(), c, ChainRule{Window: 30 * time.Minute, MaxHooks: 100},
		HandOff{Consumer: "c", Max: take}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCaptureQueuesWithoutTheEventsStream: a captured event's deliveries
// are queued in the capture's call; a lone delivery carries the payload
// inline (no payload key, no count), two or more share one stored payload
// counted once per delivery; chat messages keep their own bodies; the
// event never enters the events stream.
func TestCaptureQueuesWithoutTheEventsStream(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	k := s.c.keys
	for _, tc := range []struct {
		name   string
		hooks  []int64
		chats  []string
		shared bool
	}{
		{"one hook", []int64{1}, nil, false},
		{"one hook and a chat", []int64{1}, []string{`{"text":"pushed"}`}, false},
		{"three hooks", []int64{1, 2, 3}, nil, true},
		{"a chat alone", nil, []string{`{"text":"pushed"}`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := capturedEvent(t)
			c := capture(t, s, ev, 0, tc.hooks, tc.chats...)
			if want := slices.Repeat([]ChainVerdict{ChainAllowed}, len(tc.hooks)); !slices.Equal(c.Verdicts, want) {
				t.Errorf("verdicts %v, want %v", c.Verdicts, want)
			}
			stored := s.c.rdb.Exists(ctx, k.Payload(0, ev.ID)).Val() == 1
			refs, _ := s.c.rdb.HGet(ctx, k.Refs(0), ev.ID).Int()
			if stored != tc.shared || (tc.shared && refs != len(tc.hooks)) || (!tc.shared && refs != 0) {
				t.Errorf("payload stored %v with %d references, want stored %v with %d", stored, refs, tc.shared,
					map[bool]int{true: len(tc.hooks)}[tc.shared])
			}
			ds, err := s.Queue().ReadDeliveries(ctx, 0, "reader-"+ev.ID, ">", 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			var hooks []int64
			for _, d := range ds {
				if d.Err != nil || d.Delivery.EventID != ev.ID {
					t.Fatalf("delivery %+v", d)
				}
				hooks = append(hooks, d.Delivery.HookID)
				want := string(ev.Body)
				if d.Delivery.HookID >= 900 {
					want = tc.chats[d.Delivery.HookID-900]
				} else if d.Delivery.Shared != tc.shared {
					t.Errorf("hook %d's delivery shared = %v, want %v", d.Delivery.HookID, d.Delivery.Shared, tc.shared)
				}
				if string(d.Delivery.Body) != want {
					t.Errorf("hook %d's body %s, want %s", d.Delivery.HookID, d.Delivery.Body, want)
				}
			}
			if len(hooks) != len(tc.hooks)+len(tc.chats) {
				t.Errorf("%d deliveries queued (hooks %v), want %d", len(hooks), hooks, len(tc.hooks)+len(tc.chats))
			}
			if n := s.c.rdb.XLen(ctx, k.Events(0)).Val(); n != 0 {
				t.Errorf("%d entries in the events stream, want none", n)
			}
		})
	}
}

// TestCaptureChecksTheChain: a capture registers its hooks in its chain,
// as the fan-out does; a later event of the chain, captured or fanned out,
// does not trigger them again.
func TestCaptureChecksTheChain(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	root := capturedEvent(t)
	if c := capture(t, s, root, 0, []int64{1, 2}); !slices.Equal(c.Verdicts, []ChainVerdict{ChainAllowed, ChainAllowed}) {
		t.Fatalf("first event's verdicts %v", c.Verdicts)
	}
	second := capturedEvent(t)
	second.Chain = root.ID // caused by a webhook request of the chain
	c := capture(t, s, second, 0, []int64{1, 3})
	if !slices.Equal(c.Verdicts, []ChainVerdict{ChainRecursive, ChainAllowed}) {
		t.Errorf("second event's verdicts %v, want hook 1 refused", c.Verdicts)
	}
	third := capturedEvent(t)
	third.Chain = root.ID
	if f := fanOutOne(t, s, third, 3, 4); !slices.Equal(f.Verdicts, []ChainVerdict{ChainRecursive, ChainAllowed}) {
		t.Errorf("a fanned-out event of the chain: verdicts %v, want hook 3 refused", f.Verdicts)
	}
}

// TestCaptureHandsOff: a capture takes as many deliveries for a consumer
// as it queued, the oldest not yet handed out: its own come back with the
// payload the caller holds, without being read again; ones queued before
// by someone else come with theirs.
func TestCaptureHandsOff(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	older := capturedEvent(t)
	capture(t, s, older, 0, []int64{7, 8}) // queued, not taken: a shared payload
	ev := capturedEvent(t)
	c := capture(t, s, ev, 10, []int64{1, 2, 3})
	if len(c.Taken) != 3 {
		t.Fatalf("took %d deliveries, want 3 (as many as queued)", len(c.Taken))
	}
	var events []string
	for _, m := range c.Taken {
		want := older.Body
		if m.Delivery.EventID == ev.ID {
			want = ev.Body
		}
		events = append(events, m.Delivery.EventID)
		if m.Err != nil || string(m.Delivery.Body) != string(want) || !m.Delivery.Shared {
			t.Errorf("taken %+v, want body %s, shared", m, want)
		}
	}
	if !slices.Equal(events, []string{older.ID, older.ID, ev.ID}) {
		t.Errorf("took deliveries of %v, want the two older ones first", events)
	}
	pend, err := s.c.rdb.XPending(ctx, s.c.keys.Ready(0), GroupDeliver).Result()
	if err != nil || pend.Count != 3 || pend.Consumers["c"] != 3 {
		t.Errorf("pending %+v (%v), want the 3 taken, for c", pend, err)
	}
}

// TestCaptureOfOrderedHooks: a captured event's delivery to an ordered
// hook goes to its shard's ordered inbox, not the ready stream, and holds
// the stored payload, even when it is the event's only delivery (a queue
// that waits must not carry the payload inline); the unordered hook beside
// it shares the same payload and is the only one taken.
func TestCaptureOfOrderedHooks(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	k := s.c.keys
	for _, tc := range []struct {
		name    string
		ordered []bool
	}{
		{"an ordered hook alone", []bool{true}},
		{"an ordered and an unordered hook", []bool{true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := capturedEvent(t)
			c := &Captured{Event: ev, Checked: len(tc.ordered), Ordered: tc.ordered}
			for i := range tc.ordered {
				c.Deliveries = append(c.Deliveries, webhook.Delivery{EventID: ev.ID, HookID: int64(i + 1),
					Trigger: ev.Trigger, Chain: ev.Chain, At: ev.At, Attempt: 1, Shared: true})
			}
			if err := s.Queue().Capture(ctx, c, ChainRule{Window: 30 * time.Minute, MaxHooks: 100},
				HandOff{Consumer: "c", Max: 10}); err != nil {
				t.Fatal(err)
			}
			refs, _ := s.c.rdb.HGet(ctx, k.Refs(0), ev.ID).Int()
			if s.c.rdb.Exists(ctx, k.Payload(0, ev.ID)).Val() != 1 || refs != len(tc.ordered) {
				t.Errorf("payload stored %v with %d references, want stored with %d",
					s.c.rdb.Exists(ctx, k.Payload(0, ev.ID)).Val() == 1, refs, len(tc.ordered))
			}
			inbox, err := s.Ordered().ReadInbox(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var mine []InboxMsg
			for _, m := range inbox {
				if m.EventID == ev.ID {
					mine = append(mine, m)
				}
			}
			if len(mine) != 1 || mine[0].Delivery.HookID != 1 || string(mine[0].Delivery.Body) != string(ev.Body) {
				t.Fatalf("inbox holds %+v, want hook 1's delivery with the payload", mine)
			}
			var taken []int64
			for _, d := range c.Taken {
				taken = append(taken, d.Delivery.HookID)
			}
			if want := []int64{2}[:len(tc.ordered)-1]; !slices.Equal(taken, want) {
				t.Errorf("taken %v, want %v (the unordered hook's)", taken, want)
			}
		})
	}
}
