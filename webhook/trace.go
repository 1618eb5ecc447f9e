package webhook

// TraceContext is the W3C trace context (traceparent and tracestate
// headers) of the span an event was queued under. It travels with the
// event and its deliveries through Redis, so fan-out and every delivery
// attempt, later and maybe in another process, continue that trace. The
// zero value means the event was not captured in a trace.
type TraceContext struct {
	// Parent is the traceparent value, e.g.
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.
	Parent string
	// State is the tracestate value; usually empty.
	State string
}

// IsZero reports whether there is no trace context.
func (t TraceContext) IsZero() bool { return t.Parent == "" }
