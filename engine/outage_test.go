package engine

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// redisDown reads the redis_down gauge of namespace "test" on server.
func redisDown(server string) float64 {
	return testutil.ToFloat64(metrics.RedisDown.WithLabelValues("test", server))
}

// skipped reads enqueues_skipped_total of namespace "test" on server.
func skipped(server string) float64 {
	return testutil.ToFloat64(metrics.EnqueuesSkipped.WithLabelValues("test", server))
}

// tryEnqueue enqueues with the capture's default deadline.
func tryEnqueue(t *testing.T, rt *Runtime) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return rt.Enqueue(ctx, pushEvent(t, "acme/api"))
}

// Once an enqueue found Redis gone, the next ones fail at once with
// ErrRedisDown (their callers spool) instead of each trying Redis and
// waiting out its deadline; a probe notices Redis is back, wakes the spool
// and enqueues go to Redis and are delivered again.
func TestEnqueueFailsAtOnceWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	srv, got := receiver(t, http.StatusOK)
	h := pushHook(t, 1, "acme/api", "")
	h.URL = srv.URL
	rt := newRuntime(t, redis.URL, "c1", h)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	back := make(chan struct{}, 10)
	rt.SetFailover(Failover{Spooled: func() { back <- struct{}{} }, Redis: redis.URL})

	enqueue(t, rt, pushEvent(t, "acme/api"))
	next(t, got)
	if v := redisDown(redis.URL); v != 0 {
		t.Fatalf("redis_down = %v with redis up, want 0", v)
	}

	redis.Stop()
	const n = 10
	start := time.Now()
	for i := range n {
		err := tryEnqueue(t, rt)
		switch {
		case err == nil:
			t.Fatalf("enqueue %d succeeded with redis killed", i)
		case i == 0 && errors.Is(err, ErrRedisDown):
			t.Fatalf("the first enqueue was refused without trying redis: %v", err)
		case i > 0 && !errors.Is(err, ErrRedisDown):
			t.Fatalf("enqueue %d: %v, want %v: it tried redis again", i, err, ErrRedisDown)
		}
		if !rt.RedisDown() {
			t.Fatalf("RedisDown() = false after enqueue %d with redis killed", i)
		}
	}
	t.Logf("%d enqueues with redis killed took %s (only the first tried redis)", n, time.Since(start))
	if v := skipped(redis.URL); v != n-1 {
		t.Errorf("enqueues_skipped_total = %v, want %d", v, n-1)
	}
	if v := redisDown(redis.URL); v != 1 {
		t.Errorf("redis_down = %v while redis is down, want 1", v)
	}
	// The spool's replayer is refused at once too, without counting.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if err := rt.Replay(ctx, pushEvent(t, "acme/api")); !errors.Is(err, ErrRedisDown) {
		t.Errorf("Replay while down: %v, want %v", err, ErrRedisDown)
	}
	cancel()
	if v := skipped(redis.URL); v != n-1 {
		t.Errorf("enqueues_skipped_total = %v after a replay, want %d", v, n-1)
	}

	redis.Restart()
	select {
	case <-back:
	case <-time.After(10 * time.Second):
		t.Fatal("the probe did not notice redis is back within 10s")
	}
	if rt.RedisDown() || redisDown(redis.URL) != 0 {
		t.Errorf("RedisDown() = %v, redis_down = %v once redis is back, want false, 0", rt.RedisDown(), redisDown(redis.URL))
	}
	enqueue(t, rt, pushEvent(t, "acme/api"))
	next(t, got)
}

// Without a spool an event has nowhere else to go: each enqueue still
// tries Redis (up to its deadline), while the outage is shown all the same.
func TestEnqueueWaitsForRedisWithoutSpool(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	rt := newRuntime(t, redis.URL, "c1")
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	rt.SetFailover(Failover{Redis: redis.URL})

	redis.StopAndHold()
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rt.Enqueue(ctx, pushEvent(t, "acme/api"))
		cancel()
		if err == nil || errors.Is(err, ErrRedisDown) {
			t.Fatalf("enqueue %d without a spool: %v, want redis's own error", i, err)
		}
	}
	if rt.RedisDown() {
		t.Error("RedisDown() = true without a spool: callers would skip redis")
	}
	if v := redisDown(redis.URL); v != 1 {
		t.Errorf("redis_down = %v while redis is down, want 1", v)
	}
	if v := skipped(redis.URL); v != 0 {
		t.Errorf("enqueues_skipped_total = %v without a spool, want 0", v)
	}
}

// The outage belongs to one store: another Redis server with the same
// namespace keeps taking events, and its metric stays 0. Two runtimes of
// one server each have their own outage, and the metric is 1 while either
// is in one.
func TestRedisOutageIsPerStore(t *testing.T) {
	t.Parallel()
	a, b := redistest.Start(t), redistest.Start(t)
	wake := Failover{Spooled: func() {}}
	runtime := func(url string) *Runtime {
		rt := newRuntime(t, url, "c1")
		t.Cleanup(func() { _ = rt.Close(time.Second) })
		f := wake
		f.Redis = url
		rt.SetFailover(f)
		return rt
	}
	onA, onB, alsoOnA := runtime(a.URL), runtime(b.URL), runtime(a.URL)

	a.StopAndHold()
	if err := tryEnqueue(t, onA); err == nil {
		t.Fatal("enqueue succeeded with redis killed")
	}
	if !onA.RedisDown() || onB.RedisDown() {
		t.Fatalf("RedisDown() = %v on the killed server, %v on the other; want true, false", onA.RedisDown(), onB.RedisDown())
	}
	if err := tryEnqueue(t, onB); err != nil {
		t.Fatalf("enqueue to the other server: %v", err)
	}
	if va, vb := redisDown(a.URL), redisDown(b.URL); va != 1 || vb != 0 {
		t.Fatalf("redis_down = %v on the killed server, %v on the other; want 1, 0", va, vb)
	}

	if err := tryEnqueue(t, alsoOnA); err == nil || errors.Is(err, ErrRedisDown) {
		t.Fatalf("a second runtime of the killed server: %v, want redis's own error (its first try)", err)
	}
	_ = onA.Close(time.Second)
	if v := redisDown(a.URL); v != 1 {
		t.Errorf("redis_down = %v after one of two runtimes in an outage closed, want 1", v)
	}
	if v := redisDown(b.URL); v != 0 {
		t.Errorf("redis_down of the other server = %v, want 0", v)
	}
}
