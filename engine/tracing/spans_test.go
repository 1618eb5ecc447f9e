package tracing

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// provider is an SDK tracer provider recording every span in memory, as
// Caddy's tracing handler's records them for its exporter.
func provider(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

// request is the span Caddy's tracing handler puts in a request's context.
func request(tp trace.TracerProvider) (context.Context, trace.Span) {
	return tp.Tracer("caddy").Start(context.Background(), "handler", trace.WithSpanKind(trace.SpanKindServer))
}

func attr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func ended(t *testing.T, rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	t.Helper()
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// An event captured under a request's span: the enqueue is its child, the
// event keeps the enqueue's context, and the fan-out and each attempt
// continue it, in this process or one that only learnt the provider from
// another request.
func TestSpansFollowAnEventFromRequestToReceiver(t *testing.T) {
	tp, rec := provider(t)
	var spans Spans
	ctx, req := request(tp)
	ev := &webhook.Event{ID: "ev-1", Trigger: "push", Project: "acme/api", Chain: "chain-1"}
	enq := spans.Enqueue(ctx, ev)
	if enq == nil || ev.Trace.IsZero() {
		t.Fatalf("no enqueue span (%v) or trace context (%+v) under a request's span", enq, ev.Trace)
	}
	End(enq, nil)
	req.End()
	e := ended(t, rec, SpanEnqueue)[0]
	if e.Parent().SpanID() != req.SpanContext().SpanID() || e.SpanKind() != trace.SpanKindProducer ||
		attr(e, AttrEventID).AsString() != "ev-1" || attr(e, AttrProject).AsString() != "acme/api" {
		t.Errorf("enqueue span: parent %s (request %s), kind %s, attributes %v", e.Parent().SpanID(), req.SpanContext().SpanID(), e.SpanKind(), e.Attributes())
	}
	if want := "00-" + e.SpanContext().TraceID().String() + "-" + e.SpanContext().SpanID().String() + "-01"; ev.Trace.Parent != want {
		t.Errorf("event's traceparent %q, want the enqueue span's %q", ev.Trace.Parent, want)
	}

	start := time.Now()
	spans.FanOut(ev, 3, 2, start)
	f := ended(t, rec, SpanFanOut)[0]
	if f.Parent().SpanID() != e.SpanContext().SpanID() || f.SpanContext().TraceID() != e.SpanContext().TraceID() ||
		attr(f, AttrHooks).AsInt64() != 3 || attr(f, AttrDeliveries).AsInt64() != 2 || !f.StartTime().Equal(start) {
		t.Errorf("fan-out span: parent %s, attributes %v, start %v", f.Parent().SpanID(), f.Attributes(), f.StartTime())
	}

	hook := &webhook.Hook{ID: 7, URL: "https://user:pw@ci.example.com/hook?token=s3cret"}
	dctx, span := spans.Deliver(context.Background(), ev.Trace, Attempt{Hook: hook, EventID: ev.ID, Number: 2})
	h := http.Header{}
	Inject(dctx, h)
	EndDeliver(span, 503, "wh-uuid", nil)
	d := ended(t, rec, SpanDeliver)[0]
	if d.Parent().SpanID() != e.SpanContext().SpanID() || d.SpanKind() != trace.SpanKindClient ||
		attr(d, AttrHookID).AsInt64() != 7 || attr(d, AttrAttempt).AsInt64() != 2 ||
		attr(d, "http.response.status_code").AsInt64() != 503 || attr(d, AttrWebhookUUID).AsString() != "wh-uuid" ||
		d.Status().Code != codes.Error {
		t.Errorf("delivery span: parent %s, kind %s, attributes %v, status %v", d.Parent().SpanID(), d.SpanKind(), d.Attributes(), d.Status())
	}
	if u := attr(d, "url.full").AsString(); u != hook.MaskedURL() || u == hook.URL {
		t.Errorf("url.full %q, want the masked URL %q", u, hook.MaskedURL())
	}
	if want := "00-" + d.SpanContext().TraceID().String() + "-" + d.SpanContext().SpanID().String() + "-01"; h.Get("traceparent") != want {
		t.Errorf("traceparent sent %q, want the attempt's %q", h.Get("traceparent"), want)
	}
	if TraceID(dctx) != e.SpanContext().TraceID().String() {
		t.Errorf("TraceID %q, want %s", TraceID(dctx), e.SpanContext().TraceID())
	}

	// Another process that has not seen a traced request records nothing,
	// but the receiver still joins the trace under the enqueue span.
	var other Spans
	octx, none := other.Deliver(context.Background(), ev.Trace, Attempt{Hook: hook, EventID: ev.ID, Number: 3})
	h = http.Header{}
	Inject(octx, h)
	if none != nil || h.Get("traceparent") != ev.Trace.Parent {
		t.Errorf("without a tracer: span %v, traceparent %q, want none and the event's %q", none, h.Get("traceparent"), ev.Trace.Parent)
	}
}

// A tracestate the request had travels with the event.
func TestSpansKeepTheTraceState(t *testing.T) {
	tp, _ := provider(t)
	ts, _ := trace.ParseTraceState("vendor=abc")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2},
		TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true})
	ctx, req := tp.Tracer("caddy").Start(trace.ContextWithRemoteSpanContext(context.Background(), sc), "handler")
	defer req.End()
	var spans Spans
	ev := &webhook.Event{ID: "e"}
	End(spans.Enqueue(ctx, ev), nil)
	if ev.Trace.State != "vendor=abc" {
		t.Errorf("trace context %+v, want the tracestate kept", ev.Trace)
	}
}

