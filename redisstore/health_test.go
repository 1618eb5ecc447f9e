package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// The engine stops waiting for Redis only on errors that say it could not
// be reached: not on errors Redis answered with, a caller that gave up, or
// a closed store. Reachable says when it answers again.
func TestUnreachableTellsConnectionErrorsFromAnswers(t *testing.T) {
	srv := redistest.Start(t)
	s, err := New(Options{URL: srv.URL, Namespace: "health"})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	ctx := context.Background()
	ev := &webhook.Event{ID: "e", Trigger: "push", At: time.Now(), Body: []byte(`{}`)}

	if err := s.c.rdb.Set(ctx, "health:string", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, answered := range []error{
		s.c.rdb.Do(ctx, "XADD", "health:string", "*", "k", "v").Err(), // WRONGTYPE
		s.c.rdb.Do(ctx, "NOSUCHCOMMAND").Err(),
	} {
		if answered == nil || Unreachable(answered) {
			t.Errorf("Unreachable(%v) = true, want false (not a connection error)", answered)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, gaveUp := s.Queue().AddEvent(cctx, ev); gaveUp == nil || Unreachable(gaveUp) {
		t.Errorf("Unreachable(%v) = true, want false (the caller gave up)", gaveUp)
	}
	if err := s.Reachable(ctx); err != nil {
		t.Errorf("Reachable with redis up: %v", err)
	}

	srv.Stop()
	for _, timeout := range []time.Duration{100 * time.Millisecond, 5 * time.Second} {
		tctx, cancel := context.WithTimeout(ctx, timeout)
		_, refused := s.Queue().AddEvent(tctx, ev)
		cancel()
		if !Unreachable(refused) {
			t.Errorf("Unreachable(%v) = false with redis killed (deadline %s), want true", refused, timeout)
		}
		if !Unreachable(fmt.Errorf("wrapped: %w", refused)) {
			t.Errorf("Unreachable of a wrapped %v = false", refused)
		}
	}
	tctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := s.Reachable(tctx); err == nil {
		t.Error("Reachable with redis killed = nil")
	}

	srv.Restart()
	if err := s.Reachable(ctx); err != nil {
		t.Errorf("Reachable once redis is back: %v", err)
	}
	s.Close()
	closed = true
	if _, err := s.Queue().AddEvent(ctx, ev); err == nil || Unreachable(err) {
		t.Errorf("Unreachable(%v) = true, want false (the store is closed)", err)
	}
}

// In a Cluster, Redis answers when every master does: events may go to
// any of them.
func TestReachableAsksEveryClusterMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	cluster := redistest.StartCluster(t, 3)
	s, err := New(Options{URL: cluster.URL, Mode: ModeCluster, Namespace: "health"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.Reachable(ctx); err != nil {
		t.Fatalf("Reachable with the cluster ok: %v", err)
	}
	// Whichever master it is: not only the one a PING would pick.
	for _, node := range cluster.Nodes {
		node.Stop()
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.Reachable(tctx)
		cancel()
		if err == nil {
			t.Errorf("Reachable with master %s killed = nil", node.Addr)
		}
		node.Restart()
		cluster.WaitOK(t)
		if err := s.Reachable(ctx); err != nil {
			t.Errorf("Reachable once master %s is back: %v", node.Addr, err)
		}
	}
}
