package module

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap/zaptest"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/spool"
)

// Redis stopped and started during capture: the events are answered
// normally, spooled, and queued once Redis is back, in order and with
// their own event IDs (so the same Idempotency-Keys).
func TestCaptureSpoolsWhileRedisIsDown(t *testing.T) {
	redis := redistest.Start(t, "--appendonly", "yes")
	c := newCapture(t, redis.URL)
	c.EnqueueTimeout = caddy.Duration(300 * time.Millisecond)
	c.spool = spool.New(t.TempDir(), "cap", 1<<20, zaptest.NewLogger(t))
	t.Cleanup(func() { c.spool.Close() })

	redis.Stop()
	bodies := []string{
		`{"object_kind":"push","ref":"refs/heads/main","n":1}`,
		`{"object_kind":"push","ref":"refs/heads/main","n":2}`,
		`{"object_kind":"push","ref":"refs/heads/main","n":3}`,
	}
	var ids []string
	for _, body := range bodies {
		rec := serve(t, c, nil, func(w http.ResponseWriter, r *http.Request) {
			signal(w.Header(), "push", "acme/api")
			io.WriteString(w, body)
		})
		if rec.Code != 200 || rec.Body.String() != body {
			t.Fatalf("client got %d %q", rec.Code, rec.Body.String())
		}
		assertNoSignals(t, rec.Header())
	}
	if n := c.spool.Pending(); n != 3 {
		t.Fatalf("%d events spooled, want 3", n)
	}

	redis.Restart()
	if err := c.spool.Start(c.rt.Enqueue); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.spool.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	evs := queued(t, c)
	if len(evs) != 3 {
		t.Fatalf("%d events in redis after the replay, want 3", len(evs))
	}
	seen := map[string]bool{}
	for i, ev := range evs {
		if string(ev.Body) != bodies[i] {
			t.Errorf("event %d is %s, want %s (capture order)", i, ev.Body, bodies[i])
		}
		if ev.ID == "" || seen[ev.ID] {
			t.Errorf("event %d has ID %q", i, ev.ID)
		}
		seen[ev.ID] = true
		ids = append(ids, ev.ID)
	}
	t.Logf("replayed event IDs: %v", ids)
}
