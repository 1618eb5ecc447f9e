package delivery

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// benchReceiver answers every delivery 200 on loopback.
func benchReceiver(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkSend is one delivery attempt outside a trace (no tracing
// configured): headers, the request over a kept-alive connection, the
// answer read.
func BenchmarkSend(b *testing.B) {
	srv := benchReceiver(b)
	s := NewSender()
	cfg := &SendConfig{Timeout: 5 * time.Second, MaxResponseBody: 8 << 10, UserAgent: "GitLab/18.6.0",
		Network: NetworkPolicy{AllowLocal: true}}
	h := &webhook.Hook{ID: 1, Name: "bench", URL: srv.URL + "/hook", Token: "t", EnableSSLVerification: true}
	req := &Request{Hook: h, EventID: "0194f0c2-7d1e-7a51-9a4c-5b1c2d3e4f50", Chain: "0194f0c2-7d1e-7a51-9a4c-5b1c2d3e4f50",
		Trigger: gitlab.Push, Body: []byte(`{"object_kind":"push","ref":"refs/heads/main"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if res := s.Send(context.Background(), cfg, req); res.Status != http.StatusOK {
			b.Fatal(res.Err)
		}
	}
}
