package ordered

import (
	"testing"
	"time"
)

// A capture counts from its start until Redis has it; one Redis refused
// counts a while longer (its caller spools it meanwhile), then not.
func TestCapturesCountWhatIsNotInRedisYet(t *testing.T) {
	var c Captures
	t0 := time.Unix(1_800_000_000, 0)
	if _, ok := c.Oldest(t0); ok {
		t.Fatal("no capture, yet an oldest one")
	}
	a := c.Begin(t0)
	b := c.Begin(t0.Add(time.Second))
	if at, ok := c.Oldest(t0.Add(2 * time.Second)); !ok || !at.Equal(t0) {
		t.Fatalf("oldest %v %v, want the first capture's", at, ok)
	}
	c.End(a, false, t0.Add(2*time.Second)) // in Redis
	if at, _ := c.Oldest(t0.Add(2 * time.Second)); !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("oldest %v once the first is in Redis, want the second's", at)
	}
	c.End(b, true, t0.Add(3*time.Second)) // refused: spooled by its caller
	if at, ok := c.Oldest(t0.Add(3*time.Second + linger - time.Millisecond)); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("oldest %v %v while the refused one lingers", at, ok)
	}
	if at, ok := c.Oldest(t0.Add(3*time.Second + linger)); ok {
		t.Fatalf("oldest %v after the linger", at)
	}
}
