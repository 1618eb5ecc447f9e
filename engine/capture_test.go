package engine

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/internal/refcheck"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// TestCapturedEventsSkipTheEventsStream: while the fan-out runs and knows
// the hooks, a captured event's deliveries are queued in the capture's own
// call and the event never enters the events stream; an event no hook
// takes writes nothing; every delivery arrives and no payload is left.
func TestCapturedEventsSkipTheEventsStream(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rec := newRecorder(t, always(http.StatusOK))
	rt := startSharded(t, redisstore.Options{URL: srv.URL}, testConfig(),
		hookTo(t, 1, "acme/api", rec.URL), hookTo(t, 2, "acme/web", rec.URL), hookTo(t, 3, "acme/web", rec.URL))
	deadline := time.Now().Add(10 * time.Second)
	for !(rt.fan.Running() && rt.dyn.ready.Load()) {
		if time.Now().After(deadline) {
			t.Fatal("the fan-out did not start within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx := context.Background()
	c, k := rt.store.Client(), rt.store.Keys()
	for _, project := range []string{"acme/none", "acme/api", "acme/web"} {
		if err := rt.Enqueue(ctx, eventIn(t, project, pushBody(project), 0, 1)); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitTotal(t, 3)
	settled(t, rt)
	events, err := c.XInfoStream(ctx, k.Events(0)).Result()
	if err != nil {
		t.Fatal(err)
	}
	ready, err := c.XInfoStream(ctx, k.Ready(0)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if events.EntriesAdded != 0 || ready.EntriesAdded != 3 {
		t.Errorf("entries added: %d to the events stream, %d to the ready stream; want 0 and 3 (one for acme/api, two for acme/web)",
			events.EntriesAdded, ready.EntriesAdded)
	}
	refcheck.Assert(t, c, k.Namespace)
}
