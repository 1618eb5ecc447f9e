package module

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// benchEvent runs an event response through the capture to a real Redis
// (the runtime's workers are not started: the events stay queued) for
// requests made by req.
func benchEvent(b *testing.B, req func() *http.Request) {
	store, err := redisstore.New(redisstore.Options{URL: redistest.Start(b).URL, Namespace: "bench", Readers: 1})
	if err != nil {
		b.Fatal(err)
	}
	rt := engine.NewRuntime(store, "bench", zap.NewNop())
	b.Cleanup(func() { _ = rt.Close(time.Second) })
	c := &Capture{MaxBody: DefaultMaxBody, EnqueueTimeout: caddy.Duration(2 * time.Second), rt: rt, logger: zap.NewNop()}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(benchBody)))
		h.Set(HeaderEvent, "push")
		h.Set(HeaderProject, "acme/app")
		h.Set(HeaderRef, "refs/heads/main")
		w.WriteHeader(http.StatusOK)
		_, err := w.Write(benchBody)
		return err
	})
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		if err := c.ServeHTTP(w, req(), next); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCaptureEvent is an event response outside a trace (no tracing
// configured): the decision, the copy, the event built and queued in Redis.
func BenchmarkCaptureEvent(b *testing.B) {
	r, _ := http.NewRequest(http.MethodPost, "http://example.com/push", nil)
	benchEvent(b, func() *http.Request { return r })
}
