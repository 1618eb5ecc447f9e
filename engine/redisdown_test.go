package engine

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// TestEnqueueFailsAtOnceWhileRedisIsDown: once an enqueue found Redis
// gone, the next ones fail at once (their callers spool) instead of each
// waiting out its deadline; a probe notices Redis is back, says so, and
// enqueues go to Redis and are delivered again.
func TestEnqueueFailsAtOnceWhileRedisIsDown(t *testing.T) {
	redis := redistest.Start(t)
	srv, got := receiver(t, http.StatusOK)
	store, err := redisstore.New(redisstore.Options{URL: redis.URL, Namespace: "redisdown", Readers: 2})
	if err != nil {
		t.Fatal(err)
	}
	set, err := webhook.NewHookSet([]*webhook.Hook{hookTo(t, 1, "acme/api", srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	rt := NewRuntime(store, "c1", zaptest.NewLogger(t))
	rt.Configure(testConfig(), set)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	back := make(chan struct{}, 1)
	rt.SpoolWhileDown(func() { back <- struct{}{} })
	down := func() float64 { return testutil.ToFloat64(metrics.RedisDown.WithLabelValues("redisdown")) }

	enqueue(t, rt, pushEvent(t, "acme/api"))
	next(t, got)

	redis.Stop()
	const n, timeout = 10, 2 * time.Second
	start := time.Now()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := rt.Enqueue(ctx, pushEvent(t, "acme/api"))
		cancel()
		if err == nil {
			t.Fatalf("enqueue %d succeeded with redis killed", i)
		}
		if i > 0 && !errors.Is(err, ErrRedisDown) {
			t.Errorf("enqueue %d: %v, want %v", i, err, ErrRedisDown)
		}
	}
	took := time.Since(start)
	t.Logf("%d enqueues with redis down took %s", n, took)
	// Waiting out the deadline each time would take n × timeout (20s);
	// only the first enqueue may wait.
	if took > timeout+time.Second {
		t.Errorf("%d enqueues with redis down took %s; only the first should wait (up to %s)", n, took, timeout)
	}
	if down() != 1 {
		t.Errorf("redis_down = %v while redis is down, want 1", down())
	}

	redis.Restart()
	select {
	case <-back:
	case <-time.After(10 * time.Second):
		t.Fatal("the probe did not notice redis is back within 10s")
	}
	if down() != 0 {
		t.Errorf("redis_down = %v once redis is back, want 0", down())
	}
	enqueue(t, rt, pushEvent(t, "acme/api"))
	next(t, got)
}
