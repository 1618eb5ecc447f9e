package module

import (
	"context"
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkCaptureEventTraced is BenchmarkCaptureEvent under the span
// Caddy's tracing handler gives a request: the enqueue span (recorded in
// memory) and the trace context stored with the event.
func BenchmarkCaptureEventTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("caddy").Start(context.Background(), "handler", trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://example.com/push", nil)
	benchEvent(b, func() *http.Request { return r })
}
