package webhook

import (
	"encoding/json"
	"time"
)

// Delivery is one (event, hook) pair waiting to be sent.
type Delivery struct {
	EventID string
	HookID  int64
	Trigger string
	// Chain is the event's X-Gitlab-Event-UUID.
	Chain string
	// At is when the event was captured; latency and age are measured from it.
	At time.Time
	// Body is the JSON payload (validated at capture).
	Body json.RawMessage
	// Shared says Body is the event's payload, which the store keeps once
	// per event for all its deliveries; otherwise Body is the delivery's
	// own (a chat message) and is stored with it.
	Shared bool
	// Attempt counts attempts so far, from 1.
	Attempt int
	// Rendered says Body is what a hook's custom webhook template made of
	// the event (a replay of a logged attempt): it is sent as it is.
	Rendered bool
	// Trace is the event's trace context: each attempt's span continues
	// it. Zero for an event captured outside a trace.
	Trace TraceContext
}
