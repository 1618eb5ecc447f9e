package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// TestUnreachableTellsConnectionErrorsFromAnswers: the engine stops waiting
// for Redis only on errors that say it could not be reached, not on errors
// Redis answered with or a caller that gave up.
func TestUnreachableTellsConnectionErrorsFromAnswers(t *testing.T) {
	srv := redistest.Start(t)
	s, err := New(Options{URL: srv.URL, Namespace: "unreach"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	ev := &webhook.Event{ID: "e", Trigger: "push", At: time.Now(), Body: []byte(`{}`)}

	if err := s.rdb.Set(ctx, s.keys.Events(), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, answered := s.AddEvent(ctx, ev) // WRONGTYPE
	if answered == nil || Unreachable(answered) {
		t.Errorf("Unreachable(%v) = true, want false (redis answered)", answered)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, gaveUp := s.AddEvent(cctx, ev); gaveUp == nil || Unreachable(gaveUp) {
		t.Errorf("Unreachable(%v) = true, want false (the caller gave up)", gaveUp)
	}
	if err := s.EventsReachable(ctx); err != nil {
		t.Errorf("EventsReachable with redis up: %v", err)
	}

	srv.Stop()
	for _, timeout := range []time.Duration{100 * time.Millisecond, 5 * time.Second} {
		tctx, cancel := context.WithTimeout(ctx, timeout)
		_, refused := s.AddEvent(tctx, ev)
		cancel()
		if !Unreachable(refused) {
			t.Errorf("Unreachable(%v) = false with redis killed, want true", refused)
		}
		if !Unreachable(fmt.Errorf("wrapped: %w", refused)) {
			t.Errorf("Unreachable of a wrapped %v = false", refused)
		}
	}
	tctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := s.EventsReachable(tctx); err == nil {
		t.Error("EventsReachable with redis killed succeeded")
	}
}
