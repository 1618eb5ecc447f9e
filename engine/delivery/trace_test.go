package delivery

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/grt-continuation/caddy-webhooks/engine/tracing"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// A delivery of an event captured in a trace is a span of that trace, and
// the receiver gets the span's context as traceparent (and the event's
// tracestate), unless its hook turned the headers off; a delivery outside
// a trace sends neither.
func TestSendCarriesTheTraceContextToTheReceiver(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	spans := new(tracing.Spans)
	// The capture: an enqueue span under a request's, which teaches spans
	// the provider.
	reqCtx, reqSpan := tp.Tracer("caddy").Start(context.Background(), "handler")
	ev := &webhook.Event{ID: "ev", Trigger: "push", Project: "acme/api", Chain: "ev"}
	tracing.End(spans.Enqueue(reqCtx, ev), nil)
	reqSpan.End()
	ev.Trace.State = "vendor=1"

	srv, got := receiver(t)
	s := &Sender{spans: spans}
	send := func(h *webhook.Hook, tc webhook.TraceContext) (Result, received) {
		req := &Request{Hook: h, EventID: ev.ID, Chain: ev.Chain, Trigger: gitlab.Push, Body: []byte(`{}`), Attempt: 1, Trace: tc}
		res := s.Send(context.Background(), localSend(), req)
		if !res.Success() {
			t.Fatalf("send: %+v", res)
		}
		return res, <-got
	}

	res, r := send(&webhook.Hook{ID: 1, URL: srv.URL, EnableSSLVerification: true}, ev.Trace)
	spansNow := rec.Ended()
	d := spansNow[len(spansNow)-1]
	want := "00-" + d.SpanContext().TraceID().String() + "-" + d.SpanContext().SpanID().String() + "-01"
	if d.Name() != tracing.SpanDeliver || r.header.Get("traceparent") != want || r.header.Get("tracestate") != "vendor=1" {
		t.Errorf("receiver got traceparent %q tracestate %q, want %q (span %s)", r.header.Get("traceparent"),
			r.header.Get("tracestate"), want, d.Name())
	}
	if res.TraceID != d.SpanContext().TraceID().String() || res.RequestHeader.Get("traceparent") != want ||
		res.WebhookUUID == "" || res.WebhookUUID != r.header.Get(gitlab.HeaderWebhookUUID) {
		t.Errorf("result: trace %q, logged traceparent %q, webhook UUID %q (sent %q)", res.TraceID,
			res.RequestHeader.Get("traceparent"), res.WebhookUUID, r.header.Get(gitlab.HeaderWebhookUUID))
	}

	before := len(rec.Ended())
	_, r = send(&webhook.Hook{ID: 2, URL: srv.URL, EnableSSLVerification: true, NoTraceContext: true}, ev.Trace)
	if r.header.Get("traceparent") != "" || r.header.Get("tracestate") != "" || len(rec.Ended()) != before+1 {
		t.Errorf("hook without trace context headers: got %q, %d spans recorded (want 1)", r.header.Get("traceparent"), len(rec.Ended())-before)
	}

	before = len(rec.Ended())
	res, r = send(&webhook.Hook{ID: 3, URL: srv.URL, EnableSSLVerification: true}, webhook.TraceContext{})
	if r.header.Get("traceparent") != "" || res.TraceID != "" || len(rec.Ended()) != before {
		t.Errorf("outside a trace: traceparent %q, trace %q, %d spans", r.header.Get("traceparent"), res.TraceID, len(rec.Ended())-before)
	}
	if p := d.Parent(); p.TraceID() != trace.SpanContextFromContext(reqCtx).TraceID() {
		t.Errorf("delivery span in trace %s, want the request's", p.TraceID())
	}
}
