package module

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/grt-continuation/caddy-webhooks/engine"
	"github.com/grt-continuation/caddy-webhooks/engine/replay"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func init() {
	caddy.RegisterModule(new(Admin))
}

// current is the runtime of the running config, for the admin API: admin
// routers are provisioned before apps and get no config, so they must not
// look the app up themselves.
var current atomic.Pointer[App]

// Admin serves operator endpoints on Caddy's admin API:
//
//	GET  /webhooks/stats                       queue depths
//	GET  /webhooks/hooks                       hooks in effect, with health
//	GET  /webhooks/hooks/{id}/events?count=    a hook's recent delivery attempts
//	GET  /webhooks/dead-letters?after=&count=  dead letters, oldest first
//	POST /webhooks/dead-letters/redrive        {"ids": [...]} or {"all": true}
//	POST /webhooks/pause, /webhooks/resume     hold deliveries back in every instance
//	POST /webhooks/replays                     send again what failed (or was dead-lettered, or everything)
//	                                           of some hooks in a time range; "dry_run": true counts
//	GET  /webhooks/replays[/{id}]              replays and their progress
//	DELETE /webhooks/replays/{id}              stop a replay (what it queued stays queued)
//
// The admin API has no authentication of its own; keep it on localhost (the
// default) or behind Caddy's remote admin access control.
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (*Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.webhooks", New: func() caddy.Module { return new(Admin) }}
}

// Routes returns the admin routes.
func (*Admin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/webhooks/stats", Handler: caddy.AdminHandlerFunc(adminStats)},
		{Pattern: "/webhooks/hooks", Handler: caddy.AdminHandlerFunc(adminHooks)},
		{Pattern: "/webhooks/hooks/{id}/events", Handler: caddy.AdminHandlerFunc(adminHookEvents)},
		{Pattern: "/webhooks/dead-letters", Handler: caddy.AdminHandlerFunc(adminDeadLetters)},
		{Pattern: "/webhooks/dead-letters/redrive", Handler: caddy.AdminHandlerFunc(adminRedrive)},
		{Pattern: "/webhooks/pause", Handler: caddy.AdminHandlerFunc(adminPause(true))},
		{Pattern: "/webhooks/resume", Handler: caddy.AdminHandlerFunc(adminPause(false))},
		{Pattern: "/webhooks/replays", Handler: caddy.AdminHandlerFunc(adminReplays)},
		{Pattern: "/webhooks/replays/{id}", Handler: caddy.AdminHandlerFunc(adminReplay)},
	}
}

func runtimeFor(r *http.Request, method string) (*engine.Runtime, error) {
	if r.Method != method {
		return nil, caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	app := current.Load()
	if app == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("the webhooks app is not running")}
	}
	return app.rt, nil
}

func adminStats(w http.ResponseWriter, r *http.Request) error {
	rt, err := runtimeFor(r, http.MethodGet)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := rt.Stats(ctx)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	return writeAdminJSON(w, st)
}

// hookInfo is a hook as the admin API shows it: never its secrets.
type hookInfo struct {
	ID            int64      `json:"id"`
	Name          string     `json:"name,omitempty"`
	Project       string     `json:"project,omitempty"`
	Group         string     `json:"group,omitempty"`
	URL           string     `json:"url"`
	Events        []string   `json:"events"`
	Configured    bool       `json:"configured"`
	AlertStatus   string     `json:"alert_status"`
	DisabledUntil *time.Time `json:"disabled_until"`
	Failures      int        `json:"recent_failures"`
	Ordered       bool       `json:"ordered"`
	// Operator marks an endpoint of the operator's alerts.
	Operator bool `json:"operator,omitempty"`
	// OrderedQueue is an ordered hook's queue (or what is left of it).
	OrderedQueue *orderedQueue `json:"ordered_queue,omitempty"`
}

// orderedQueue is an ordered hook's queue: the deliveries waiting, and
// the head that holds them back when it failed.
type orderedQueue struct {
	Pending   int64         `json:"pending"`
	BlockedBy *orderedBlock `json:"blocked_by"`
}

