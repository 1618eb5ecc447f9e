package refcheck_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/internal/refcheck"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// The audit finds each kind of damage it exists for, on a namespace that
// is otherwise sound.
func TestAuditFindsOrphansDanglingReferencesAndWrongCounts(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s, err := redisstore.New(redisstore.Options{URL: srv.URL, Namespace: "rc", Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	c, k := s.Client(), s.Keys()
	var evs []*webhook.Event
	for range 4 {
		ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: "acme/api", Ref: "refs/heads/main"}, []byte(`{"a":1}`), "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Queue().AddEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	// A delivery of the shared payload of evs[0], queued beside its event.
	if err := s.Queue().AddDeliveries(ctx, []webhook.Delivery{{EventID: evs[0].ID, HookID: 1, Trigger: "push", Chain: evs[0].Chain,
		At: time.Now(), Body: evs[0].Body, Shared: true, Attempt: 1}}); err != nil {
		t.Fatal(err)
	}
	r := refcheck.Assert(t, c, "rc")
	if r.Payloads != 4 || r.Holders[refcheck.KindEvent] != 4 || r.Holders[refcheck.KindReady] != 1 || r.Held[evs[0].ID] != 2 {
		t.Fatalf("sound namespace: %+v", r)
	}

	shardOf := func(ev *webhook.Event) int { return redisstore.ShardOf(ev.Chain, 2) }
	c.Del(ctx, k.Payload(shardOf(evs[1]), evs[1].ID))          // freed while held
	c.Set(ctx, k.Payload(0, "nobody-holds-this"), "{}", 0)     // never freed
	c.HIncrBy(ctx, k.Refs(shardOf(evs[2])), evs[2].ID, 1)      // counted twice
	c.HSet(ctx, k.Refs(shardOf(evs[3])), "no-such-event", "1") // a count without payload or holder
	r, err = refcheck.Check(ctx, c, "rc")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"event " + evs[1].ID + " held by event 1, but its payload is gone",
		"orphan payload of event nobody-holds-this",
		"event " + evs[2].ID + `: refs says "2", held by event 1`,
		`event no-such-event: refs says "1", held by nobody`,
	}
	all := strings.Join(r.Problems, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("problem %q not reported; got:\n%s", w, all)
		}
	}
	if len(r.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(r.Problems), len(want), all)
	}
}
