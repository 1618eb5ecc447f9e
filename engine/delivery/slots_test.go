package delivery

import (
	"testing"
	"time"

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
