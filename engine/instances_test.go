package engine

import (
	"context"
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
	time.Sleep(monitorInterval + 500*time.Millisecond) // b follows the flag
	for range 5 {
		enqueue(t, b, pushEvent(t, "acme/api"))
	}
	rcv.quiet(t, 1500*time.Millisecond)
	if st, _ := b.Stats(ctx); !st.Paused || st.Ready != 5 {
		t.Fatalf("stats while paused = %+v", st)
	}
	if err := b.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.wait(t, 5)
	streamsDrained(t, a)
}
