// Package hooklog is each hook's delivery log ("Recent events" in GitLab's
// webhooks page): it builds the entries of attempts with their secrets
// masked, records them and reads them back. It sends nothing: deliveries,
// tests and resends are package delivery's, which records their attempts
// here.
package hooklog

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Policy bounds the delivery log ("Recent events") of each hook.
type Policy struct {
	// Retention is how long attempts are kept. Default: 2 days, the
	// "Recent events" window of GitLab's docs.
	Retention time.Duration
	// MaxEntries caps the entries kept per hook. Default: 500.
	MaxEntries int
	// MaxRequestBody caps the payload kept per entry; a larger payload is
	// logged as {"oversize":true} (as GitLab does) and cannot be resent.
	// Default: 256 KiB.
	MaxRequestBody int
}

// Defaults and GitLab's fixed caps of the log.
const (
	DefaultRetention      = 48 * time.Hour
	DefaultMaxEntries     = 500
	DefaultMaxRequestBody = 256 << 10
	// MaxResponseBody, MaxResponseHeaders and MaxHeaderValue are GitLab's
	// caps on what it stores of a response.
	MaxResponseBody    = 8 << 10
	MaxResponseHeaders = 50
	MaxHeaderValue     = 1 << 10
)

// Log entry kinds: a queued delivery's attempt, GitLab's "Test" and
// "Resend Request".
const (
	KindDelivery = "delivery"
	KindTest     = "test"
	KindResend   = "resend"
)

// Redacted replaces secrets in the log, as GitLab.
const Redacted = "[REDACTED]"

// InternalErrorStatus is the response_status of an attempt without a
// response.
const InternalErrorStatus = "internal error"

// withDefaults fills unset fields.
func (p Policy) withDefaults() Policy {
	if p.Retention <= 0 {
		p.Retention = DefaultRetention
	}
	if p.MaxEntries <= 0 {
		p.MaxEntries = DefaultMaxEntries
	}
	if p.MaxRequestBody <= 0 {
		p.MaxRequestBody = DefaultMaxRequestBody
	}
	return p
}

// Attempt is what the log is told of one attempt to send an event to a
// hook: what was sent and what came back.
type Attempt struct {
	Hook    *webhook.Hook
	EventID string
	// Chain is the X-Gitlab-Event-UUID.
	Chain   string
	Trigger gitlab.Trigger
	// Payload is the event's payload; Sent is what went out instead when
	// it was the rendering of the hook's custom webhook template (nil
	// otherwise).
	Payload []byte
	Sent    []byte
	// RequestHeader is what was sent.
	RequestHeader http.Header
	// Status is the receiver's HTTP status, 0 without a response; Header
	// and Body are the response's.
	Status int
	Header http.Header
	Body   []byte
	// Err is what went wrong: without a response, GitLab's "internal
	// error".
	Err      error
	Duration time.Duration
}

// NewEntry builds the log entry of an attempt: the hook's masked URL,
// the request headers with X-Gitlab-Token and custom header values
// replaced by [REDACTED], the payload with its e-mail addresses replaced by
// [REDACTED] as GitLab does (or {"oversize":true} beyond maxBody), and the response capped as GitLab does (8 KiB of body, 50
// headers of at most 1 KiB each) with the hook's URL variable values
// masked back to {name} and any other secret of the hook redacted.
func NewEntry(kind string, a *Attempt, maxBody int) *webhook.LogEntry {
	h, body := a.Hook, a.Payload
	e := &webhook.LogEntry{
		HookID: h.ID, EventID: a.EventID, Chain: a.Chain, Trigger: string(a.Trigger), Kind: kind,
		URL:            h.MaskedURL(),
		RequestHeaders: requestHeaders(h, a.RequestHeader),
		Duration:       a.Duration.Seconds(),
		CreatedAt:      time.Now().UTC(),
	}
	if a.Sent != nil { // what a custom webhook template made of the payload
		body, e.Rendered = a.Sent, true
	}
	// The payload was checked when it was captured (webhook.NewEvent); a
	// template's output is checked here.
	if len(body) > maxBody || (e.Rendered && !json.Valid(body)) {
		e.RequestData, e.Oversize = json.RawMessage(`{"oversize":true}`), true
	} else {
		// Redacted now, so neither Redis nor a resend ever holds the addresses.
		e.RequestData = json.RawMessage(gitlab.RedactEmails(body))
	}
	mask := newMasker(h)
	if a.Err != nil && a.Status == 0 {
		e.ResponseStatus = InternalErrorStatus
		e.InternalError = mask.apply(a.Err.Error())
	} else {
		e.ResponseStatus = strconv.Itoa(a.Status)
		if a.Err != nil {
			e.InternalError = mask.apply(a.Err.Error())
		}
	}
	e.ResponseHeaders = responseHeaders(a.Header, mask)
	e.ResponseBody = mask.body(a.Body, MaxResponseBody)
	return e
}

// requestHeaders flattens what was sent, redacting the token and the
// values of the hook's custom headers.
func requestHeaders(h *webhook.Hook, sent http.Header) map[string]string {
	out := make(map[string]string, len(sent))
	for k, v := range sent {
		out[k] = strings.Join(v, ", ")
		if strings.EqualFold(k, gitlab.HeaderToken) {
			out[k] = Redacted
		}
	}
	for name := range h.CustomHeaders {
		for k := range out {
			if strings.EqualFold(k, name) {
				out[k] = Redacted
			}
		}
	}
	return out
}

// responseHeaders keeps the first 50 headers (by name), values capped at 1
// KiB, names capitalized as GitLab shows them.
func responseHeaders(hdr http.Header, mask *masker) map[string]string {
	names := make([]string, 0, len(hdr))
	for k := range hdr {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(map[string]string, min(len(names), MaxResponseHeaders))
	for _, k := range names {
		if len(out) == MaxResponseHeaders {
			break
		}
		v := mask.apply(strings.Join(hdr[k], ", "))
		out[http.CanonicalHeaderKey(k)] = truncateUTF8(v, MaxHeaderValue)
	}
	return out
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
