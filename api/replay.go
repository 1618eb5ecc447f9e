package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/grt-continuation/caddy-webhooks/engine/replay"
)

// replay serves POST …/hooks/:hook_id/replay (ours; the page's "Resend
// failed since…"): the hook's attempts of a time range sent again at a
// pace that leaves live deliveries first. Parameters: since (required: a
// time, RFC 3339, or how long ago, 2h), until (default now), status
// (failed, the default: not delivered since; dead: its dead letters; all),
// dry_run (count only). 200 with the count for a dry run (or when nothing
// matches), 201 with the replay; throttled as resends are.
func (q *request) replay() {
	p, ok := q.params()
	if !ok {
		return
	}
	now := time.Now()
	req := replay.Request{Hooks: []int64{q.hookID}, Status: replay.Failed}
	bound := func(name string, dst *time.Time) {
		if s, ok := p.str(name); ok {
			t, err := replay.ParseTime(s, now)
			if err != nil {
				p.errs = append(p.errs, name+" is invalid")
				return
			}
			*dst = t
		}
	}
	if !p.has("since") {
		p.errs = append(p.errs, "since is missing")
	}
	bound("since", &req.Since)
	bound("until", &req.Until)
	if s, ok := p.str("status"); ok {
		if _, err := replay.ParseStatus(s); err != nil {
			p.errs = append(p.errs, "status does not have a valid value (failed, dead or all)")
		}
		req.Status = s
	}
	if b, ok := p.boolean("dry_run"); ok {
		req.DryRun = b
	}
	if p.failed(q.w) {
		return
	}
	if _, _, ok := q.find(); !ok {
		return
	}
	if !req.DryRun && !q.throttle("replay", q.h.opt.ResendRateLimit) {
		return
	}
	job, err := q.h.rt.StartReplay(q.r.Context(), req)
	var ie *replay.InputError
	switch {
	case errors.As(err, &ie):
		writeError(q.w, http.StatusBadRequest, err.Error())
	case err != nil:
		q.h.internalError(q.w, "starting a replay", err)
	case job.ID == 0:
		writeJSON(q.w, http.StatusOK, replayEntity(&job))
	default:
		writeJSON(q.w, http.StatusCreated, replayEntity(&job))
	}
}

// replayEntity shows a replay: its id and state (none for a dry run),
// the range, what it matched, what it left out and why, and notes on what
// the range asks of data no longer kept.
func replayEntity(j *replay.Job) object {
	o := object{}
	if j.ID != 0 {
		o = append(o, field{"id", j.ID}, field{"state", j.State})
	}
	notes := j.Notes
	if notes == nil {
		notes = []string{}
	}
	skipped := j.Skipped
	if skipped == nil {
		skipped = map[string]int{}
	}
	return append(o,
		field{"status", j.Status},
		field{"since", j.Since.UTC().Format(timeFormat)},
		field{"until", j.Until.UTC().Format(timeFormat)},
		field{"matched", j.Matched},
		field{"skipped", skipped},
		field{"notes", notes},
	)
}
