package engine

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

// Hook is one subscriber: a URL that receives the events of a project or a
// group (and its subgroups and projects) for the triggers it enabled.
type Hook struct {
	ID   int64
	Name string
	// Project is the full path of the project the hook belongs to; Group the
	// full path of its group. Exactly one is set.
	Project string
	Group   string
	// URL may hold {name} references to URLVariables.
	URL          string
	URLVariables map[string]string
	// Token is sent as X-Gitlab-Token when set.
	Token                 string
	Triggers              gitlab.TriggerSet
	BranchFilter          gitlab.BranchFilter
	EnableSSLVerification bool
	// CustomHeaders are sent with every delivery; GitLab's own headers win.
	CustomHeaders map[string]string
	// ReadOnly hooks come from configuration, not from the API.
	ReadOnly bool
}

// MaskedURL is the hook's URL as it may be logged or shown.
func (h *Hook) MaskedURL() string { return gitlab.MaskURL(h.URL) }

// Validate checks the hook as GitLab would on save.
func (h *Hook) Validate() error {
	if (h.Project == "") == (h.Group == "") {
		return errors.New("a hook belongs to exactly one project or group")
	}
	for _, p := range []string{h.Project, h.Group} {
		if _, err := cleanPath(p); err != nil {
			return err
		}
	}
	if err := gitlab.ValidateURLVariables(h.URLVariables); err != nil {
		return err
	}
	raw, err := gitlab.InterpolateURL(h.URL, h.URLVariables)
	if err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid url given: %q must be an http or https URL", h.MaskedURL())
	}
	if err := gitlab.ValidateToken(h.Token); err != nil {
		return err
	}
	for k, v := range h.CustomHeaders {
		if err := gitlab.ValidateCustomHeader(k, v); err != nil {
			return err
		}
	}
	return nil
}

// wants reports whether the hook takes an event of its scope.
func (h *Hook) wants(e *Event, t gitlab.Trigger) bool {
	if !h.Triggers.Has(t) {
		return false
	}
	return t != gitlab.Push || h.BranchFilter.Match(e.Ref)
}

// HookSet is an immutable index of hooks by ID and by scope, swapped whole
// when hooks change so readers never lock.
type HookSet struct {
	byID    map[int64]*Hook
	byScope map[string][]*Hook
}

// NewHookSet indexes hooks; IDs must be unique.
func NewHookSet(hooks []*Hook) (*HookSet, error) {
	s := &HookSet{byID: make(map[int64]*Hook, len(hooks)), byScope: map[string][]*Hook{}}
	for _, h := range hooks {
		if _, dup := s.byID[h.ID]; dup {
			return nil, fmt.Errorf("two hooks have id %d", h.ID)
		}
		s.byID[h.ID] = h
		key := scopeKey(h.Project, h.Group)
		s.byScope[key] = append(s.byScope[key], h)
	}
	return s, nil
}

// Paths are case-insensitive in GitLab.
func scopeKey(project, group string) string {
	if project != "" {
		return "p:" + strings.ToLower(project)
	}
	return "g:" + strings.ToLower(group)
}

// Len is the number of hooks.
func (s *HookSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byID)
}

// Get returns a hook by ID.
func (s *HookSet) Get(id int64) (*Hook, bool) {
	if s == nil {
		return nil, false
	}
	h, ok := s.byID[id]
	return h, ok
}

// Match appends to dst the hooks an event goes to, as GitLab decides: a
// project event reaches the project's hooks and the hooks of its group and
// every ancestor group; a group-only event (member, subgroup, project)
// reaches the hooks of its group and its ancestors. Each hook must enable
// the trigger, and push events must pass its branch filter. A hook on two
// levels fires twice, as in GitLab.
func (s *HookSet) Match(e *Event, dst []*Hook) []*Hook {
	if s == nil {
		return dst
	}
	t := gitlab.Trigger(e.Trigger)
	if !t.GroupOnly() && e.Project != "" {
		for _, h := range s.byScope[scopeKey(e.Project, "")] {
			if h.wants(e, t) {
				dst = append(dst, h)
			}
		}
	}
	ancestors(e.Namespace, func(g string) {
		for _, h := range s.byScope[scopeKey("", g)] {
			if h.wants(e, t) {
				dst = append(dst, h)
			}
		}
	})
	return dst
}

// All returns every hook, in no particular order.
func (s *HookSet) All() []*Hook {
	if s == nil {
		return nil
	}
	out := make([]*Hook, 0, len(s.byID))
	for _, h := range s.byID {
		out = append(out, h)
	}
	return out
}

// MergeHookSets returns the union of two sets; an ID in both is an error.
func MergeHookSets(a, b *HookSet) (*HookSet, error) {
	switch {
	case b.Len() == 0 && a != nil:
		return a, nil
	case a.Len() == 0 && b != nil:
		return b, nil
	}
	return NewHookSet(append(a.All(), b.All()...))
}
