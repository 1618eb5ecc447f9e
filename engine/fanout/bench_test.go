package fanout

import (
	"fmt"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// benchHooks builds n push hooks: spread over 1,000 projects in 100 groups
// (with one hook in ten on a group), or all on the group "acme" when
// oneGroup is set (every hook is then a candidate for every event).
func benchHooks(b *testing.B, n int, oneGroup bool, filter string) *webhook.HookSet {
	b.Helper()
	bf, err := gitlab.NewBranchFilter(gitlab.StrategyWildcard, filter)
	if err != nil {
		b.Fatal(err)
	}
	var ts gitlab.TriggerSet
	ts.Add(gitlab.Push)
	hooks := make([]*webhook.Hook, n)
	for i := range hooks {
		h := &webhook.Hook{ID: int64(i + 1), URL: "http://127.0.0.1/h", Triggers: ts, BranchFilter: bf}
		switch {
		case oneGroup:
			h.Group = "acme"
		case i%10 == 0:
			h.Group = fmt.Sprintf("acme/team%d", i%100)
		default:
			h.Project = fmt.Sprintf("acme/team%d/proj%d", i%100, i%1000)
		}
		hooks[i] = h
	}
	s, err := webhook.NewHookSet(hooks)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkMatch10kHooks is the fan-out's matching of one push event
// against 10,000 hooks.
func BenchmarkMatch10kHooks(b *testing.B) {
	for _, tc := range []struct {
		name     string
		oneGroup bool
		filter   string
	}{
		{"spread/all-branches", false, ""},
		{"spread/wildcard", false, "release-*"},
		{"one-group/all-branches", true, ""},
		{"one-group/wildcard", true, "release-*"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := benchHooks(b, 10000, tc.oneGroup, tc.filter)
			ev := &webhook.Event{Trigger: "push", Project: "acme/team7/proj107", Namespace: "acme/team7", Ref: "refs/heads/release-1"}
			var dst []*webhook.Hook
			b.ReportAllocs()
			for b.Loop() {
				dst = Match(s, ev, dst[:0])
			}
			b.ReportMetric(float64(len(dst)), "hooks/op")
		})
	}
}
