package engine

import (
	"time"

	"testing"

	"go.uber.org/goleak"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// A runtime closed after its deliveries, with Redis up or gone, leaves no
// goroutine behind: its loops, workers, batchers and go-redis pools end.
func TestRuntimeCloseLeavesNoGoroutines(t *testing.T) {
	for _, down := range []bool{false, true} {
		srv := redistest.Start(t)
		before := goleak.IgnoreCurrent()
		rt := newRuntime(t, srv.URL, "c1", pushHook(t, 1, "acme/api", ""))
		if err := rt.Start(); err != nil {
			t.Fatal(err)
		}
		enqueue(t, rt, pushEvent(t, "acme/api"))
		streamsDrained(t, rt)
		if down {
			srv.Stop()
		}
		if err := rt.Close(time.Second); err != nil {
			t.Log(err)
		}
		// go-redis ends a dial under way at Close only after its retries
		// (5 tries, 100 ms apart), which outlast goleak's own wait (under
		// half a second) on a loaded machine: up to two seconds for that.
		for deadline := time.Now().Add(2 * time.Second); goleak.Find(before) != nil && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		goleak.VerifyNone(t, before)
	}
}
