package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

// Event is one captured event: what the events stream and the spool hold.
type Event struct {
	// ID is the event's UUID, fixed at capture.
	ID string
	// Trigger is the gitlab.Trigger, e.g. "push".
	Trigger string
	// Project is the full path of the project the event belongs to; empty
	// for group-only events.
	Project string
	// Namespace is the full path of the group of a group-only event.
	Namespace string
	// Ref is the git ref of a push or tag push.
	Ref string
	// Chain is the X-Gitlab-Event-UUID: inherited from the request that
	// caused the event when it carried one, else the event's own ID.
	Chain string
	// At is when the event was captured.
	At time.Time
	// Body is the JSON payload.
	Body []byte
	// Trace is the trace context of the span the event was queued under
	// (Caddy's tracing handler ran before the capture); zero otherwise.
	Trace TraceContext
}

// Signals are what the app announced about an event, from its response
// headers (X-Webhook-Event, X-Webhook-Project, X-Webhook-Namespace,
// X-Webhook-Ref) or from capture rules.
type Signals struct {
	Event     string
	Project   string
	Namespace string
	Ref       string
}

// RejectError says why an event was refused. Reason is a short, fixed label
// (used as a metric label); the error text is for logs.
type RejectError struct {
	Reason string
	Err    error
}

func (e *RejectError) Error() string { return "event rejected (" + e.Reason + "): " + e.Err.Error() }
func (e *RejectError) Unwrap() error { return e.Err }

func reject(reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Rejection reasons.
const (
	RejectTrigger  = "unknown_trigger"
	RejectScope    = "bad_scope"
	RejectRef      = "missing_ref"
	RejectPayload  = "invalid_payload"
	RejectTooLarge = "too_large"
	RejectEncoding = "unsupported_encoding"
)

// pathSegment is GitLab's rule for a group or project path component.
var pathSegment = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*$`)

// NewEvent validates what the app announced and builds the event. chain is
// the X-Gitlab-Event-UUID of the request that caused it, if any.
func NewEvent(sig Signals, body []byte, chain string, now time.Time) (*Event, error) {
	trig, ok := gitlab.ParseTrigger(sig.Event)
	if !ok {
		return nil, reject(RejectTrigger, "unknown event %q", sig.Event)
	}
	ev := &Event{Trigger: string(trig), Ref: strings.TrimSpace(sig.Ref), At: now}
	var err error
	if ev.Namespace, err = cleanPath(sig.Namespace); err != nil {
		return nil, reject(RejectScope, "namespace: %v", err)
	}
	project, err := cleanPath(sig.Project)
	if err != nil {
		return nil, reject(RejectScope, "project: %v", err)
	}
	switch {
	case trig.GroupOnly():
		if ev.Namespace == "" {
			return nil, reject(RejectScope, "%s events belong to a group: the namespace (group path) is missing", trig)
		}
	case project == "":
		return nil, reject(RejectScope, "%s events belong to a project: the project path is missing", trig)
	case !strings.Contains(project, "/") && ev.Namespace != "":
		ev.Project = ev.Namespace + "/" + project
	case !strings.Contains(project, "/"):
		return nil, reject(RejectScope, "project %q has no namespace: give its full path", project)
	case ev.Namespace != "" && !strings.HasPrefix(strings.ToLower(project), strings.ToLower(ev.Namespace)+"/"):
		return nil, reject(RejectScope, "project %q is not in namespace %q", project, ev.Namespace)
	default:
		ev.Project = project
	}
	if !trig.GroupOnly() { // the project's own group, whatever prefix was given
		ev.Namespace = ev.Project[:strings.LastIndexByte(ev.Project, '/')]
	}

	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !json.Valid(body) {
		return nil, reject(RejectPayload, "the payload is not a JSON object")
	}
	if at := InvalidUnicode(body); at >= 0 {
		return nil, reject(RejectPayload, "the payload is not valid UTF-8 (at byte %d)", at)
	}
	ev.Body = body
	if (trig == gitlab.Push || trig == gitlab.TagPush) && ev.Ref == "" {
		var p struct {
			Ref string `json:"ref"`
		}
		_ = json.Unmarshal(body, &p)
		if ev.Ref = p.Ref; ev.Ref == "" {
			return nil, reject(RejectRef, "%s events need a ref (X-Webhook-Ref or \"ref\" in the payload)", trig)
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("generating event id: %w", err)
	}
	ev.ID = id.String()
	ev.Chain = ev.ID
	if c, err := uuid.Parse(strings.TrimSpace(chain)); err == nil {
		ev.Chain = c.String()
	}
	return ev, nil
}

// cleanPath checks a full group or project path ("acme/platform/api").
func cleanPath(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p == "" {
		return "", nil
	}
	if len(p) > 1024 {
		return "", fmt.Errorf("path is too long")
	}
	for _, seg := range strings.Split(p, "/") {
		if !pathSegment.MatchString(seg) || seg == "." || seg == ".." {
			return "", fmt.Errorf("%q is not a valid path", p)
		}
	}
	return p, nil
}

// idempotencyNS is the UUIDv5 namespace of Idempotency-Key values.
var idempotencyNS = uuid.MustParse("3f0f7c5e-8a4f-4e57-9a43-6f1f8f0b2c11")

// IdempotencyKey is stable per (event, hook): the same on every retry,
// crash redelivery, fan-out replay and resend, so receivers can dedupe.
func IdempotencyKey(eventID string, hookID int64) string {
	return uuid.NewSHA1(idempotencyNS, fmt.Appendf(nil, "%s:%d", eventID, hookID)).String()
}

// ChatIdempotencyKey is the Idempotency-Key of a chat message: per event,
// integration and channel, since each channel's message is a delivery of
// its own; without a channel it is IdempotencyKey.
func ChatIdempotencyKey(eventID string, hookID int64, channel string) string {
	if channel == "" {
		return IdempotencyKey(eventID, hookID)
	}
	return uuid.NewSHA1(idempotencyNS, fmt.Appendf(nil, "%s:%d:%s", eventID, hookID, channel)).String()
}
