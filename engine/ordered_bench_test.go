package engine

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// BenchmarkOrderedThroughput measures an ordered hook's deliveries per
// second beside the most a receiver that answers after latency allows one
// request at a time: 1 ÷ latency, and what a plain loop POSTing one
// request after the other gets from the same receiver on this machine
// (sequential/s). A backlog of events captured across four shards drains
// to that receiver; the rate is taken from the first arrival to the last.
//
//	go test -run '^$' -bench OrderedThroughput -benchtime 1x ./engine
func BenchmarkOrderedThroughput(b *testing.B) {
	for _, latency := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond} {
		b.Run(latency.String(), func(b *testing.B) {
			events := int(2 * time.Second / latency) // about two seconds of sending
			for range b.N {
				rate := orderedRate(b, latency, events)
				base := sequentialRate(b, latency, events)
				b.ReportMetric(rate, "deliveries/s")
				b.ReportMetric(float64(time.Second/latency), "1/latency")
				b.ReportMetric(base, "sequential/s")
				b.ReportMetric(rate*latency.Seconds(), "ratio")
				b.ReportMetric(rate/base, "ratio_sequential")
			}
		})
	}
}

func orderedRate(b *testing.B, latency time.Duration, events int) float64 {
	b.Helper()
	redis := redistest.Start(b)
	var mu sync.Mutex
	var first, last time.Time
	n := 0
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(latency)
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if n == 0 {
			first = now
		}
		last = now
		if n++; n == events {
			close(done)
		}
	}))
	defer srv.Close()
	h := &webhook.Hook{ID: 1, Name: "ordered", Project: "acme/api", URL: srv.URL, EnableSSLVerification: true, Ordered: true}
	h.Triggers.Add(gitlab.Push)
	rt := orderedRuntime(b, redis.URL, "bench", 4, h)
	defer rt.Close(time.Second)
	if err := rt.Pause(b.Context()); err != nil { // a backlog first, then the drain
		b.Fatal(err)
	}
	for i := range events {
		if err := rt.Enqueue(b.Context(), seqEvent(b, i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	if err := rt.Resume(b.Context()); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Duration(events)*latency*10 + 30*time.Second):
		b.Fatalf("only %d of %d deliveries arrived", n, events)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	return float64(events-1) / last.Sub(first).Seconds()
}

// sequentialRate is what a loop sending one POST after the other gets
// from a receiver that answers after latency.
func sequentialRate(b *testing.B, latency time.Duration, n int) float64 {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(latency) }))
	defer srv.Close()
	start := time.Now()
	for range n {
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"object_kind":"push"}`))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return float64(n) / time.Since(start).Seconds()
}
