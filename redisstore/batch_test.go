package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// writes reads Redis's count of replies written: one per round trip of a
// pipeline, one per command otherwise.
func writes(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_writes_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no total_writes_processed in INFO stats")
	return 0
}

// TestConcurrentAddsShareRoundTrips: 400 concurrent captures all land, each
// once, in far fewer round trips than events.
func TestConcurrentAddsShareRoundTrips(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	const n = 400
	before := writes(t, s.c.rdb)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Queue().AddEvent(ctx, &webhook.Event{ID: fmt.Sprintf("ev-%d", i), Trigger: "push", Project: "a/b", At: time.Now(), Body: []byte(`{}`)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rounds := writes(t, s.c.rdb) - before - 1 // the INFO itself
	if got := s.c.rdb.XLen(ctx, s.c.keys.Events(0)).Val(); got != n {
		t.Fatalf("%d events in the stream, want %d", got, n)
	}
	if rounds >= n/2 {
		t.Errorf("%d events took %d round trips; concurrent adds should share them", n, rounds)
	}
	t.Logf("%d concurrent events in %d round trips", n, rounds)
}

// TestScriptsSurviveAFlushedCache: a Redis that lost its script cache (a
// restart, a failover) still runs the batched scripts.
func TestScriptsSurviveAFlushedCache(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	now := time.Now()
	if v, _, err := s.Health().Admit(ctx, 1, "acme", 0, now); err != nil || v != Admitted {
		t.Fatalf("Admit = %d, %v", v, err)
	}
	if err := s.c.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if v, _, err := s.Health().Admit(ctx, 1, "acme", 0, now); err != nil || v != Admitted {
		t.Fatalf("Admit after SCRIPT FLUSH = %d, %v", v, err)
	}
	d := &webhook.Delivery{EventID: "e", HookID: 1, Trigger: "push", At: now, Body: []byte(`{}`), Attempt: 1}
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Queue().AddDeliveries(ctx, []webhook.Delivery{*d}); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Queue().ReadDeliveries(ctx, 0, "c", ">", 1, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("read %d deliveries: %v", len(msgs), err)
	}
	if err := s.c.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	st, err := s.Queue().Settle(ctx, &msgs[0], Outcome{Success: true, Attempted: true, Status: "200", At: now},
		&webhook.LogEntry{HookID: 1, EventID: "e", Trigger: "push", Kind: "delivery", ResponseStatus: "200", CreatedAt: now},
		Rules{Health: HealthPolicy{Threshold: 4, Base: time.Minute, Max: time.Hour},
			Log: LogLimits{Retention: time.Hour, MaxEntries: 10}})
	if err != nil || st.Already || st.LogErr != nil || st.LogID == 0 {
		t.Fatalf("Settle after SCRIPT FLUSH = %+v, %v", st, err)
	}
	if n := s.c.rdb.XLen(ctx, s.c.keys.Ready(0)).Val(); n != 0 {
		t.Errorf("%d entries left on the ready stream", n)
	}
}

// TestGivenUpCallsAreNotSent: a call whose caller gave up before its
// pipeline left is not run (the caller may have spooled its event).
func TestGivenUpCallsAreNotSent(t *testing.T) {
	s := newLogStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Queue().AddEvent(ctx, &webhook.Event{ID: "gone", Trigger: "push", At: time.Now(), Body: []byte(`{}`)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("AddEvent with a cancelled context = %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := s.c.rdb.XLen(context.Background(), s.c.keys.Events(0)).Val(); n != 0 {
		t.Errorf("%d events in the stream, want 0", n)
	}
}

func TestCallsAfterCloseFail(t *testing.T) {
	s := newLogStore(t)
	s.c.events.close()
	_, err := s.Queue().AddEvent(context.Background(), &webhook.Event{ID: "late", Trigger: "push", At: time.Now(), Body: []byte(`{}`)})
	if !errors.Is(err, errBatcherClosed) {
		t.Fatalf("AddEvent after close = %v, want %v", err, errBatcherClosed)
	}
	s.c.events = newBatcher(s.c.rdb, batchMax, batchTimeout) // for the cleanup's Close
}

// TestCloseDoesNotWaitForAHungRedis: closing a store whose Redis stopped
// answering returns at once, not after the pipelines' timeout (a config
// reload waits for it).
func TestCloseDoesNotWaitForAHungRedis(t *testing.T) {
	srv := redistest.Start(t)
	s, err := New(Options{URL: srv.URL, Namespace: "closetest"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Queue().AddEvent(context.Background(), &webhook.Event{ID: "a", Trigger: "push", At: time.Now(), Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A settle-like call without its own deadline: only close ends it.
		_, _, _ = s.Health().Admit(context.Background(), 1, "acme", 0, time.Now())
	}()
	time.Sleep(100 * time.Millisecond) // let the call reach a pipeline
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(batchTimeout / 2):
		t.Fatal("Close waited for a pipeline to a Redis that does not answer")
	}
	<-done
}

// TestChainChecksTakeOneRoundTrip: a fan-out batch's recursion checks cost
// one round trip once the script is cached (no SCRIPT LOAD per batch,
// which in a Cluster reaches every master), and still work after Redis
// lost its script cache.
func TestChainChecksTakeOneRoundTrip(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	// check fans out one event of each of two chains; it returns the first
	// chain's verdicts and the round trips the fan-out took.
	check := func(event string, hooks ...int64) ([]ChainVerdict, int64) {
		t.Helper()
		evs, err := queueChecks(ctx, s, []chainCheck{{Chain: "c1", EventID: event, HookIDs: hooks},
			{Chain: "c2", EventID: event, HookIDs: hooks}})
		if err != nil {
			t.Fatal(err)
		}
		before := writes(t, s.c.rdb)
		vs, err := verdicts(ctx, s, evs, time.Minute, 10, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		rounds := writes(t, s.c.rdb) - before - 1 // -1: the INFO itself
		if len(vs) != 2 {
			t.Fatalf("%d verdict lists for 2 checks", len(vs))
		}
		return vs[0], rounds
	}
	if err := s.c.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if vs, _ := check("e1", 1, 2); len(vs) != 2 || vs[0] != ChainAllowed || vs[1] != ChainAllowed {
		t.Fatalf("first event's verdicts after SCRIPT FLUSH = %v, want both OK", vs)
	}
	vs, rounds := check("e2", 2, 3)
	if len(vs) != 2 || vs[0] != ChainRecursive || vs[1] != ChainAllowed {
		t.Fatalf("second event's verdicts = %v, want hook 2 refused (already in the chain), hook 3 OK", vs)
	}
	if rounds != 1 {
		t.Errorf("a batch of chain checks took %d round trips, want 1", rounds)
	}
}