// A test or resend made through a traced API request is a span of that
// request's trace.
func TestSpansOfManualAttemptsJoinTheRequest(t *testing.T) {
	tp, rec := provider(t)
	ctx, req := request(tp)
	var spans Spans
	dctx, span := spans.Deliver(ctx, webhook.TraceContext{}, Attempt{Hook: &webhook.Hook{ID: 1, URL: "https://x.test/"}, Number: 1})
	EndDeliver(span, 200, "", nil)
	req.End()
	if span == nil || TraceID(dctx) != req.SpanContext().TraceID().String() {
		t.Fatalf("span %v in trace %q", span, TraceID(dctx))
	}
	if d := ended(t, rec, SpanDeliver)[0]; d.Parent().SpanID() != req.SpanContext().SpanID() || d.Status().Code == codes.Error {
		t.Errorf("delivery span parent %s, status %v", d.Parent().SpanID(), d.Status())
	}
}

// Outside a trace (no tracing handler): nothing is recorded, the event
// gets no trace context, no header is sent, and nothing is allocated.
func TestSpansOutsideATraceCostNothing(t *testing.T) {
	tp, rec := provider(t)
	var spans Spans
	ctx, req := request(tp) // the provider is known...
	End(spans.Enqueue(ctx, &webhook.Event{ID: "traced"}), nil)
	req.End()
	rec.Reset()

	// ...but this request and this event are outside any trace.
	plain := context.Background()
	ev := &webhook.Event{ID: "e"}
	hook := &webhook.Hook{ID: 1, URL: "https://x.test/"}
	h := http.Header{}
	allocs := testing.AllocsPerRun(100, func() {
		End(spans.Enqueue(plain, ev), nil)
		dctx, span := spans.Deliver(plain, ev.Trace, Attempt{Hook: hook, EventID: ev.ID, Number: 1})
		Inject(dctx, h)
		_ = TraceID(dctx)
		EndDeliver(span, 200, "u", nil)
		spans.FanOut(ev, 1, 1, time.Time{})
		_ = Detach(plain)
	})
	if allocs != 0 || !ev.Trace.IsZero() || len(h) != 0 || len(rec.Ended()) != 0 {
		t.Errorf("outside a trace: %v allocations, trace context %+v, headers %v, %d spans", allocs, ev.Trace, h, len(rec.Ended()))
	}
}

// BenchmarkOutsideATrace is what capture and delivery pay for tracing when
// no tracing is configured: the lookups that find no span.
func BenchmarkOutsideATrace(b *testing.B) {
	var spans Spans
	ctx := context.Background()
	ev := &webhook.Event{ID: "e"}
	hook := &webhook.Hook{ID: 1, URL: "https://x.test/"}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		End(spans.Enqueue(Detach(ctx), ev), nil)
		dctx, span := spans.Deliver(ctx, ev.Trace, Attempt{Hook: hook, EventID: ev.ID, Number: 1})
		Inject(dctx, h)
		EndDeliver(span, 200, "", nil)
		_ = TraceID(dctx)
	}
}
