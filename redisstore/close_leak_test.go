package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Close lets go of every client, pool and batcher goroutine, in every
// mode, whether Redis answers, refuses or hangs: a config reload closes a
// store, and nothing of it may outlive it.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (Options, func())
	}{
		{"single", func(t *testing.T) (Options, func()) {
			srv := redistest.Start(t)
			return Options{URL: srv.URL}, func() {}
		}},
		{"single-down", func(t *testing.T) (Options, func()) {
			srv := redistest.Start(t)
			return Options{URL: srv.URL}, srv.Stop
		}},
		{"single-frozen", func(t *testing.T) (Options, func()) {
			srv := redistest.Start(t)
			return Options{URL: srv.URL}, srv.Freeze
		}},
		{"cluster", func(t *testing.T) (Options, func()) {
			c := redistest.StartCluster(t, 3)
			return Options{URL: c.URL, Mode: ModeCluster}, func() {}
		}},
		{"sentinel", func(t *testing.T) (Options, func()) {
			st := redistest.StartSentinel(t)
			return Options{URL: st.URL, Mode: ModeSentinel}, func() {}
		}},
		{"sentinel-down", func(t *testing.T) (Options, func()) {
			st := redistest.StartSentinel(t)
			return Options{URL: st.URL, Mode: ModeSentinel}, st.Stop
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, down := tc.start(t)
			before := goleak.IgnoreCurrent()
			o.Namespace, o.Shards, o.Readers = "leak", 2, 2
			s, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			q := s.Queue()
			if err := q.EnsureGroups(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := q.AddEvent(ctx, &webhook.Event{ID: "e1", Trigger: "push", Project: "a/b", Chain: "e1", At: time.Now(), Body: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			reading := make(chan struct{})
			go func() {
				defer close(reading)
				_, _ = q.ReadEvents(ctx, 1, "c", ">", 10, 5*time.Second)
			}()
			down()
			for i := range 3 {
				c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				_, err := q.AddEvent(c, &webhook.Event{ID: fmt.Sprint("x", i), Trigger: "push", Project: "a/b", Chain: "e1", At: time.Now(), Body: []byte(`{}`)})
				cancel()
				_ = err // each attempt fails; it only makes the pools dial
			}
			if err := s.Close(); err != nil {
				_ = err // each attempt fails; it only makes the pools dial
			}
			<-reading
			settleGoroutines(before)
			goleak.VerifyNone(t, before)
		})
	}
}

// settleGoroutines gives goroutines that end by themselves after Close up
// to two seconds, well within the five-second linger these tests look
// for: go-redis ends a dial under way at Close only after its retries (5
// tries, 100 ms apart), which outlast goleak's own wait (under half a
// second) on a loaded machine.
func settleGoroutines(opts ...goleak.Option) {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if goleak.Find(opts...) == nil {
			return
		}
	}
}
