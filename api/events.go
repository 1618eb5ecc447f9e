package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// maxEventsPerPage is GitLab's bound on per_page for hook events.
const maxEventsPerPage = 20

// statusFilter is the events list's status parameter: codes ("200") and
// GitLab's classes successful (2xx), client_failure (4xx) and
// server_failure (5xx and "internal error").
type statusFilter []string

// parseStatus reads status as Grape's CommaSeparatedToArray: repeated,
// status[] or comma-separated. ok is false when a value is not allowed.
func parseStatus(q map[string][]string) (statusFilter, bool) {
	var f statusFilter
	for _, k := range []string{"status", "status[]"} {
		for _, v := range q[k] {
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				switch s {
				case "successful", "client_failure", "server_failure":
				default:
					if n, err := strconv.Atoi(s); err != nil || n < 100 || n > 599 || len(s) != 3 {
						return nil, false
					}
				}
				f = append(f, s)
			}
		}
	}
	return f, true
}

// match reports whether a logged response_status passes the filter.
func (f statusFilter) match(status string) bool {
	if len(f) == 0 {
		return true
	}
	for _, s := range f {
		switch s {
		case "successful":
			if strings.HasPrefix(status, "2") && len(status) == 3 {
				return true
			}
		case "client_failure":
			if strings.HasPrefix(status, "4") && len(status) == 3 {
				return true
			}
		case "server_failure":
			if (strings.HasPrefix(status, "5") && len(status) == 3) || status == hooklog.InternalErrorStatus {
				return true
			}
		default:
			if s == status {
				return true
			}
		}
	}
	return false
}

// listEvents serves GET …/hooks/:hook_id/events: the hook's log, newest
// first, paginated (per_page 1..20), filtered by status.
func (q *request) listEvents() {
	p, ok := q.params()
	if !ok {
		return
	}
	filter, valid := parseStatus(q.r.URL.Query())
	if !valid {
		p.errs = append(p.errs, "status does not have a valid value")
	}
	if per, has := p.integer("per_page"); has && (per < 1 || per > maxEventsPerPage) {
		p.errs = append(p.errs, "per_page does not have a valid value")
	}
	if p.failed(q.w) {
		return
	}
	if _, _, ok := q.find(); !ok {
		return
	}
	refs, err := q.h.rt.HookLog(q.r.Context(), q.hookID)
	if err != nil {
		q.h.internalError(q.w, "listing hook events", err)
		return
	}
	var ids []int64
	for _, r := range refs {
		if filter.match(r.Status) {
			ids = append(ids, r.ID)
		}
	}
	lo, hi, ok := q.paginate(p, len(ids))
	if !ok {
		return
	}
	entries, err := q.h.rt.HookLogEntries(q.r.Context(), q.hookID, ids[lo:hi]...)
	if err != nil {
		q.h.internalError(q.w, "reading hook events", err)
		return
	}
	out := make([]object, 0, len(entries))
	for i := range entries {
		out = append(out, logEntity(&entries[i]))
	}
	writeJSON(q.w, http.StatusOK, out)
}

// event finds the log entry of the route; ok is false after answering.
func (q *request) event() (*webhook.Hook, *webhook.LogEntry, bool) {
	id, err := strconv.ParseInt(q.rt.rawKey, 10, 64)
	if err != nil || id <= 0 {
		writeError(q.w, http.StatusBadRequest, "hook_log_id is invalid")
		return nil, nil, false
	}
	rec, cfg, ok := q.find()
	if !ok {
		return nil, nil, false
	}
	hook := cfg
	if hook == nil {
		if hook, err = rec.Hook(); err != nil {
			q.h.internalError(q.w, "building a hook", err)
			return nil, nil, false
		}
	}
	es, err := q.h.rt.HookLogEntries(q.r.Context(), q.hookID, id)
	if err != nil {
		q.h.internalError(q.w, "reading a hook event", err)
		return nil, nil, false
	}
	if len(es) == 0 {
		writeMessage(q.w, http.StatusNotFound, "404 Not found")
		return nil, nil, false
	}
	return hook, &es[0], true
}

