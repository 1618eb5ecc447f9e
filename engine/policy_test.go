package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// A hook's retry schedule: exactly its waits between attempts (not the
// app's jittered backoff), one attempt more than waits, then the dead
// letter; another hook keeps the app's policy.
func TestHookRetryScheduleIsFollowed(t *testing.T) {
	t.Parallel()
	rcv := newScripted(t, 500)
	other := newScripted(t, 500)
	h := hookTo(t, 1, "acme/api", rcv.URL)
	h.RetrySchedule = []time.Duration{300 * time.Millisecond, 900 * time.Millisecond}
	cfg := testConfig()
	cfg.Retry.MaxAttempts = 1 // the app's: one attempt, as GitLab
	rt := startWith(t, cfg, h, hookTo(t, 2, "acme/api", other.URL))
	enqueue(t, rt, pushEvent(t, "acme/api"))
	rcv.wait(t, 3)
	other.wait(t, 1)
	rcv.quiet(t, 1500*time.Millisecond)
	other.quiet(t, 0)
	for i, want := range h.RetrySchedule {
		gap := rcv.times[i+1].Sub(rcv.times[i])
		if gap < want || gap > want+time.Second {
			t.Errorf("wait %d was %s, want %s (the schedule, not jittered)", i+1, gap, want)
		}
	}
	streamsDrained(t, rt)
	reasons := deadReasons(t, rt)
	if len(reasons) != 2 || !strings.Contains(strings.Join(reasons, "|"), "gave up after 3 attempts") {
		t.Fatalf("dead letters %v: want hook 1's after 3 attempts, hook 2's after 1", reasons)
	}
}

// auto_disable: off never disables; permanent_after n disables for a while
// from the threshold, every failure alike (a 4xx does not disable for
// good), and until re-enabled at the n-th failure.
func TestAutoDisableModes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		rcv := newScripted(t, 410)
		h := hookTo(t, 1, "acme/api", rcv.URL)
		h.AutoDisable = &webhook.AutoDisable{Mode: webhook.AutoDisableOff}
		rt := startWith(t, testConfig(), h)
		for range 6 {
			enqueue(t, rt, pushEvent(t, "acme/api"))
			rcv.wait(t, 1)
			streamsDrained(t, rt)
		}
		if hh, _ := rt.HookHealth(ctx, 1); hh.AlertStatus != delivery.AlertExecutable || hh.Failures != 6 {
			t.Fatalf("after six 410s with auto_disable off: %+v, want executable with 6 failures", hh)
		}
	})
	t.Run("permanent_after", func(t *testing.T) {
		t.Parallel()
		rcv := newScripted(t, 404)
		cfg := testConfig()
		cfg.Health.Threshold, cfg.Health.Base, cfg.Health.Max = 2, 100*time.Millisecond, 100*time.Millisecond
		cfg.Health.Mode, cfg.Health.PermanentAfter = webhook.AutoDisablePermanentAfter, 4
		rt := startWith(t, cfg, hookTo(t, 1, "acme/api", rcv.URL))
		want := []string{delivery.AlertExecutable, delivery.AlertTemporarilyDisabled, delivery.AlertTemporarilyDisabled, delivery.AlertDisabled}
		for i, status := range want {
			deadline := time.Now().Add(5 * time.Second)
			for { // a failure counts once the temporary disable is over
				hh, _ := rt.HookHealth(ctx, 1)
				if hh.AlertStatus == delivery.AlertExecutable {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still %+v", hh)
				}
				time.Sleep(20 * time.Millisecond)
			}
			enqueue(t, rt, pushEvent(t, "acme/api"))
			rcv.wait(t, 1)
			streamsDrained(t, rt)
			if hh, _ := rt.HookHealth(ctx, 1); hh.AlertStatus != status || hh.Failures != i+1 {
				t.Fatalf("after 404 number %d: %+v, want %s", i+1, hh, status)
			}
		}
	})
}
