// Package tracing records an event's life as OpenTelemetry spans in the
// trace of the request that caused it: the enqueue at capture, the fan-out
// (the hooks matched) and each delivery attempt, whose W3C trace context
// (traceparent, tracestate) also goes to the receiver, so a receiver that
// traces joins the same trace.
//
// The spans go to the tracer provider of Caddy's tracing handler. Caddy
// keeps it to itself, but the handler puts the request's span in the
// request's context, and a span knows its provider: Spans learns it from
// the spans of the requests it sees, and uses it for the work that runs
// outside any request (fan-out, deliveries), later and maybe in another
// process that got the event's trace context through Redis. Without
// Caddy's tracing, requests carry no span, events no trace context, and
// nothing is recorded or allocated.
package tracing

import (
	"context"
	"reflect"
	"sync/atomic"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// instrumentation names this plugin as the instrumentation library of its
// spans.
const instrumentation = "github.com/grt-continuation/caddy-webhooks"

// w3c reads and writes traceparent and tracestate: what is stored with an
// event and sent to receivers is W3C trace context, whichever propagators
// Caddy's tracing handler reads requests with.
var w3c propagation.TraceContext

// Spans is the source of one runtime's spans. The zero value is ready and
// records nothing until it has seen a span of Caddy's tracing handler; a
// nil *Spans learns nothing, and records spans only under a request's
// span.
type Spans struct {
	current atomic.Pointer[tracerOf]
}

// tracerOf is a tracer provider and this plugin's tracer from it.
type tracerOf struct {
	provider trace.TracerProvider
	tracer   trace.Tracer
}

// learn returns the tracer of span's provider and keeps it for the spans of
// background work. Caddy keeps one provider while any config uses tracing,
// so this rarely changes.
func (s *Spans) learn(span trace.Span) trace.Tracer {
	tp := span.TracerProvider()
	if s == nil {
		return tp.Tracer(instrumentation)
	}
	if cur := s.current.Load(); cur != nil && sameProvider(cur.provider, tp) {
		return cur.tracer
	}
	t := &tracerOf{provider: tp, tracer: tp.Tracer(instrumentation)}
	s.current.Store(t)
	return t.tracer
}

// sameProvider compares two providers without panicking on a type that
// cannot be compared (every provider we know is a pointer).
func sameProvider(a, b trace.TracerProvider) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta != nil && ta.Comparable() && a == b
}

// tracer is the tracer learnt last; nil before any (and for a nil s).
func (s *Spans) tracer() trace.Tracer {
	if s == nil {
		return nil
	}
	if t := s.current.Load(); t != nil {
		return t.tracer
	}
	return nil
}

// requestSpan returns the span ctx carries when it belongs to a trace.
func requestSpan(ctx context.Context) (trace.Span, bool) {
	span := trace.SpanFromContext(ctx)
	return span, span.SpanContext().IsValid()
}

// Detach returns a context for work that outlives the request ctx belongs
// to (it is not cancelled with it) and carries the request's span, if any,
// and nothing else: context.Background() for a request outside a trace.
func Detach(ctx context.Context) context.Context {
	if span, ok := requestSpan(ctx); ok {
		return trace.ContextWithSpan(context.Background(), span)
	}
	return context.Background()
}

// contextOf is the stored form of span's context.
func contextOf(span trace.Span) webhook.TraceContext {
	var c carrier
	w3c.Inject(trace.ContextWithSpanContext(context.Background(), span.SpanContext()), &c)
	return webhook.TraceContext(c)
}

// resume returns ctx with tc as its remote parent; ctx when tc is zero or
// not a valid traceparent.
func resume(ctx context.Context, tc webhook.TraceContext) context.Context {
	if tc.IsZero() {
		return ctx
	}
	c := carrier(tc)
	return w3c.Extract(ctx, &c)
}

// carrier holds a trace context as propagation's TextMapCarrier.
type carrier webhook.TraceContext

func (c *carrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.Parent
	case "tracestate":
		return c.State
	}
	return ""
}

func (c *carrier) Set(key, value string) {
	switch key {
	case "traceparent":
		c.Parent = value
	case "tracestate":
		c.State = value
	}
}

func (c *carrier) Keys() []string { return []string{"traceparent", "tracestate"} }
