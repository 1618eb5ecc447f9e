package webhook

import (
	"fmt"
	"strings"
	"time"

	"github.com/grt-continuation/caddy-webhooks/chat"
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
	Token string
	// Signing signs each delivery with the Standard Webhooks headers
	// (GitLab's signing_token) when set.
	Signing gitlab.SigningTokens
	// CustomWebhookTemplate, when set, is rendered against the event's
	// payload and sent instead of it (GitLab's custom_webhook_template).
	CustomWebhookTemplate string
	Triggers              gitlab.TriggerSet
	BranchFilter          gitlab.BranchFilter
	EnableSSLVerification bool
	// CustomHeaders are sent with every delivery; GitLab's own headers win.
	CustomHeaders map[string]string
	// NoTraceContext keeps the W3C traceparent and tracestate headers off
	// the hook's deliveries (their spans are still recorded).
	NoTraceContext bool
	// EgressProxy is the forward proxy of the hook's deliveries (an http,
	// https or socks5 URL, credentials in its user info), or EgressOff for
	// none; "" uses the proxy every hook shares.
	EgressProxy string
	// TLS is the hook's client certificate and private CAs; nil: none.
	TLS *ClientTLS
	// ReadOnly hooks come from configuration, not from the API.
	ReadOnly bool
	// Ordered sends the hook's deliveries one at a time, in the order their
	// events were captured (beyond GitLab, which sends them in parallel).
	Ordered bool
	// RetrySchedule, when set, are the waits before each retry (its length
	// is the retries); otherwise the app's retry policy applies.
	RetrySchedule []time.Duration
	// AutoDisable, when set, is how failures disable this hook; otherwise
	// the app's rule applies.
	AutoDisable *AutoDisable
	// Operator marks an endpoint of the operator's alerts (engine/alerts):
	// it belongs to no project or group, matches no event, and its
	// deliveries are alerts, signed with the Standard Webhooks headers
	// rather than sent with GitLab's.
	Operator bool
	// Chat is set for a chat integration (Slack, Mattermost, Discord,
	// Microsoft Teams): its deliveries carry the chat's message, not the
	// event's payload, and it is matched by MatchChats, not Match.
	Chat *chat.Settings

	// masked is MaskedURL, kept by NewHookSet: a hook in a set does not
	// change, and each attempt's log entry shows it.
	masked string
}

// MaskedURL is the hook's URL as it may be logged or shown.
func (h *Hook) MaskedURL() string {
	if h.masked != "" {
		return h.masked
	}
	return h.maskURL()
}

func (h *Hook) maskURL() string {
	if h.Chat != nil {
		return chat.MaskWebhook(h.URL)
	}
	return gitlab.MaskURL(h.URL)
}

// HookSet is an immutable index of hooks by ID and by scope, swapped whole
// when hooks change so readers never lock.
type HookSet struct {
	byID    map[int64]*Hook
	byScope map[string][]*Hook
	chats   map[string][]*Hook // chat integrations by scope (chat.go)
	// operators are the endpoints of the operator's alerts.
	operators []*Hook
}

// NewHookSet indexes hooks; IDs must be unique.
func NewHookSet(hooks []*Hook) (*HookSet, error) {
	s := &HookSet{byID: make(map[int64]*Hook, len(hooks)), byScope: map[string][]*Hook{}}
	for _, h := range hooks {
		if _, dup := s.byID[h.ID]; dup {
			return nil, fmt.Errorf("two hooks have id %d", h.ID)
		}
		s.byID[h.ID] = h
		if h.masked == "" { // set once, before the hook is in use: a merge puts it in a second set
			h.masked = h.maskURL()
		}
		if h.Operator {
			s.operators = append(s.operators, h)
			continue
		}
		key := scopeKey(h.Project, h.Group)
		if h.Chat != nil {
			s.addChat(key, h)
			continue
		}
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

// InProject returns the hooks of a project (paths are case-insensitive).
func (s *HookSet) InProject(path string) []*Hook {
	if s == nil {
		return nil
	}
	return s.byScope[scopeKey(path, "")]
}

// InGroup returns the hooks of a group, not those of its subgroups.
func (s *HookSet) InGroup(path string) []*Hook {
	if s == nil {
		return nil
	}
	return s.byScope[scopeKey("", path)]
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

// Operators returns the endpoints of the operator's alerts.
func (s *HookSet) Operators() []*Hook {
	if s == nil {
		return nil
	}
	return s.operators
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
