package engine

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// Two processes on one Redis share the deliveries; when one dies with work
// in hand, the other takes it over and nothing is lost.
func TestInstancesShareWorkAndSurviveOneDying(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	rcv := &keyReceiver{keys: map[string]int{}}
	slowish := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		rcv.ServeHTTP(w, r)
	})
	url := newServer(t, slowish)
	h := hookTo(t, 1, "acme/api", url)
	a := newRuntime(t, redis.URL, "instance-a", h)
	b := newRuntime(t, redis.URL, "instance-b", h)
	for _, rt := range []*Runtime{a, b} {
		if err := rt.Start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = b.Close(time.Second) })
	// Events come in through b (the capture side of any instance); a dies
	// halfway with work in hand, which stays pending for b to claim.
	accepted := burst(t, b, 300, func() { _ = a.Close(0) })
	allArrive(t, rcv, accepted)
	ctx := context.Background()
	cs, _ := b.store.Client().XInfoConsumers(ctx, b.store.Keys().Ready(0), "deliver").Result()
	served := 0
	for _, c := range cs {
		if c.Name == "instance-a" || c.Name == "instance-b" {
			served++
		}
	}
	if served != 2 {
		t.Errorf("consumers %v: both instances should have taken work", cs)
	}
}

func TestPauseStopsEveryInstance(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	rcv := newScripted(t, 200)
	h := hookTo(t, 1, "acme/api", rcv.URL)
	a := newRuntime(t, redis.URL, "instance-a", h)
	b := newRuntime(t, redis.URL, "instance-b", h)
	for _, rt := range []*Runtime{a, b} {
		if err := rt.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rt.Close(time.Second) })
	}
	ctx := context.Background()
	if err := a.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	stats := func(rt *Runtime) (Stats, string) {
		st, err := rt.Stats(ctx)
		return st, fmt.Sprintf("%+v, %v", st, err)
	}
	within(t, 10*time.Second, "b to follow the pause flag (its monitor reads it)", func() (bool, string) {
		st, desc := stats(b)
		return st.Paused, desc
	})
	for range 5 {
		enqueue(t, b, pushEvent(t, "acme/api"))
	}
	within(t, 10*time.Second, "the deliveries to wait, paused", func() (bool, string) {
		st, desc := stats(b)
		return st.Paused && st.Events == 0 && st.Ready == 5, desc
	})
	rcv.quiet(t, 500*time.Millisecond)
	if err := b.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.wait(t, 5)
	streamsDrained(t, a)
}
