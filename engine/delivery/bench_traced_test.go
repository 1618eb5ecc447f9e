package delivery

import (
	"context"
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/engine/tracing"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// BenchmarkSendTraced is BenchmarkSend for an event captured in a trace:
// the attempt's span (recorded in memory) and the traceparent header.
func BenchmarkSendTraced(b *testing.B) {
	srv := benchReceiver(b)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	defer tp.Shutdown(context.Background())
	spans := new(tracing.Spans)
	ctx, span := tp.Tracer("caddy").Start(context.Background(), "handler")
	ev := &webhook.Event{ID: "0194f0c2-7d1e-7a51-9a4c-5b1c2d3e4f50", Trigger: "push", Project: "acme/api"}
	tracing.End(spans.Enqueue(ctx, ev), nil)
	span.End()

	s := &Sender{spans: spans}
	cfg := &SendConfig{Timeout: 5 * time.Second, MaxResponseBody: 8 << 10, UserAgent: "GitLab/18.6.0",
		Network: NetworkPolicy{AllowLocal: true}}
	h := &webhook.Hook{ID: 1, Name: "bench", URL: srv.URL + "/hook", Token: "t", EnableSSLVerification: true}
	req := &Request{Hook: h, EventID: ev.ID, Chain: ev.ID, Trigger: gitlab.Push,
		Body: []byte(`{"object_kind":"push","ref":"refs/heads/main"}`), Attempt: 1, Trace: ev.Trace}
	b.ReportAllocs()
	for b.Loop() {
		if res := s.Send(context.Background(), cfg, req); res.Status != http.StatusOK {
			b.Fatal(res.Err)
		}
	}
}

// BenchmarkLogSuccess is the log line of a successful attempt when debug
// logging is off (the usual case): nothing to build.
func BenchmarkLogSuccess(b *testing.B) {
	d := &Deliverer{log: zap.NewExample(zap.IncreaseLevel(zap.InfoLevel))}
	req := &Request{Hook: &webhook.Hook{ID: 1, Name: "bench", URL: "https://r.example/hook?key=x"}, EventID: "e", Chain: "e",
		Trigger: gitlab.Push, At: time.Now(), Attempt: 1}
	res := &Result{Status: 200, Duration: time.Millisecond, WebhookUUID: "u"}
	b.ReportAllocs()
	for b.Loop() {
		d.logResult(hooklog.KindDelivery, req, res)
	}
}
