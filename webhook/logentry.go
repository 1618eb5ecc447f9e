package webhook

import (
	"encoding/json"
	"time"
)

// LogEntry is one delivery attempt in a hook's log, as GitLab's WebHookLog:
// what was sent (secrets already redacted by the caller) and what came back.
type LogEntry struct {
	// ID is the entry's number, unique per hook and increasing with time
	// (stream entry "<ms>-<seq>" as ms*1000+seq). Set when read.
	ID int64 `json:"-"`
	// HookID is the hook the attempt went to.
	HookID int64 `json:"hook"`
	// EventID is the event's UUID; with HookID it gives the Idempotency-Key.
	EventID string `json:"event"`
	// Chain is the X-Gitlab-Event-UUID that was sent.
	Chain string `json:"chain,omitempty"`
	// Trigger is the gitlab.Trigger ("push").
	Trigger string `json:"trigger"`
	// Kind is "delivery", "test" or "resend".
	Kind string `json:"kind"`
	// URL is the hook's masked URL template.
	URL string `json:"url"`
	// RequestHeaders are the headers sent, secrets replaced by [REDACTED].
	RequestHeaders map[string]string `json:"req_headers"`
	// RequestData is the payload sent, or {"oversize":true} (Oversize) when
	// it was larger than the log keeps.
	RequestData json.RawMessage `json:"req_data"`
	Oversize    bool            `json:"oversize,omitempty"`
	// Rendered says RequestData is the hook's custom webhook template
	// rendered, not the event's payload: a resend sends it as it is.
	Rendered bool `json:"rendered,omitempty"`
	// ResponseHeaders and ResponseBody are the receiver's, capped.
	ResponseHeaders map[string]string `json:"resp_headers"`
	ResponseBody    string            `json:"resp_body"`
	// ResponseStatus is the HTTP status as a string, or "internal error"
	// when there was no response.
	ResponseStatus string `json:"status"`
	// Duration is the request's execution time in seconds.
	Duration float64 `json:"duration"`
	// InternalError says why an attempt without a response failed.
	InternalError string `json:"error,omitempty"`
	// CreatedAt is when the attempt finished.
	CreatedAt time.Time `json:"at"`
}

// LogRef is an entry's ID and response status.
type LogRef struct {
	ID     int64
	Status string
}
