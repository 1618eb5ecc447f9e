package engine

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// benchHooks builds n push hooks: spread over 1,000 projects in 100 groups
// (with one hook in ten on a group), or all on the group "acme" when
// oneGroup is set (every hook is then a candidate for every event).
func benchHooks(b *testing.B, n int, oneGroup bool, filter string) *HookSet {
	b.Helper()
	bf, err := gitlab.NewBranchFilter(gitlab.StrategyWildcard, filter)
	if err != nil {
		b.Fatal(err)
	}
	var ts gitlab.TriggerSet
	ts.Add(gitlab.Push)
	hooks := make([]*Hook, n)
	for i := range hooks {
		h := &Hook{ID: int64(i + 1), URL: "http://127.0.0.1/h", Triggers: ts, BranchFilter: bf}
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
	s, err := NewHookSet(hooks)
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
			ev := &Event{Trigger: "push", Project: "acme/team7/proj107", Namespace: "acme/team7", Ref: "refs/heads/release-1"}
			var dst []*Hook
			b.ReportAllocs()
			for b.Loop() {
				dst = s.Match(ev, dst[:0])
			}
			b.ReportMetric(float64(len(dst)), "hooks/op")
		})
	}
}

// BenchmarkIdempotencyKey is computed for every delivery attempt.
func BenchmarkIdempotencyKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = IdempotencyKey("0192f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f6", 12345)
	}
}

// BenchmarkNewLogEntry builds the log entry of a successful attempt, as
// every delivery does, and encodes it as AppendLog does.
func BenchmarkNewLogEntry(b *testing.B) {
	h := &Hook{ID: 1, URL: "http://127.0.0.1/h/{path}", Token: "secret-token",
		URLVariables: map[string]string{"path": "abc"}, CustomHeaders: map[string]string{"X-Team": "platform"}}
	body := []byte(`{"object_kind":"push","ref":"refs/heads/main","pad":"` + string(make([]byte, 0)) + `"}`)
	for len(body) < 1024 {
		body = append(body[:len(body)-2], `x"}`...)
	}
	req := http.Header{}
	(&gitlab.DeliveryHeaders{Trigger: gitlab.Push, UserAgent: "GitLab/18.6.0", Token: h.Token,
		WebhookUUID: "u", EventUUID: "e", IdempotencyKey: "k", Custom: h.CustomHeaders}).Apply(req)
	res := &Result{Status: 200, Header: http.Header{"Content-Length": {"0"}, "Date": {"x"}}, Duration: time.Millisecond, RequestHeader: req}
	b.ReportAllocs()
	for b.Loop() {
		e := NewLogEntry(LogDelivery, h, "ev", "chain", "push", body, res, DefaultLogMaxRequestBody)
		if _, err := jsonMarshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

// jsonMarshal stands for redisstore.AppendLog's encoding of the entry.
func jsonMarshal(e *redisstore.LogEntry) ([]byte, error) { return benchJSON(e) }

// BenchmarkNewLogEntryPush is BenchmarkNewLogEntry with GitLab's sample
// push payload, which holds e-mail addresses the log redacts.
func BenchmarkNewLogEntryPush(b *testing.B) {
	body, err := os.ReadFile("../api/samples/push.json")
	if err != nil {
		b.Fatal(err)
	}
	h := &Hook{ID: 1, URL: "http://127.0.0.1/h", Token: "secret-token"}
	res := &Result{Status: 200, Header: http.Header{"Content-Length": {"0"}}, Duration: time.Millisecond, RequestHeader: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		e := NewLogEntry(LogDelivery, h, "ev", "chain", "push", body, res, DefaultLogMaxRequestBody)
		if _, err := jsonMarshal(e); err != nil {
			b.Fatal(err)
		}
	}
}
