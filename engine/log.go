package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// LogPolicy bounds the delivery log ("Recent events") of each hook.
type LogPolicy struct {
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
	DefaultLogRetention      = 48 * time.Hour
	DefaultLogMaxEntries     = 500
	DefaultLogMaxRequestBody = 256 << 10
	// LogMaxResponseBody, LogMaxResponseHeaders and LogMaxHeaderValue are
	// GitLab's caps on what it stores of a response.
	LogMaxResponseBody    = 8 << 10
	LogMaxResponseHeaders = 50
	LogMaxHeaderValue     = 1 << 10
	// LatestEventTTL is how long the latest event of each trigger is kept
	// per project as the sample of test requests.
	LatestEventTTL = 30 * 24 * time.Hour
)

// Log entry kinds.
const (
	LogDelivery = "delivery"
	LogTest     = "test"
	LogResend   = "resend"
)

// Redacted replaces secrets in the log, as GitLab.
const Redacted = "[REDACTED]"

// InternalErrorStatus is the response_status of an attempt without a
// response.
const InternalErrorStatus = "internal error"

// withDefaults fills unset fields.
func (p LogPolicy) withDefaults() LogPolicy {
	if p.Retention <= 0 {
		p.Retention = DefaultLogRetention
	}
	if p.MaxEntries <= 0 {
		p.MaxEntries = DefaultLogMaxEntries
	}
	if p.MaxRequestBody <= 0 {
		p.MaxRequestBody = DefaultLogMaxRequestBody
	}
	return p
}

func (r *Runtime) logPolicy() LogPolicy {
	if cfg := r.cfg.Load(); cfg != nil {
		return cfg.Log.withDefaults()
	}
	return LogPolicy{}.withDefaults()
}

// appendLog builds and stores one entry (tests and resends; deliveries
// store theirs with the settle). It returns the entry's ID, 0 when it could
// not be stored: a failure is logged, never fatal.
func (r *Runtime) appendLog(ctx context.Context, kind string, h *Hook, eventID, chain, trig string, body []byte, res *Result) int64 {
	e := r.logEntry(kind, h, eventID, chain, trig, body, res)
	id, err := r.store.AppendLog(ctx, e, r.logLimits())
	if err != nil {
		r.log.Warn("recording a delivery attempt in the hook's log failed", zap.Int64("hook_id", h.ID),
			zap.String("event", eventID), zap.String("kind", kind), zap.Error(err))
		return 0
	}
	return id
}

// logEntry builds an attempt's log entry under the current log policy.
func (r *Runtime) logEntry(kind string, h *Hook, eventID, chain, trig string, body []byte, res *Result) *redisstore.LogEntry {
	return NewLogEntry(kind, h, eventID, chain, trig, body, res, r.logPolicy().MaxRequestBody)
}

// logLimits bound each hook's log under the current log policy.
func (r *Runtime) logLimits() redisstore.LogLimits {
	pol := r.logPolicy()
	return redisstore.LogLimits{Retention: pol.Retention, MaxEntries: pol.MaxEntries}
}

// NewLogEntry builds the log entry of an attempt: the hook's masked URL,
// the request headers with X-Gitlab-Token and custom header values
// replaced by [REDACTED], the payload with its e-mail addresses replaced by
// [REDACTED] as GitLab does (or {"oversize":true} beyond maxBody), and the response capped as GitLab does (8 KiB of body, 50
// headers of at most 1 KiB each) with the hook's URL variable values
// masked back to {name} and any other secret of the hook redacted.
func NewLogEntry(kind string, h *Hook, eventID, chain, trig string, body []byte, res *Result, maxBody int) *redisstore.LogEntry {
	e := &redisstore.LogEntry{
		HookID: h.ID, EventID: eventID, Chain: chain, Trigger: trig, Kind: kind,
		URL:            h.MaskedURL(),
		RequestHeaders: requestHeaders(h, res.RequestHeader),
		Duration:       res.Duration.Seconds(),
		CreatedAt:      time.Now().UTC(),
	}
	if len(body) > maxBody || !json.Valid(body) {
		e.RequestData, e.Oversize = json.RawMessage(`{"oversize":true}`), true
	} else {
		// Redacted now, so neither Redis nor a resend ever holds the addresses.
		e.RequestData = json.RawMessage(gitlab.RedactEmails(body))
	}
	mask := newMasker(h)
	if res.Err != nil && res.Status == 0 {
		e.ResponseStatus = InternalErrorStatus
		e.InternalError = mask.apply(res.Err.Error())
	} else {
		e.ResponseStatus = strconv.Itoa(res.Status)
		if res.Err != nil {
			e.InternalError = mask.apply(res.Err.Error())
		}
	}
	e.ResponseHeaders = responseHeaders(res.Header, mask)
	e.ResponseBody = mask.body(res.Body, LogMaxResponseBody)
	return e
}

