package engine

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

func TestHookSlotsParkThenHandOver(t *testing.T) {
	var h hookSlots
	now := time.Now()
	msg := func(id string) *redisstore.DeliveryMsg { return &redisstore.DeliveryMsg{StreamID: id} }
	if ok, _ := h.acquireOrPark(7, 1, msg("1"), 2, now); !ok {
		t.Fatal("the first delivery did not get the free slot")
	}
	for _, id := range []string{"2", "3"} {
		if ok, parked := h.acquireOrPark(7, 1, msg(id), 2, now.Add(time.Minute)); ok || !parked {
			t.Fatalf("delivery %s: acquired %v parked %v, want parked", id, ok, parked)
		}
	}
	if ok, parked := h.acquireOrPark(7, 1, msg("4"), 2, now); ok || parked {
		t.Fatal("a third delivery was parked beyond the limit of 2")
	}
	if ok, _ := h.acquireOrPark(8, 1, msg("x"), 2, now); !ok {
		t.Fatal("another hook's delivery waited for hook 7")
	}
	next, ok := h.release(7)
	if !ok || next.StreamID != "2" {
		t.Fatalf("release handed over %q (%v), want the oldest parked, 2", next.StreamID, ok)
	}
	if got := h.expired(now.Add(2 * time.Minute)); len(got) != 1 || got[0].StreamID != "3" {
		t.Fatalf("expired = %v, want delivery 3", got)
	}
	if _, ok := h.release(7); ok {
		t.Fatal("release handed over an expired delivery")
	}
}

// TestHookAtItsCapIsFedWithoutTheSchedule: a burst to a busy but healthy
// hook, as large as the room to park (2 × workers here), waits in the
// process for the hook's slots instead of bouncing through the retry
// schedule, and the cap still holds. (Beyond that room, the rest waits in
// the schedule, so one hook cannot fill the process with its backlog.)
func TestHookAtItsCapIsFedWithoutTheSchedule(t *testing.T) {
	var inflight, peak atomic.Int32
	var got atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		got.Add(1)
	}))
	defer rcv.Close()
	cfg := testConfig()
	cfg.Workers, cfg.HookConcurrency = 8, 2
	before := testutil.ToFloat64(deferred.WithLabelValues("saturated"))
	rt := startWith(t, cfg, hookTo(t, 1, "acme/busy", rcv.URL))
	n := int32(2 * cfg.Workers)
	for range n {
		enqueue(t, rt, pushEvent(t, "acme/busy"))
	}
	deadline := time.Now().Add(15 * time.Second)
	for got.Load() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got.Load() != n {
		t.Fatalf("%d of %d deliveries arrived", got.Load(), n)
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("the hook had %d deliveries in flight, cap is 2", p)
	}
	if d := testutil.ToFloat64(deferred.WithLabelValues("saturated")) - before; d != 0 {
		t.Errorf("%v deliveries went through the schedule", d)
	}
}