type orderedBlock struct {
	EventID       string     `json:"event_id"`
	Since         time.Time  `json:"since"`
	Attempts      int        `json:"attempts"`
	LastStatus    string     `json:"last_status"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
}

func adminHooks(w http.ResponseWriter, r *http.Request) error {
	rt, err := runtimeFor(r, http.MethodGet)
	if err != nil {
		return err
	}
	hooks := rt.Hooks().All()
	slices.SortFunc(hooks, func(a, b *webhook.Hook) int { return cmp.Compare(a.ID, b.ID) })
	out := make([]hookInfo, 0, len(hooks))
	for _, h := range hooks {
		hh, err := rt.HookHealth(r.Context(), h.ID)
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
		}
		info := hookInfo{ID: h.ID, Name: h.Name, Project: h.Project, Group: h.Group, URL: h.MaskedURL(),
			Configured: h.ReadOnly, AlertStatus: hh.AlertStatus, DisabledUntil: hh.DisabledUntil, Failures: hh.Failures,
			Ordered: h.Ordered, Operator: h.Operator}
		if oq, err := rt.OrderedState(r.Context(), h.ID); err == nil && (h.Ordered || oq.Pending > 0) {
			info.OrderedQueue = &orderedQueue{Pending: oq.Pending}
			if b := oq.Blocked; b != nil {
				info.OrderedQueue.BlockedBy = &orderedBlock{EventID: b.EventID, Since: b.Since.UTC(), Attempts: b.Attempts,
					LastStatus: b.LastStatus}
				if !b.NextAt.IsZero() {
					next := b.NextAt.UTC()
					info.OrderedQueue.BlockedBy.NextAttemptAt = &next
				}
			}
		}
		for _, t := range h.Triggers.List() {
			info.Events = append(info.Events, string(t))
		}
		out = append(out, info)
	}
	return writeAdminJSON(w, out)
}

// attempt is one logged delivery attempt as the admin API lists it: the
// summary, not headers or bodies (the hooks API has the details).
type attempt struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`
	Trigger  string    `json:"trigger"`
	Status   string    `json:"status"`
	Duration float64   `json:"execution_duration"`
	Error    string    `json:"internal_error,omitempty"`
	EventID  string    `json:"event_id"`
}

func adminHookEvents(w http.ResponseWriter, r *http.Request) error {
	rt, err := runtimeFor(r, http.MethodGet)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("hook id %q is not a number", r.PathValue("id"))}
	}
	if _, ok := rt.Hooks().Get(id); !ok {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no hook %d", id)}
	}
	count, err := strconv.Atoi(r.URL.Query().Get("count"))
	if err != nil || count <= 0 || count > 100 {
		count = 20
	}
	refs, err := rt.HookLog(r.Context(), id)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	ids := make([]int64, 0, count)
	for _, ref := range refs[:min(count, len(refs))] {
		ids = append(ids, ref.ID)
	}
	entries, err := rt.HookLogEntries(r.Context(), id, ids...)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	out := make([]attempt, 0, len(entries))
	for _, e := range entries {
		out = append(out, attempt{ID: e.ID, At: e.CreatedAt.UTC(), Kind: e.Kind, Trigger: e.Trigger, Status: e.ResponseStatus,
			Duration: e.Duration, Error: e.InternalError, EventID: e.EventID})
	}
	return writeAdminJSON(w, out)
}

