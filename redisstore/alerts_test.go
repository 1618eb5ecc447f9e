package redisstore

import (
	"context"
	"testing"
	"time"
)

// Dead letters counted by several processes are told in one alert per
// hook per interval: what comes while the gate is closed waits for the
// next, and nothing is lost or told twice.
func TestDeadLetterAlertsRollUp(t *testing.T) {
	s := newOrderedStore(t, 1)
	a, ctx := s.Alerts(), context.Background()
	since := time.UnixMilli(time.Now().UnixMilli())
	for _, counts := range [][]DeadCount{ // two processes' flushes
		{{HookID: 7, Count: 3, Reasons: map[string]int{"exhausted": 3}, First: "ev-1", Since: since}},
		{{HookID: 7, Count: 2, Reasons: map[string]int{"client_error": 2}, First: "ev-9", Since: since.Add(time.Second)},
			{HookID: 8, Count: 1, Reasons: map[string]int{"gone": 1}, First: "ev-5", Since: since}},
	} {
		if err := a.AddDead(ctx, counts); err != nil {
			t.Fatal(err)
		}
	}
	const interval = 300 * time.Millisecond
	due, err := a.TakeDead(ctx, interval)
	if err != nil || len(due) != 2 {
		t.Fatalf("took %+v %v, want hooks 7 and 8", due, err)
	}
	for _, d := range due {
		if d.HookID == 7 && (d.Count != 5 || d.Reasons["exhausted"] != 3 || d.Reasons["client_error"] != 2 ||
			d.First != "ev-1" || !d.Since.Equal(since)) {
			t.Errorf("hook 7: %+v, want both processes' counts from the first", d)
		}
	}
	if err := a.AddDead(ctx, []DeadCount{{HookID: 7, Count: 4, Reasons: map[string]int{"expired": 4}, First: "ev-20", Since: since}}); err != nil {
		t.Fatal(err)
	}
	if due, _ := a.TakeDead(ctx, interval); len(due) != 0 {
		t.Fatalf("took %+v within the interval", due)
	}
	var later []DeadCount
	for deadline := time.Now().Add(5 * time.Second); len(later) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if later, err = a.TakeDead(ctx, interval); err != nil {
			t.Fatal(err)
		}
	}
	if len(later) != 1 || later[0].HookID != 7 || later[0].Count != 4 || later[0].First != "ev-20" {
		t.Fatalf("after the interval took %+v, want hook 7's 4 held back", later)
	}
	if again, _ := a.TakeDead(ctx, time.Millisecond); len(again) != 0 {
		t.Fatalf("told twice: %+v", again)
	}
}
