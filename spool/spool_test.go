package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// event i; odd ones were captured in a trace.
func event(i int) *webhook.Event {
	ev := &webhook.Event{ID: fmt.Sprintf("ev-%04d", i), Trigger: "push", Project: "acme/api", Ref: "refs/heads/main",
		Chain: fmt.Sprintf("chain-%d", i), At: time.Unix(1700000000, int64(i)).UTC(), Body: fmt.Appendf(nil, `{"seq":%d}`, i)}
	if i%2 == 1 {
		ev.Trace = webhook.TraceContext{Parent: fmt.Sprintf("00-4bf92f3577b34da6a3ce929d0e0e%04x-00f067aa0ba902b7-01", i), State: "k=v"}
	}
	return ev
}

// sink records what the replayer queues; fail makes it refuse.
type sink struct {
	mu   sync.Mutex
	got  []*webhook.Event
	fail func(n int) bool // n: events taken so far
}

func (k *sink) enqueue(_ context.Context, ev *webhook.Event) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil && k.fail(len(k.got)) {
		return errors.New("redis is down")
	}
	k.got = append(k.got, ev)
	return nil
}

func (k *sink) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.got)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fileSize(t *testing.T, dir string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, dataFile))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestAppendedEventsAreReplayedInOrderAndTheFileEmptied(t *testing.T) {
	dir := t.TempDir()
	down := &sink{fail: func(int) bool { return true }}
	s := New(dir, "test", 1<<20, zaptest.NewLogger(t))
	if err := s.Start(down.enqueue); err != nil {
		t.Fatal(err)
	}
	for i := range 250 {
		if err := s.Append(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	// After a restart the events are still there; replayed in order, with
	// their IDs and everything else unchanged.
	up := &sink{}
	s = New(dir, "test", 1<<20, zaptest.NewLogger(t))
	defer s.Close()
	if err := s.Start(up.enqueue); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay", func() bool { return s.Pending() == 0 })
	if up.count() != 250 {
		t.Fatalf("replayed %d events, want 250", up.count())
	}
	for i, ev := range up.got {
		want := event(i)
		if ev.ID != want.ID || ev.Chain != want.Chain || !ev.At.Equal(want.At) || string(ev.Body) != string(want.Body) ||
			ev.Trigger != want.Trigger || ev.Project != want.Project || ev.Ref != want.Ref || ev.Trace != want.Trace {
			t.Fatalf("event %d replayed as %+v, want %+v", i, ev, want)
		}
	}
	if n := fileSize(t, dir); n != 0 {
		t.Errorf("spool file is %d bytes after the replay, want it emptied", n)
	}
	if _, err := os.Stat(filepath.Join(dir, headFile)); !os.IsNotExist(err) {
		t.Errorf("replay position still saved: %v", err)
	}
}

// A crash mid-replay resumes after the last saved position: events before
// it are not queued again, events after it are (some twice: documented).
func TestReplayResumesAfterACrash(t *testing.T) {
	dir := t.TempDir()
	s := New(dir, "test", 1<<20, zaptest.NewLogger(t))
	for i := range 300 {
		if err := s.Append(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	flaky := &sink{fail: func(n int) bool { return n >= 150 }} // Redis goes away again after 150
	if err := s.Start(flaky.enqueue); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "150 replayed", func() bool { return flaky.count() == 150 && s.Pending() == 150 })
	s.Close()

	up := &sink{}
	s = New(dir, "test", 1<<20, zaptest.NewLogger(t))
	defer s.Close()
	if err := s.Start(up.enqueue); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rest replayed", func() bool { return s.Pending() == 0 })
	if up.count() != 150 || up.got[0].ID != event(150).ID || up.got[149].ID != event(299).ID {
		t.Fatalf("after the restart %d events were replayed (first %s), want 150 from ev-0150", up.count(), up.got[0].ID)
	}
}

// A record cut short by a crash, or with a bad checksum, ends the spool:
// the records before it are kept, it is cut off, and appends go on.
func TestTornOrCorruptTailIsCutOff(t *testing.T) {
	for name, damage := range map[string]func(t *testing.T, path string, last int64){
		"cut short": func(t *testing.T, path string, last int64) {
			if err := os.Truncate(path, last+headerSize+5); err != nil {
				t.Fatal(err)
			}
		},
		"header only": func(t *testing.T, path string, last int64) {
			if err := os.Truncate(path, last+3); err != nil {
				t.Fatal(err)
			}
		},
		"bad checksum": func(t *testing.T, path string, last int64) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.WriteAt([]byte("X"), last+headerSize+3)
		},
		"garbage after": func(t *testing.T, path string, last int64) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.Write([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := New(dir, "test", 1<<20, zaptest.NewLogger(t))
			for i := range 3 {
				if err := s.Append(event(i)); err != nil {
					t.Fatal(err)
				}
			}
			last := s.size
			if err := s.Append(event(3)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			keep := 4
			if name != "garbage after" {
				keep = 3
			}
			damage(t, filepath.Join(dir, dataFile), last)

			s = New(dir, "test", 1<<20, zaptest.NewLogger(t))
			defer s.Close()
			if err := s.Append(event(9)); err != nil {
				t.Fatal(err)
			}
			up := &sink{}
			if err := s.Start(up.enqueue); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the replay", func() bool { return s.Pending() == 0 })
			var ids []string
			for _, ev := range up.got {
				ids = append(ids, ev.ID)
			}
			want := []string{"ev-0000", "ev-0001", "ev-0002", "ev-0003"}[:keep]
			want = append(want, "ev-0009")
			if fmt.Sprint(ids) != fmt.Sprint(want) {
				t.Fatalf("replayed %v, want %v", ids, want)
			}
		})
	}
}

func TestSpoolIsBounded(t *testing.T) {
	dir := t.TempDir()
	var five int64
	for i := range 5 {
		rec, _ := encode(event(i))
		five += int64(len(rec))
	}
	s := New(dir, "test", five+1, zaptest.NewLogger(t))
	defer s.Close()
	for i := range 5 {
		if err := s.Append(event(i)); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if err := s.Append(event(5)); !errors.Is(err, ErrFull) {
		t.Fatalf("sixth event: %v, want ErrFull", err)
	}
	if s.Pending() != 5 || fileSize(t, dir) != five {
		t.Fatalf("pending %d, %d bytes after a refused append", s.Pending(), fileSize(t, dir))
	}
	// Once replayed, there is room again.
	up := &sink{}
	if err := s.Start(up.enqueue); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay", func() bool { return s.Pending() == 0 })
	if err := s.Append(event(6)); err != nil {
		t.Fatalf("after the replay: %v", err)
	}
}

// Events appended while a replay runs are queued after the older ones.
func TestAppendsDuringReplayKeepTheirOrder(t *testing.T) {
	dir := t.TempDir()
	s := New(dir, "test", 16<<20, zaptest.NewLogger(t))
	defer s.Close()
	slow := &sink{}
	gate := make(chan struct{})
	enqueue := func(ctx context.Context, ev *webhook.Event) error {
		<-gate
		return slow.enqueue(ctx, ev)
	}
	for i := range 50 {
		s.Append(event(i))
	}
	if err := s.Start(enqueue); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 50; i < 500; i++ {
			if err := s.Append(event(i)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	close(gate)
	wg.Wait()
	waitFor(t, "the replay", func() bool { return s.Pending() == 0 && slow.count() == 500 })
	for i, ev := range slow.got {
		if ev.ID != event(i).ID {
			t.Fatalf("position %d holds %s", i, ev.ID)
		}
	}
}

// While Redis refuses, events appended meanwhile do not make the replayer
// try again (and log) once each: it waits for its backoff or for Wake,
// which the runtime calls when Redis answers again.
func TestRefusedReplayWaitsForWakeNotForEachAppend(t *testing.T) {
	var tries, down = 0, true
	var mu sync.Mutex
	enqueue := func(_ context.Context, _ *webhook.Event) error {
		mu.Lock()
		defer mu.Unlock()
		tries++
		if down {
			return errors.New("redis is down")
		}
		return nil
	}
	triesNow := func() int { mu.Lock(); defer mu.Unlock(); return tries }
	s := New(t.TempDir(), "test", 1<<20, zaptest.NewLogger(t))
	t.Cleanup(func() { s.Close() })
	if err := s.Start(enqueue); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(event(0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first try", func() bool { return s.failing.Load() })
	since, before := time.Now(), triesNow()
	for i := 1; i <= 20; i++ {
		if err := s.Append(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	// Only the backoff (at least minRetry) may bring a try meanwhile.
	if n, most := triesNow()-before, int(time.Since(since)/minRetry); n > most {
		t.Fatalf("%d tries during 20 appends while redis refused, want at most %d (one per backoff)", n, most)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	s.Wake()
	waitFor(t, "the replay after Wake", func() bool { return s.Pending() == 0 })
}

// Oldest is the earliest capture time of what waits (ordered hooks wait
// for it), also after a restart, and nothing once everything is queued.
func TestOldestIsTheEarliestCaptureWaiting(t *testing.T) {
	dir := t.TempDir()
	s := New(dir, "t", 1<<20, zaptest.NewLogger(t))
	if _, ok := s.Oldest(); ok {
		t.Fatal("an empty spool has an oldest event")
	}
	for _, i := range []int{5, 3, 9} { // appended out of capture order, as concurrent captures may be
		if err := s.Append(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if at, ok := s.Oldest(); !ok || !at.Equal(event(3).At) {
		t.Fatalf("oldest %v %v, want event 3's capture time", at, ok)
	}
	s.Close()
	s = New(dir, "t", 1<<20, zaptest.NewLogger(t)) // a restart reads it from the file
	t.Cleanup(func() { s.Close() })
	if at, ok := s.Oldest(); !ok || !at.Equal(event(3).At) {
		t.Fatalf("after a restart, oldest %v %v, want event 3's capture time", at, ok)
	}
	k := &sink{}
	if err := s.Start(k.enqueue); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay", func() bool { return s.Pending() == 0 })
	if at, ok := s.Oldest(); ok {
		t.Fatalf("oldest %v after everything was queued", at)
	}
}