// getEvent serves GET …/hooks/:hook_id/events/:event_id, the details of
// one event (GitLab shows them in its UI; its REST API only lists them).
func (q *request) getEvent() {
	if _, e, ok := q.event(); ok {
		writeJSON(q.w, http.StatusOK, logEntity(e))
	}
}

// resend serves POST …/hooks/:hook_id/events/:event_id/resend: 201
// {"response_status": <code>} for any HTTP answer, 422 {"message": …} when
// no answer came (or the hook is disabled), 429 over the rate limit.
func (q *request) resend() {
	if !q.throttle("resend", q.h.opt.ResendRateLimit) {
		return
	}
	hook, e, ok := q.event()
	if !ok {
		return
	}
	if hh, err := q.h.rt.HookHealth(q.r.Context(), hook.ID); err == nil && hh.AlertStatus != delivery.AlertExecutable {
		writeMessage(q.w, http.StatusUnprocessableEntity, "Hook disabled")
		return
	}
	res, err := q.h.rt.Resend(q.r.Context(), hook, e)
	switch {
	case errors.Is(err, delivery.ErrOversize):
		writeMessage(q.w, http.StatusUnprocessableEntity, err.Error())
	case err != nil:
		q.h.internalError(q.w, "resending a hook event", err)
	case res.Status == 0:
		msg := "internal error"
		if res.Err != nil {
			msg = hooklog.MaskSecrets(hook, res.Err.Error())
		}
		writeMessage(q.w, http.StatusUnprocessableEntity, msg)
	default:
		writeJSON(q.w, http.StatusCreated, object{{"response_status", res.Status}})
	}
}

// throttle applies a per-minute limit on (project or group, caller), as
// GitLab's web_hook_test and web_hook_event_resend limits; answers 429 with
// Retry-After when over it.
func (q *request) throttle(action string, limit int) bool {
	if q.admitted(action, limit) {
		return true
	}
	writeMessage(q.w, http.StatusTooManyRequests,
		map[string]string{"error": "This endpoint has been requested too many times. Try again later."})
	return false
}

// admitted counts a request against its per-minute limit and reports
// whether it is within it; when not, Retry-After is set and the answer is
// the caller's to write. Redis trouble lets the request through.
func (q *request) admitted(action string, limit int) bool {
	if limit < 0 {
		return true
	}
	if limit == 0 {
		limit = DefaultTestRateLimit // = DefaultResendRateLimit
	}
	scope := fmt.Sprintf("%s:%d:%s", q.ns.Kind, q.ns.ID, q.caller)
	ok, wait, err := q.h.rt.Throttle(q.r.Context(), action, scope, limit, time.Minute)
	if err != nil {
		q.h.log.Warn("checking the API rate limit failed; allowing the request", zap.String("action", action), zap.Error(err))
		return true
	}
	if !ok {
		q.w.Header().Set("Retry-After", strconv.Itoa(max(int(wait.Seconds()+0.999), 1)))
	}
	return ok
}

// logEntity renders a log entry as GitLab's WebHookLog entity.
func logEntity(e *webhook.LogEntry) object {
	trigger := e.Trigger
	if info, ok := gitlab.Trigger(e.Trigger).Info(); ok {
		trigger = info.Scope
	}
	data := e.RequestData
	if !json.Valid(data) {
		data = json.RawMessage(`{}`)
	}
	hdrs := func(m map[string]string) map[string]string {
		if m == nil {
			return map[string]string{}
		}
		return m
	}
	return object{
		{"id", e.ID},
		{"url", e.URL},
		{"trigger", trigger},
		{"request_headers", hdrs(e.RequestHeaders)},
		{"request_data", data},
		{"response_headers", hdrs(e.ResponseHeaders)},
		{"response_body", e.ResponseBody},
		{"execution_duration", e.Duration},
		{"response_status", e.ResponseStatus},
		{"created_at", e.CreatedAt.UTC().Format(timeFormat)},
		{"internal_error_message", nullIfEmpty(e.InternalError)},
	}
}
