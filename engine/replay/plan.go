package replay

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// An item of a replay: a log entry ("l|<hook>|<entry>") or a dead letter
// ("d|<dead letter id>").
func logItem(hook, entry int64) string {
	return "l|" + strconv.FormatInt(hook, 10) + "|" + strconv.FormatInt(entry, 10)
}

func deadItem(id string) string { return "d|" + id }

// plan selects what req sends again, as of now.
func (r *Replayer) plan(ctx context.Context, req Request, now time.Time) (*Plan, error) {
	status, err := ParseStatus(req.Status)
	if err != nil {
		return nil, err
	}
	until := req.Until
	if until.IsZero() || until.After(now) {
		until = now
	}
	switch {
	case req.Since.IsZero():
		return nil, badInput("since is required: a time (RFC 3339) or how long ago (2h)")
	case !req.Since.Before(until):
		return nil, badInput("since (%s) must be before until (%s)", req.Since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
	}
	hooks, err := r.selectHooks(req)
	if err != nil {
		return nil, err
	}
	p := &Plan{Status: status, Since: req.Since.UTC(), Until: until.UTC(), ByHook: map[string]int{}, Skipped: map[string]int{}}
	for _, h := range hooks {
		p.Hooks = append(p.Hooks, h.ID)
	}
	if status == Dead {
		err = r.planDead(ctx, p, hooks)
	} else {
		err = r.planLog(ctx, p, hooks)
	}
	if err != nil {
		return nil, err
	}
	if p.Matched > MaxItems {
		return nil, badInput("the replay would send %d deliveries, more than %d: narrow the hooks or the time range", p.Matched, MaxItems)
	}
	if len(p.Skipped) == 0 {
		p.Skipped = nil
	}
	return p, nil
}

// selectHooks returns the hooks of req, by id: those named, within the
// project or group given (a group: its hooks and those of every subgroup
// and project below it); without either, every hook.
func (r *Replayer) selectHooks(req Request) ([]*webhook.Hook, error) {
	set := r.hooks()
	var out []*webhook.Hook
	if len(req.Hooks) > 0 {
		for _, id := range req.Hooks {
			h, ok := set.Get(id)
			if !ok {
				return nil, badInput("there is no hook %d", id)
			}
			out = append(out, h)
		}
	} else {
		out = set.All()
	}
	out = slices.DeleteFunc(out, func(h *webhook.Hook) bool { return !within(h, req.Project, req.Group) })
	if len(out) == 0 {
		switch {
		case req.Project != "":
			return nil, badInput("project %s has no hooks", req.Project)
		case req.Group != "":
			return nil, badInput("group %s has no hooks", req.Group)
		}
		return nil, badInput("there are no hooks")
	}
	slices.SortFunc(out, func(a, b *webhook.Hook) int { return int(a.ID - b.ID) })
	out = slices.CompactFunc(out, func(a, b *webhook.Hook) bool { return a.ID == b.ID })
	return out, nil
}

// within tells whether h belongs to project, or to group or below it
// (paths are case-insensitive, as GitLab's).
func within(h *webhook.Hook, project, group string) bool {
	if project != "" && !strings.EqualFold(h.Project, project) {
		return false
	}
	if group == "" {
		return true
	}
	g := strings.ToLower(group)
	if h.Group != "" {
		p := strings.ToLower(h.Group)
		return p == g || strings.HasPrefix(p, g+"/")
	}
	return strings.HasPrefix(strings.ToLower(h.Project), g+"/")
}

// entryPage is how many log entries are read at once.
const entryPage = 100

// planLog selects from the hooks' logs: per event (a test is no event),
// its last attempt in the range, if it failed and was not delivered since
// (Failed), or at all (All).
func (r *Replayer) planLog(ctx context.Context, p *Plan, hooks []*webhook.Hook) error {
	cfg := r.cfg.Load()
	if kept := time.Now().Add(-cfg.LogRetention); p.Since.Before(kept) {
		p.Notes = append(p.Notes, fmt.Sprintf("the hooks' logs keep attempts for %s: attempts before %s are no longer there and are not replayed",
			cfg.LogRetention, kept.UTC().Format(time.RFC3339)))
	}
	from, to := p.Since.UnixMilli(), p.Until.UnixMilli()
	for _, h := range hooks {
		refs, err := r.hookLog.Refs(ctx, h.ID)
		if err != nil {
			return err
		}
		var ids []int64 // oldest first, from the start of the range on
		for i := len(refs) - 1; i >= 0; i-- {
			if refs[i].ID/1000 >= from {
				ids = append(ids, refs[i].ID)
			}
		}
		type event struct {
			last, lastInRange *webhook.LogEntry
		}
		events := map[string]*event{}
		var order []string
		for start := 0; start < len(ids); start += entryPage {
			es, err := r.hookLog.Entries(ctx, h.ID, ids[start:min(start+entryPage, len(ids))]...)
			if err != nil {
				return err
			}
			for i := range es {
				e := &es[i]
				if e.Kind == hooklog.KindTest {
					continue
				}
				ev := events[e.EventID]
				if ev == nil {
					ev = &event{}
					events[e.EventID] = ev
					order = append(order, e.EventID)
				}
				ev.last = e
				if e.ID/1000 <= to {
					ev.lastInRange = e
				}
			}
		}
		n := 0
		for _, id := range order {
			ev := events[id]
			e := ev.lastInRange
			switch {
			case e == nil:
				continue
			case p.Status == Failed && (delivered(e.ResponseStatus) || delivered(ev.last.ResponseStatus)):
				continue
			case e.Oversize:
				p.Skipped["oversize"]++ // the log did not keep its payload
				continue
			}
			p.items = append(p.items, logItem(h.ID, e.ID))
			n++
		}
		p.count(h.ID, n)
	}
	return nil
}

// delivered tells whether a logged status is a success (2xx).
func delivered(status string) bool { return len(status) == 3 && status[0] == '2' }

// deadPage is how many dead letters are read at once.
const deadPage = 500

// planDead selects the hooks' dead letters given up on in the range.
func (r *Replayer) planDead(ctx context.Context, p *Plan, hooks []*webhook.Hook) error {
	want := map[int64]bool{}
	for _, h := range hooks {
		want[h.ID] = true
	}
	by := map[int64]int{}
	for after := "-"; ; {
		dls, err := r.store.DeadLetters.List(ctx, after, deadPage)
		if err != nil {
			return err
		}
		for _, d := range dls {
			switch {
			case d.Err != nil:
				p.Skipped["undecodable"]++
			case !want[d.Delivery.HookID] || d.At.Before(p.Since) || d.At.After(p.Until):
			default:
				p.items = append(p.items, deadItem(d.ID))
				by[d.Delivery.HookID]++
			}
		}
		if len(dls) < deadPage {
			break
		}
		after = dls[len(dls)-1].ID
	}
	for _, h := range hooks {
		p.count(h.ID, by[h.ID])
	}
	return nil
}

// count records n deliveries of hook id.
func (p *Plan) count(id int64, n int) {
	p.ByHook[strconv.FormatInt(id, 10)] = n
	p.Matched += n
}