// deadLetter is a dead letter as the admin API shows it (no payload: it may
// hold personal data; the delivery log has it).
type deadLetter struct {
	ID      string    `json:"id"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	EventID string    `json:"event_id"`
	HookID  int64     `json:"hook_id"`
	Trigger string    `json:"trigger"`
	Attempt int       `json:"attempts"`
}

func adminDeadLetters(w http.ResponseWriter, r *http.Request) error {
	rt, err := runtimeFor(r, http.MethodGet)
	if err != nil {
		return err
	}
	after := r.URL.Query().Get("after")
	if after == "" {
		after = "-"
	}
	count, err := strconv.ParseInt(r.URL.Query().Get("count"), 10, 64)
	if err != nil || count <= 0 || count > 1000 {
		count = 100
	}
	dls, err := rt.DeadLetters(r.Context(), after, count)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	out := make([]deadLetter, 0, len(dls))
	for _, d := range dls {
		out = append(out, deadLetter{ID: d.ID, Reason: d.Reason, At: d.At.UTC(), EventID: d.Delivery.EventID,
			HookID: d.Delivery.HookID, Trigger: d.Delivery.Trigger, Attempt: d.Delivery.Attempt})
	}
	return writeAdminJSON(w, out)
}

func adminRedrive(w http.ResponseWriter, r *http.Request) error {
	rt, err := runtimeFor(r, http.MethodPost)
	if err != nil {
		return err
	}
	var req struct {
		IDs []string `json:"ids"`
		All bool     `json:"all"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("decoding request: %w", err)}
	}
	if req.All == (len(req.IDs) > 0) {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf(`give either "ids" or "all": true`)}
	}
	n, err := rt.Redrive(r.Context(), req.IDs, req.All)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	return writeAdminJSON(w, map[string]int{"redriven": n})
}

func adminPause(pause bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		rt, err := runtimeFor(r, http.MethodPost)
		if err != nil {
			return err
		}
		op := rt.Resume
		if pause {
			op = rt.Pause
		}
		if err := op(r.Context()); err != nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
		}
		return writeAdminJSON(w, map[string]bool{"paused": pause})
	}
}

// replayRequest is the body of POST /webhooks/replays: since and until are
// times (RFC 3339) or how long ago (2h); until defaults to now, status to
// failed.
type replayRequest struct {
	Hooks   []int64 `json:"hooks"`
	Project string  `json:"project"`
	Group   string  `json:"group"`
	Since   string  `json:"since"`
	Until   string  `json:"until"`
	Status  string  `json:"status"`
	DryRun  bool    `json:"dry_run"`
}

// request reads the times of a replay request.
func (q *replayRequest) request(now time.Time) (replay.Request, error) {
	req := replay.Request{Hooks: q.Hooks, Project: q.Project, Group: q.Group, Status: q.Status, DryRun: q.DryRun}
	if req.Status == "" {
		req.Status = replay.Failed
	}
	var err error
	if q.Since != "" {
		if req.Since, err = replay.ParseTime(q.Since, now); err != nil {
			return req, fmt.Errorf("since: %w", err)
		}
	}
	if q.Until != "" {
		if req.Until, err = replay.ParseTime(q.Until, now); err != nil {
			return req, fmt.Errorf("until: %w", err)
		}
	}
	return req, nil
}

func adminReplays(w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodGet {
		rt, err := runtimeFor(r, http.MethodGet)
		if err != nil {
			return err
		}
		jobs, err := rt.Replays(r.Context())
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
		}
		if jobs == nil {
			jobs = []replay.Job{}
		}
		return writeAdminJSON(w, jobs)
	}
	rt, err := runtimeFor(r, http.MethodPost)
	if err != nil {
		return err
	}
	var body replayRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("decoding request: %w", err)}
	}
	req, err := body.request(time.Now())
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	job, err := rt.StartReplay(r.Context(), req)
	var ie *replay.InputError
	switch {
	case errors.As(err, &ie):
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	case err != nil:
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	if job.ID == 0 { // a dry run, or nothing matched: no replay was made
		return writeAdminJSON(w, job.Plan)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	return json.NewEncoder(w).Encode(job)
}

func adminReplay(w http.ResponseWriter, r *http.Request) error {
	method := http.MethodGet
	if r.Method == http.MethodDelete {
		method = http.MethodDelete
	}
	rt, err := runtimeFor(r, method)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("replay id %q is not a number", r.PathValue("id"))}
	}
	get := rt.ReplayJob
	if method == http.MethodDelete {
		get = rt.CancelReplay
	}
	job, err := get(r.Context(), id)
	switch {
	case replay.IsNotFound(err):
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no replay %d", id)}
	case err != nil:
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	return writeAdminJSON(w, job)
}

func writeAdminJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// Interface guards
var _ caddy.AdminRouter = (*Admin)(nil)
