package redisstore

import (
	"context"
	"testing"
	"time"
)

// A caller's Idempotency-Key answers with the first event's ID within the
// window, whoever else uses the same key; a release frees it only for the
// event that holds it. The key is the one earlier versions wrote
// (<namespace>:{i0}:idem:<sha256 of caller NUL key>), so keys claimed
// before an upgrade still answer.
func TestIdempotencyKeys(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	idem := s.Idempotency()
	claim := func(caller, key, ev string) string {
		t.Helper()
		first, err := idem.Claim(ctx, caller, key, ev, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return first
	}

	if got := claim("jobs", "job-1", "ev1"); got != "ev1" {
		t.Fatalf("first claim answered %q", got)
	}
	const stored = "logtest:{i0}:idem:f6690345db3f5fcb24ac7382c56d26f73b3f6e16eea821f92b4f8e2742d6a4d5"
	if v, err := s.c.rdb.Get(ctx, stored).Result(); err != nil || v != "ev1" {
		t.Fatalf("%s holds %q (%v), want ev1", stored, v, err)
	}
	if ttl, err := s.c.rdb.TTL(ctx, stored).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("the key lives %v (%v), want the window", ttl, err)
	}
	if got := claim("jobs", "job-1", "ev2"); got != "ev1" {
		t.Fatalf("a retry answered %q, want ev1", got)
	}
	if got := claim("cron", "job-1", "ev3"); got != "ev3" {
		t.Fatalf("another caller's key answered %q, want its own event", got)
	}

	if err := idem.Release(ctx, "jobs", "job-1", "ev2"); err != nil {
		t.Fatal(err)
	}
	if got := claim("jobs", "job-1", "ev4"); got != "ev1" {
		t.Fatalf("after a release by another event the key answered %q, want ev1", got)
	}
	if err := idem.Release(ctx, "jobs", "job-1", "ev1"); err != nil {
		t.Fatal(err)
	}
	if got := claim("jobs", "job-1", "ev5"); got != "ev5" {
		t.Fatalf("after its release the key answered %q, want the new event", got)
	}
}
