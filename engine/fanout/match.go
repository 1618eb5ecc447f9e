package fanout

import (
	"strings"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Match appends to dst the hooks of s an event goes to, as GitLab decides:
// a project event reaches the project's hooks and the hooks of its group
// and every ancestor group; a group-only event (member, subgroup, project)
// reaches the hooks of its group and its ancestors. Each hook must enable
// the trigger, and push events must pass its branch filter. A hook on two
// levels fires twice, as in GitLab.
func Match(s *webhook.HookSet, e *webhook.Event, dst []*webhook.Hook) []*webhook.Hook {
	if s == nil {
		return dst
	}
	t := gitlab.Trigger(e.Trigger)
	if !t.GroupOnly() && e.Project != "" {
		for _, h := range s.InProject(e.Project) {
			if wants(h, e, t) {
				dst = append(dst, h)
			}
		}
	}
	ancestors(e.Namespace, func(g string) {
		for _, h := range s.InGroup(g) {
			if wants(h, e, t) {
				dst = append(dst, h)
			}
		}
	})
	return dst
}

// wants reports whether h takes an event of its scope.
func wants(h *webhook.Hook, e *webhook.Event, t gitlab.Trigger) bool {
	if !h.Triggers.Has(t) {
		return false
	}
	return t != gitlab.Push || h.BranchFilter.Match(e.Ref)
}

// ancestors returns the path and every parent group path, longest first:
// "acme/platform/api" → "acme/platform/api", "acme/platform", "acme".
func ancestors(path string, fn func(string)) {
	for path != "" {
		fn(path)
		i := strings.LastIndexByte(path, '/')
		if i < 0 {
			return
		}
		path = path[:i]
	}
}
