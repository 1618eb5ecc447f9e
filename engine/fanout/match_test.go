package fanout

import (
	"slices"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func hook(t testing.TB, id int64, project, group string, strategy, filter string, triggers ...gitlab.Trigger) *webhook.Hook {
	t.Helper()
	h := &webhook.Hook{ID: id, Name: "h", Project: project, Group: group, URL: "http://127.0.0.1:1/x", EnableSSLVerification: true}
	for _, tr := range triggers {
		h.Triggers.Add(tr)
	}
	var err error
	if h.BranchFilter, err = gitlab.NewBranchFilter(strategy, filter); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	return h
}

func ids(hs []*webhook.Hook) []int64 {
	out := make([]int64, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.ID)
	}
	slices.Sort(out)
	return out
}

func TestMatchLikeGitLab(t *testing.T) {
	set, err := webhook.NewHookSet([]*webhook.Hook{
		hook(t, 1, "acme/platform/api", "", "", "", gitlab.Push, gitlab.Issues),
		hook(t, 2, "", "acme/platform", "", "", gitlab.Push),
		hook(t, 3, "", "acme", "", "", gitlab.Push, gitlab.Member),
		hook(t, 4, "", "acme", "wildcard", "*-stable", gitlab.Push),
		hook(t, 5, "", "acme", "regex", "^(feature|hotfix)/", gitlab.Push),
		hook(t, 6, "acme/other", "", "", "", gitlab.Push),
		hook(t, 7, "", "ACME", "", "", gitlab.TagPush), // paths are case-insensitive
		hook(t, 8, "", "acme/platform", "", "", gitlab.Member),
		hook(t, 9, "", "acme", "wildcard", "main", gitlab.TagPush), // branch filters ignore tag pushes
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ev   webhook.Event
		want []int64
	}{
		{"push to main reaches project and every ancestor group", webhook.Event{Trigger: "push", Project: "acme/platform/api", Namespace: "acme/platform", Ref: "refs/heads/main"}, []int64{1, 2, 3}},
		{"stable branch passes the wildcard", webhook.Event{Trigger: "push", Project: "acme/platform/api", Namespace: "acme/platform", Ref: "refs/heads/12-0-stable"}, []int64{1, 2, 3, 4}},
		{"feature branch passes the regex", webhook.Event{Trigger: "push", Project: "acme/platform/api", Namespace: "acme/platform", Ref: "refs/heads/feature/x"}, []int64{1, 2, 3, 5}},
		{"issues only where enabled", webhook.Event{Trigger: "issues", Project: "acme/platform/api", Namespace: "acme/platform"}, []int64{1}},
		{"tag push ignores branch filter, case-insensitive group", webhook.Event{Trigger: "tag_push", Project: "acme/platform/api", Namespace: "acme/platform", Ref: "refs/tags/v1"}, []int64{7, 9}},
		{"group event reaches the group and ancestors only", webhook.Event{Trigger: "member", Namespace: "acme/platform"}, []int64{3, 8}},
		{"other namespace gets nothing", webhook.Event{Trigger: "push", Project: "other/api", Namespace: "other", Ref: "refs/heads/main"}, []int64{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ids(Match(set, &c.ev, nil)); !slices.Equal(got, c.want) {
				t.Fatalf("matched %v, want %v", got, c.want)
			}
		})
	}
}

func BenchmarkMatch10k(b *testing.B) {
	hooks := make([]*webhook.Hook, 0, 10000)
	for i := range 10000 {
		hooks = append(hooks, hook(b, int64(i+1), "", "group"+string(rune('a'+i%26))+"/sub", "wildcard", "*-stable", gitlab.Push))
	}
	set, _ := webhook.NewHookSet(hooks)
	ev := webhook.Event{Trigger: "push", Project: "groupa/sub/api", Namespace: "groupa/sub", Ref: "refs/heads/1-stable"}
	var dst []*webhook.Hook
	b.ReportAllocs()
	for b.Loop() {
		dst = Match(set, &ev, dst[:0])
	}
}
