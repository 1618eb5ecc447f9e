package webhook

import (
	"errors"
	"slices"
	"strings"
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

// Validate reports every problem in the order GitLab's API reports them
// (URL, branch filter, custom headers, then the rest), with the details of
// the first, whatever the order the checks find them.
func TestHookValidateReportsGitLabsOrder(t *testing.T) {
	h := &Hook{Project: "a/b", URL: "ftp://x", Token: "a\nb", URLVariables: map[string]string{"": "v"},
		CustomHeaders: map[string]string{"Bad Name": "v"}}
	var v Invalid
	v.Add(BadBranchFilter, errors.New("bad filter"))
	h.Check(&v)
	var inv *InvalidError
	if !errors.As(v.Err(), &inv) {
		t.Fatalf("err = %v, want an *InvalidError", v.Err())
	}
	want := []Problem{BadURL, BadBranchFilter, BadCustomHeaders, BadURLVariables, BadToken}
	if !slices.Equal(inv.Problems, want) {
		t.Errorf("problems = %v, want %v", inv.Problems, want)
	}
	if !strings.Contains(inv.Error(), "invalid url") {
		t.Errorf("error = %q, want the URL's", inv.Error())
	}
	if (&Hook{Project: "a/b", URL: "http://x/" + strings.Repeat("a", MaxURLLength)}).Validate() == nil {
		t.Error("a URL over GitLab's 8192 characters was accepted")
	}
}
