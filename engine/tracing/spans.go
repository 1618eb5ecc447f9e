package tracing

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Span names.
const (
	SpanEnqueue = "webhooks.enqueue"
	SpanFanOut  = "webhooks.fan_out"
	SpanDeliver = "webhooks.deliver"
)

// Attribute keys of this plugin's spans; the rest are OpenTelemetry's
// semantic conventions (url.full, http.response.status_code, …).
const (
	AttrEventID     = "webhooks.event.id"
	AttrEventUUID   = "webhooks.event.uuid" // X-Gitlab-Event-UUID
	AttrTrigger     = "webhooks.event.trigger"
	AttrProject     = "webhooks.project"
	AttrGroup       = "webhooks.group"
	AttrHooks       = "webhooks.hooks"
	AttrDeliveries  = "webhooks.deliveries"
	AttrHookID      = "webhooks.hook.id"
	AttrAttempt     = "webhooks.delivery.attempt"
	AttrWebhookUUID = "webhooks.webhook.uuid" // X-Gitlab-Webhook-UUID
)

// Enqueue starts the span of ev's enqueue as a child of the span ctx
// carries (the request's, when Caddy's tracing handler runs before the
// capture) and gives ev the span's trace context, which fan-out and the
// deliveries continue. It returns nil, and leaves ev as it is, when ctx
// carries no span of a trace.
func (s *Spans) Enqueue(ctx context.Context, ev *webhook.Event) trace.Span {
	parent, ok := requestSpan(ctx)
	if !ok {
		return nil
	}
	_, span := s.learn(parent).Start(ctx, SpanEnqueue, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(eventAttributes(ev)...))
	ev.Trace = contextOf(span)
	return span
}

func eventAttributes(ev *webhook.Event) []attribute.KeyValue {
	a := []attribute.KeyValue{
		attribute.String(AttrEventID, ev.ID), attribute.String(AttrEventUUID, ev.Chain),
		attribute.String(AttrTrigger, ev.Trigger),
	}
	if ev.Project != "" {
		return append(a, attribute.String(AttrProject, ev.Project))
	}
	return append(a, attribute.String(AttrGroup, ev.Namespace))
}

// End ends span (nil: nothing), marked failed when err is set.
func End(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// FanOut records the fan-out of an event captured in a trace, from start
// to now, as a child of its enqueue span: how many hooks matched and how
// many deliveries were queued (chat messages included, webhook loops the
// recursion guard stopped left out). Nothing for an event outside a trace,
// or before this process learnt a tracer.
func (s *Spans) FanOut(ev *webhook.Event, hooks, queued int, start time.Time) {
	if ev.Trace.IsZero() {
		return
	}
	tracer := s.tracer()
	if tracer == nil {
		return
	}
	_, span := tracer.Start(resume(context.Background(), ev.Trace), SpanFanOut, trace.WithTimestamp(start),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String(AttrEventID, ev.ID), attribute.String(AttrTrigger, ev.Trigger),
			attribute.Int(AttrHooks, hooks), attribute.Int(AttrDeliveries, queued)))
	span.End()
}

// Attempt is one delivery attempt, as its span describes it.
type Attempt struct {
	Hook    *webhook.Hook
	EventID string
	// Number counts the attempts of the delivery, from 1.
	Number int
}

// Deliver starts the span of one delivery attempt: a child of the event's
// trace context tc, or of the span ctx carries when tc is zero (a test or
// resend made through a traced API request). It returns the context the
// request goes out with: carrying the new span, or, in a process that has
// learnt no tracer yet, tc alone, so the receiver still joins the trace.
// The span is nil when none is recorded; outside a trace, ctx comes back
// as it is.
func (s *Spans) Deliver(ctx context.Context, tc webhook.TraceContext, a Attempt) (context.Context, trace.Span) {
	var tracer trace.Tracer
	if tc.IsZero() {
		parent, ok := requestSpan(ctx)
		if !ok {
			return ctx, nil
		}
		tracer = s.learn(parent)
	} else {
		ctx = resume(ctx, tc)
		if tracer = s.tracer(); tracer == nil {
			return ctx, nil
		}
	}
	return tracer.Start(ctx, SpanDeliver, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.Int64(AttrHookID, a.Hook.ID), attribute.String("url.full", a.Hook.MaskedURL()),
		attribute.String("http.request.method", http.MethodPost), attribute.String(AttrEventID, a.EventID),
		attribute.Int(AttrAttempt, a.Number)))
}

// EndDeliver ends an attempt's span (nil: nothing) with its outcome: the
// receiver's status (0: none), the X-Gitlab-Webhook-UUID sent, and the
// internal error, which must already be fit to show (no secrets).
func EndDeliver(span trace.Span, status int, webhookUUID string, err error) {
	if span == nil {
		return
	}
	if webhookUUID != "" {
		span.SetAttributes(attribute.String(AttrWebhookUUID, webhookUUID))
	}
	switch {
	case err != nil:
		span.SetAttributes(attribute.String("error.type", "internal_error"))
		span.SetStatus(codes.Error, err.Error())
	case status < 200 || status > 299:
		span.SetAttributes(attribute.Int("http.response.status_code", status), attribute.String("error.type", strconv.Itoa(status)))
		span.SetStatus(codes.Error, "HTTP "+strconv.Itoa(status))
	default:
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	span.End()
}

// Inject writes the trace context ctx carries into h as traceparent and
// tracestate; nothing outside a trace.
func Inject(ctx context.Context, h http.Header) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		w3c.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// TraceID is the ID of the trace ctx carries, for logs; "" outside one.
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}
