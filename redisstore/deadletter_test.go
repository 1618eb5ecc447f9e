package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// deadLetterN settles n new deliveries of hook 1 as given up ("expired"),
// each with a payload of size bytes, and returns the trims reported.
func deadLetterN(t *testing.T, s *Store, from, n, size int, lim DeadLetterLimits) (byCount, byBytes int) {
	t.Helper()
	ctx := context.Background()
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"pad":"` + strings.Repeat("x", size) + `"}`)
	for i := from; i < from+n; i++ {
		d := webhook.Delivery{EventID: fmt.Sprintf("ev-%03d", i), HookID: 1, Trigger: "push", At: time.Now(), Body: body, Attempt: 1}
		if err := s.Queue().AddDeliveries(ctx, []webhook.Delivery{d}); err != nil {
			t.Fatal(err)
		}
		msgs, err := s.Queue().ReadDeliveries(ctx, 0, "c", ">", 1, time.Second)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("read %d deliveries: %v", len(msgs), err)
		}
		st, err := s.Queue().Settle(ctx, &msgs[0], Outcome{Reason: "expired", At: time.Now()}, nil,
			Rules{Health: HealthPolicy{Threshold: 4, Base: time.Minute, Max: time.Hour}, DeadLetters: lim})
		if err != nil {
			t.Fatal(err)
		}
		byCount += st.TrimmedForCount
		byBytes += st.TrimmedForBytes
	}
	return byCount, byBytes
}

// deadStream reads every dead letter: their event IDs, oldest first, and
// their total size (document and reason).
func deadStream(t *testing.T, s *Store) (events []string, bytes int64) {
	t.Helper()
	msgs, err := s.c.rdb.XRange(context.Background(), s.c.keys.Dead(0), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		v := fields(m.Values)
		d, err := DecodeDelivery(v.str("d"))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, d.EventID)
		bytes += int64(len(v.str("d")) + len(v.str("reason")))
	}
	return events, bytes
}

func TestDeadLettersStayWithinTheirByteBoundOldestFirst(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	lim := DeadLetterLimits{MaxEntries: 1000, MaxBytes: 5000}
	byCount, byBytes := deadLetterN(t, s, 0, 30, 500, lim) // about 17 KB in all

	events, size := deadStream(t, s)
	if size > lim.MaxBytes {
		t.Fatalf("dead letters hold %d bytes, over the bound of %d", size, lim.MaxBytes)
	}
	if size < lim.MaxBytes-1000 {
		t.Errorf("dead letters hold %d bytes: trimmed more than needed for %d", size, lim.MaxBytes)
	}
	if counted, _ := deadLetterBytes(ctx, s); counted != size {
		t.Errorf("byte counter = %d, the stream holds %d", counted, size)
	}
	// The newest are kept, in order.
	kept := len(events)
	for i, ev := range events {
		if want := fmt.Sprintf("ev-%03d", 30-kept+i); ev != want {
			t.Fatalf("dead letters %v: want the newest %d, ev-%03d…ev-029", events, kept, 30-kept)
		}
	}
	if byBytes != 30-kept || byCount != 0 {
		t.Errorf("reported %d trimmed for bytes and %d for count; %d were dropped for bytes", byBytes, byCount, 30-kept)
	}

	// The count bound applies too, and is reported apart.
	byCount, byBytes = deadLetterN(t, s, 30, 2, 10, DeadLetterLimits{MaxEntries: 3, MaxBytes: 1 << 20})
	events, size = deadStream(t, s)
	if strings.Join(events, " ") != "ev-029 ev-030 ev-031" {
		t.Fatalf("dead letters after the count bound: %v", events)
	}
	if byCount != kept+2-3 || byBytes != 0 {
		t.Errorf("reported %d trimmed for count and %d for bytes, want %d and 0", byCount, byBytes, kept+2-3)
	}
	if counted, _ := deadLetterBytes(ctx, s); counted != size {
		t.Errorf("byte counter = %d after count trimming, the stream holds %d", counted, size)
	}

	// Redriving takes the entry's bytes off the counter; an empty stream
	// has none.
	dl, err := s.DeadLetters().List(ctx, "-", 10)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeadLetters().Redrive(ctx, dl[0].ID); n != 1 || err != nil {
		t.Fatalf("redrive = %d, %v", n, err)
	}
	_, size = deadStream(t, s)
	if counted, _ := deadLetterBytes(ctx, s); counted != size {
		t.Errorf("byte counter = %d after a redrive, the stream holds %d", counted, size)
	}
	if n, err := s.DeadLetters().Redrive(ctx, dl[1].ID, dl[2].ID); n != 2 || err != nil {
		t.Fatalf("redrive = %d, %v", n, err)
	}
	if counted, _ := deadLetterBytes(ctx, s); counted != 0 {
		t.Errorf("byte counter = %d with no dead letters", counted)
	}
}

// A dead letter larger than the whole bound is not kept at all.
func TestDeadLetterLargerThanTheBoundIsDropped(t *testing.T) {
	s := newLogStore(t)
	lim := DeadLetterLimits{MaxBytes: 2000}
	deadLetterN(t, s, 0, 2, 100, lim)
	_, byBytes := deadLetterN(t, s, 2, 1, 3000, lim)
	events, size := deadStream(t, s)
	if len(events) != 0 || size != 0 || byBytes != 3 {
		t.Fatalf("dead letters %v (%d bytes), %d trimmed for bytes; want none kept and 3 trimmed", events, size, byBytes)
	}
}

// deadLetterBytes is the size of the dead letters as counted against
// DeadLetterLimits.MaxBytes.
func deadLetterBytes(ctx context.Context, s *Store) (int64, error) {
	n, err := s.c.rdb.Get(ctx, s.c.keys.DeadBytes(0)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}
