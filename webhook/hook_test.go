package webhook

import (
	"testing"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

func TestHookSetRejectsDuplicateIDs(t *testing.T) {
	var push gitlab.TriggerSet
	push.Add(gitlab.Push)
	a := &Hook{ID: 1, Project: "a/b", URL: "http://x", Triggers: push}
	b := &Hook{ID: 1, Project: "a/c", URL: "http://x", Triggers: push}
	if _, err := NewHookSet([]*Hook{a, b}); err == nil {
		t.Fatal("duplicate ids accepted")
	}
}

func TestHookValidate(t *testing.T) {
	bad := []Hook{
		{Project: "a/b", Group: "a", URL: "http://x"},
		{URL: "http://x"},
		{Project: "a/b", URL: "ftp://x"},
		{Project: "a/b", URL: "http://x/{missing}"},
		{Project: "a/b", URL: "http://x", Token: "a\nb"},
		{Project: "a/b", URL: "http://x", CustomHeaders: map[string]string{"Bad Name": "v"}},
	}
	for i, h := range bad {
		if err := h.Validate(); err == nil {
			t.Errorf("case %d accepted: %+v", i, h)
		}
	}
}
