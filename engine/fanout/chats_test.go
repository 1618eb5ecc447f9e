package fanout

import (
	"slices"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func chatHook(id int64, project, group string, svc chat.Service) *webhook.Hook {
	s := &chat.Settings{Service: svc, BranchesToBeNotified: chat.BranchesAll}
	s.Triggers.Add(gitlab.Push)
	return &webhook.Hook{ID: id, Project: project, Group: group, URL: "https://chat.example/hook", Chat: s, Triggers: s.Triggers}
}

func TestChatIntegrationsInheritFromTheNearestGroup(t *testing.T) {
	set, err := webhook.NewHookSet([]*webhook.Hook{
		chatHook(1, "", "acme", chat.Slack),
		chatHook(2, "", "acme/platform", chat.Slack),
		chatHook(3, "acme/platform/api", "", chat.Mattermost),
		chatHook(4, "acme/platform/web", "", chat.Slack),
		chatHook(5, "", "acme", chat.Discord),
		hook(t, 6, "acme/platform/api", "", "", "", gitlab.Push),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		project string
		want    []int64
	}{
		// Its own Mattermost, the nearest group's Slack, the top group's Discord.
		{"acme/platform/api", []int64{2, 3, 5}},
		// Its own Slack wins over the groups'.
		{"acme/platform/web", []int64{4, 5}},
		{"acme/other", []int64{1, 5}},
		{"other/x", nil},
	} {
		ev := pushEvent(tc.project)
		if got := ids(MatchChats(set, ev, nil)); !equalIDs(got, tc.want) {
			t.Errorf("%s: chats %v, want %v", tc.project, got, tc.want)
		}
	}
	// Chat integrations are not webhooks: Match never returns them.
	if got := ids(Match(set, pushEvent("acme/platform/api"), nil)); !equalIDs(got, []int64{6}) {
		t.Errorf("Match = %v, want only the webhook", got)
	}
}

func equalIDs(a, b []int64) bool { return slices.Equal(a, b) }

// pushEvent is a push to project, in its own group.
func pushEvent(project string) *webhook.Event {
	return &webhook.Event{Trigger: "push", Project: project, Namespace: project[:strings.LastIndexByte(project, '/')], Ref: "refs/heads/main"}
}
