package integration

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// A reload while deliveries are queued and in flight must not lose them,
// deliver any twice, or start a second set of workers; the new settings
// apply to what is delivered after it.
func TestReloadKeepsQueuedWorkAndOneSetOfWorkers(t *testing.T) {
	rcv := newReceiver(t, 30*time.Millisecond) // slow enough that work is queued at reload
	app := newApp(t)
	hooks := hookBlock("ci", rcv.URL, "group acme", "push")
	tester, redis := start(t, func(redisURL string) string {
		return caddyfile(redisURL, "https://gen1.example.com", app, hooks)
	})

	const n = 25
	for i := range n {
		if resp, _ := post(t, fmt.Sprintf("/push?project=acme/api&branch=b%d", i), nil); resp.StatusCode != 200 {
			t.Fatalf("push %d: %d", i, resp.StatusCode)
		}
	}
	tester.InitServer(caddyfile(redis.URL, "https://gen2.example.com", app, hooks), "caddyfile")
	for i := n; i < 2*n; i++ {
		if resp, _ := post(t, fmt.Sprintf("/push?project=acme/api&branch=b%d", i), nil); resp.StatusCode != 200 {
			t.Fatalf("push %d: %d", i, resp.StatusCode)
		}
	}

	keys := map[string]bool{}
	branches := map[string]bool{}
	gen2 := 0
	for range 2 * n {
		d := rcv.next(t)
		key := d.Header.Get("Idempotency-Key")
		if keys[key] {
			t.Fatalf("delivered twice: %s", d.Body)
		}
		keys[key] = true
		branches[d.Body] = true
		if d.Header.Get("X-Gitlab-Instance") == "https://gen2.example.com" {
			gen2++
		}
	}
	rcv.quiet(t, 1500*time.Millisecond)
	if len(branches) != 2*n {
		t.Fatalf("%d distinct events arrived, want %d", len(branches), 2*n)
	}
	if gen2 < n {
		t.Errorf("only %d deliveries used the reloaded instance URL; all %d sent after the reload should", gen2, n)
	}
	if got := metric(t, "caddy_webhooks_runtimes_running"); got != "1" {
		t.Errorf("runtimes running after reload = %q, want 1", got)
	}
	c := redis.Client()
	defer c.Close()
	consumers, err := c.XInfoConsumers(context.Background(), "webhooks:{d0}:ready", "deliver").Result()
	if err != nil || len(consumers) != 1 {
		t.Errorf("delivery consumers = %v, %v; want one", consumers, err)
	}
	if r, _ := do(t, mustRequest(t, http.MethodGet, "/plain")); r.StatusCode != 200 {
		t.Fatalf("after reload: %d", r.StatusCode)
	}
}
