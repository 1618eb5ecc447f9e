package fanout

import (
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Chat integrations are hooks whose deliveries are chat messages: the
// formatter (package chat) writes the message here, and from there it is a
// delivery like any other (queued, retried, isolated, logged, and a 4xx
// answer such as Slack's 404 no_service or 403 invalid_token dead-letters
// it). Chat messages cannot call back into the app, so they skip the
// recursion guard.

// MatchChats appends to dst the chat integrations of s a project event
// goes to: of each service, the project's own integration, or else the one
// of its nearest group, as GitLab's integration inheritance (a project uses
// its group's settings unless it has its own). A group event (a group
// mention) goes to the group's own integration, or its nearest ancestor's;
// other group-only events have no chat messages.
func MatchChats(s *webhook.HookSet, e *webhook.Event, dst []*webhook.Hook) []*webhook.Hook {
	trig := gitlab.Trigger(e.Trigger)
	switch {
	case trig.ChatOnly() && trig.GroupOnly():
		if e.Namespace == "" {
			return dst
		}
	case e.Project == "" || trig.GroupOnly():
		return dst
	}
	start := len(dst)
	take := func(hooks []*webhook.Hook) {
		for _, h := range hooks {
			if !slices.ContainsFunc(dst[start:], func(o *webhook.Hook) bool { return o.Chat.Service == h.Chat.Service }) {
				dst = append(dst, h)
			}
		}
	}
	if e.Project != "" {
		take(s.ChatsInProject(e.Project))
	}
	ancestors(e.Namespace, func(g string) { take(s.ChatsInGroup(g)) })
	return dst
}

// chatDeliveries appends the chat messages of an event to dst: one
// delivery per integration that notifies of it and channel it goes to, so
// a channel that fails is retried alone and never holds up the others.
func (f *Fanout) chatDeliveries(hooks *webhook.HookSet, ev *webhook.Event, dst []webhook.Delivery) []webhook.Delivery {
	var buf [4]*webhook.Hook
	for _, h := range MatchChats(hooks, ev, buf[:0]) {
		posts, err := chat.Render(h.Chat, gitlab.Trigger(ev.Trigger), ev.Body, time.Now())
		if err != nil {
			f.log.Warn("chat message not written", zap.Int64("hook_id", h.ID), zap.String("event", ev.ID),
				zap.String("trigger", ev.Trigger), zap.Error(err))
			continue
		}
		for _, post := range posts {
			// The message is the delivery's own body, not the shared payload.
			dst = append(dst, webhook.Delivery{EventID: ev.ID, HookID: h.ID, Trigger: ev.Trigger, Chain: ev.Chain,
				At: ev.At, Body: post.Body, Attempt: 1, Trace: ev.Trace})
		}
	}
	return dst
}