// requestHeaders flattens what was sent, redacting the token and the
// values of the hook's custom headers.
func requestHeaders(h *Hook, sent http.Header) map[string]string {
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
func responseHeaders(hdr http.Header, mask masker) map[string]string {
	names := make([]string, 0, len(hdr))
	for k := range hdr {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(map[string]string, min(len(names), LogMaxResponseHeaders))
	for _, k := range names {
		if len(out) == LogMaxResponseHeaders {
			break
		}
		v := mask.apply(strings.Join(hdr[k], ", "))
		out[http.CanonicalHeaderKey(k)] = truncateUTF8(v, LogMaxHeaderValue)
	}
	return out
}

// masker replaces a hook's secrets in text a receiver sent back: URL
// variable values become {name} (as GitLab), the token and custom header
// values [REDACTED].
// masker replaces a hook's secrets in what the log keeps; built once per
// entry, since a Replacer is costly to build.
type masker struct {
	secrets []string // longest first
	r       *strings.Replacer
}

func newMasker(h *Hook) masker {
	type sub struct{ secret, with string }
	var subs []sub
	for k, v := range h.URLVariables {
		subs = append(subs, sub{v, "{" + k + "}"})
	}
	if h.Token != "" {
		subs = append(subs, sub{h.Token, Redacted})
	}
	for _, v := range h.CustomHeaders {
		subs = append(subs, sub{v, Redacted})
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.Slice(subs, func(i, j int) bool { return len(subs[i].secret) > len(subs[j].secret) })
	var m masker
	var pairs []string
	for _, s := range subs {
		if s.secret != "" {
			pairs = append(pairs, s.secret, s.with)
			m.secrets = append(m.secrets, s.secret)
		}
	}
	if len(pairs) > 0 {
		m.r = strings.NewReplacer(pairs...)
	}
	return m
}

// MaskSecrets replaces the hook's secrets in text a receiver sent back, as
// the log does (URL variable values → {name}, token and custom header
// values → [REDACTED]); the API uses it before showing such text.
func MaskSecrets(h *Hook, s string) string { return newMasker(h).apply(s) }

func (m masker) apply(s string) string {
	if m.r == nil {
		return s
	}
	return m.r.Replace(s)
}

// body masks then caps a response body, forced to valid UTF-8. A secret
// cut by the cap (its start at the very end) is dropped too.
func (m masker) body(b []byte, limit int) string {
	s := truncateUTF8(m.apply(strings.ToValidUTF8(string(b), "\uFFFD")), limit)
	for _, secret := range m.secrets {
		for n := min(len(secret)-1, len(s)); n >= 4; n-- {
			if strings.HasSuffix(s, secret[:n]) {
				s = s[:len(s)-n]
				break
			}
		}
	}
	return s
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

// prepareEvent runs before an event is queued: relative image URLs in its
// Markdown fields become absolute, as GitLab's payloads have them. It does
// no I/O: it is on the client's response path.
func (r *Runtime) prepareEvent(ev *Event) {
	if cfg := r.cfg.Load(); cfg != nil && ev.Project != "" {
		ev.Body = gitlab.RewriteImageURLs(ev.Body, cfg.Send.Instance, ev.Project)
	}
}

// rememberLatest keeps the payloads of testable events as their projects'
// latest of that trigger: the sample a test request sends ("the latest
// push" of GitLab's push test). It runs in the fan-out, off the response
// path; a failure only costs the sample.
func (r *Runtime) rememberLatest(ctx context.Context, msgs []redisstore.EventMsg) {
	var evs []*Event
	for i := range msgs {
		ev := &msgs[i].Event
		if msgs[i].Err == nil && ev.Project != "" && Testable(gitlab.Trigger(ev.Trigger)) {
			evs = append(evs, ev)
		}
	}
	if err := r.store.SetLatestEvents(ctx, evs, LatestEventTTL); err != nil {
		r.log.Debug("remembering the latest events for test requests failed", zap.Error(err))
	}
}

// Testable reports whether GitLab can send a test request of t.
func Testable(t gitlab.Trigger) bool {
	switch t {
	case gitlab.Push, gitlab.TagPush, gitlab.Issues, gitlab.ConfidentialIssues, gitlab.Note,
		gitlab.MergeRequests, gitlab.Job, gitlab.Pipeline, gitlab.WikiPage, gitlab.Releases,
		gitlab.Emoji, gitlab.ResourceAccessToken, gitlab.Project:
		return true
	}
	return false
}

// LatestEvent returns the latest payload of trigger seen for project, or
// nil.
func (r *Runtime) LatestEvent(ctx context.Context, project string, trig gitlab.Trigger) ([]byte, error) {
	return r.store.LatestEvent(ctx, project, string(trig))
}
