package engine

import (
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// Chat integrations are hooks whose deliveries are chat messages: the
// formatter (package chat) writes the message at fan-out, and from there
// it is a delivery like any other (queued, retried, isolated, logged, and
// a 4xx answer such as Slack's 404 no_service or 403 invalid_token
// dead-letters it and disables the integration until it is saved again).

// ChatHookFromRecord builds the hook of a stored chat integration.
func ChatHookFromRecord(r *redisstore.IntegrationRecord) (*Hook, error) {
	svc, ok := chat.ParseService(r.Service)
	if !ok {
		return nil, fmt.Errorf("integration %d has unknown service %q", r.ID, r.Service)
	}
	s := &chat.Settings{
		Service: svc, Username: r.Username, Channel: r.Channel, Channels: r.Channels,
		NotifyOnlyBrokenPipelines: r.NotifyOnlyBrokenPipelines, BranchesToBeNotified: r.BranchesToBeNotified,
		ProtectedBranches: r.ProtectedBranches, LabelsToBeNotified: r.LabelsToBeNotified,
		LabelsToBeNotifiedBehavior: r.LabelsToBeNotifiedBehavior,
	}
	for _, t := range r.Triggers {
		tr, ok := gitlab.ParseTrigger(t)
		if !ok {
			return nil, fmt.Errorf("integration %d has unknown trigger %q", r.ID, t)
		}
		s.Triggers.Add(tr)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("integration %d: %w", r.ID, err)
	}
	// Triggers are shown (admin API); matching is MatchChats' alone, as
	// NewHookSet indexes chat integrations apart.
	h := &Hook{ID: r.ID, Name: svc.Title(), URL: r.Webhook, EnableSSLVerification: true, Chat: s, Triggers: s.Triggers}
	switch r.Kind {
	case redisstore.KindProject:
		h.Project = r.Path
	case redisstore.KindGroup:
		h.Group = r.Path
	default:
		return nil, fmt.Errorf("integration %d has unknown owner kind %q", r.ID, r.Kind)
	}
	return h, nil
}

// addChat indexes a chat integration by its scope.
func (s *HookSet) addChat(key string, h *Hook) {
	if s.chats == nil {
		s.chats = map[string][]*Hook{}
	}
	s.chats[key] = append(s.chats[key], h)
}

// ChatsInProject returns the chat integrations of a project.
func (s *HookSet) ChatsInProject(path string) []*Hook {
	if s == nil {
		return nil
	}
	return s.chats[scopeKey(path, "")]
}

// ChatsInGroup returns the chat integrations of a group, not those of its
// subgroups.
func (s *HookSet) ChatsInGroup(path string) []*Hook {
	if s == nil {
		return nil
	}
	return s.chats[scopeKey("", path)]
}

// MatchChats appends to dst the chat integrations of s a project event
// goes to: of each service, the project's own integration, or else the one
// of its nearest group, as GitLab's integration inheritance (a project uses
// its group's settings unless it has its own). Group-only events have no
// chat messages.
func MatchChats(s *HookSet, e *Event, dst []*Hook) []*Hook {
	if e.Project == "" || gitlab.Trigger(e.Trigger).GroupOnly() {
		return dst
	}
	start := len(dst)
	take := func(hooks []*Hook) {
		for _, h := range hooks {
			if !slices.ContainsFunc(dst[start:], func(o *Hook) bool { return o.Chat.Service == h.Chat.Service }) {
				dst = append(dst, h)
			}
		}
	}
	take(s.ChatsInProject(e.Project))
	ancestors(e.Namespace, func(g string) { take(s.ChatsInGroup(g)) })
	return dst
}

// chatDeliveries writes the chat messages of an event, one delivery per
// integration that notifies of it.
func (r *Runtime) chatDeliveries(hooks *HookSet, ev *Event, dst []redisstore.Delivery) []redisstore.Delivery {
	var buf [4]*Hook
	for _, h := range MatchChats(hooks, ev, buf[:0]) {
		post, ok, err := chat.Render(h.Chat, gitlab.Trigger(ev.Trigger), ev.Body, time.Now())
		if err != nil {
			r.log.Warn("chat message not written", zap.Int64("hook_id", h.ID), zap.String("event", ev.ID),
				zap.String("trigger", ev.Trigger), zap.Error(err))
			continue
		}
		if !ok {
			continue
		}
		dst = append(dst, redisstore.Delivery{EventID: ev.ID, HookID: h.ID, Trigger: ev.Trigger, Chain: ev.Chain,
			At: ev.At, Body: post.Body, Attempt: 1})
	}
	return dst
}
