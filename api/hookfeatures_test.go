package api

import (
	"context"
	"encoding/base64"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func signingToken(c byte) string {
	return gitlab.SigningTokenPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(c), 32)))
}

// The signing tokens are secrets: they never follow a hook to another
// receiver (DESIGN.md), not even the one being rotated out.
func TestResetSecretsClearsSigningTokens(t *testing.T) {
	oldTok, newTok := signingToken('o'), signingToken('n')
	base := func() *webhook.HookRecord {
		return &webhook.HookRecord{
			URL:          "https://{host}/hook/{path}",
			URLVariables: map[string]string{"host": "recv.example", "path": "p1"},
			Signing:      gitlab.SigningTokens{Current: newTok, Previous: oldTok, PreviousUntil: time.Now().Add(time.Hour)},
		}
	}
	cases := []struct {
		name          string
		change        func(r *webhook.HookRecord) given
		current, prev bool
	}{
		{"nothing", func(*webhook.HookRecord) given { return given{} }, true, true},
		{"same receiver", func(r *webhook.HookRecord) given {
			r.URLVariables["path"] = "p2"
			return given{urlVariables: map[string]string{"path": "p2"}}
		}, true, true},
		{"another host", func(r *webhook.HookRecord) given {
			r.URLVariables["host"] = "evil.example"
			return given{urlVariables: map[string]string{"host": "evil.example"}}
		}, false, false},
		{"new URL template", func(r *webhook.HookRecord) given {
			r.URL = "https://other.example/"
			return given{}
		}, false, false},
		{"new URL with a signing token", func(r *webhook.HookRecord) given {
			r.URL = "https://other.example/"
			return given{signingToken: true}
		}, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base()
			oldURL, oldVars := r.URL, maps.Clone(r.URLVariables)
			resetSecrets(r, oldURL, oldVars, c.change(r))
			if (r.Signing.Current != "") != c.current || (r.Signing.Previous != "") != c.prev {
				t.Fatalf("signing after the change: current %v, previous %v; want %v, %v",
					r.Signing.Current != "", r.Signing.Previous != "", c.current, c.prev)
			}
		})
	}
}

func TestApplyRotatesSigningToken(t *testing.T) {
	oldTok, newTok := signingToken('o'), signingToken('n')
	r := &webhook.HookRecord{URL: "https://recv.example/", Signing: gitlab.SigningTokens{Current: oldTok}}
	(&hookInput{signingToken: &newTok}).apply(r, time.Hour)
	if r.Signing.Current != newTok || r.Signing.Previous != oldTok {
		t.Fatalf("after rotation: %+v", r.Signing)
	}
	if left := time.Until(r.Signing.PreviousUntil); left < 59*time.Minute || left > time.Hour {
		t.Fatalf("old token signs for %v more, want the overlap of 1h", left)
	}
	// Any later save drops the old token once its overlap is over.
	r.Signing.PreviousUntil = time.Now().Add(-time.Second)
	name := "renamed"
	(&hookInput{name: &name}).apply(r, time.Hour)
	if r.Signing.Current != newTok || r.Signing.Previous != "" {
		t.Fatalf("after the overlap: %+v", r.Signing)
	}
	empty := ""
	(&hookInput{signingToken: &empty}).apply(r, time.Hour)
	if !r.Signing.IsZero() || r.Signing.Previous != "" {
		t.Fatalf("removing the signing token keeps %+v", r.Signing)
	}
}

func TestValidateSigningTokenAndTemplate(t *testing.T) {
	ns := webhook.Namespace{Kind: webhook.KindProject, Path: "acme/api"}
	for _, c := range []struct {
		change func(r *webhook.HookRecord)
		want   string
	}{
		{func(r *webhook.HookRecord) { r.Signing.Current = signingToken('a') }, ""},
		{func(r *webhook.HookRecord) { r.Signing.Current = "whsec_short" }, "Signing token must be whsec_"},
		{func(r *webhook.HookRecord) { r.Signing.Current = "plain secret" }, "Signing token must be whsec_"},
		{func(r *webhook.HookRecord) { r.CustomWebhookTemplate = strings.Repeat("é", 4096) }, ""},
		{func(r *webhook.HookRecord) { r.CustomWebhookTemplate = strings.Repeat("x", 4097) }, "Custom webhook template is too long (maximum is 4096 characters)"},
		// Saved without rendering, as GitLab.
		{func(r *webhook.HookRecord) { r.CustomWebhookTemplate = `{"broken": {{x}}` }, ""},
	} {
		r := &webhook.HookRecord{URL: "https://recv.example/", Triggers: []string{"push"}, BranchFilterStrategy: gitlab.StrategyWildcard}
		c.change(r)
		err := validate(context.Background(), r, ns, true, &publicOnly)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if c.want == "" && got != "" || !strings.HasPrefix(got, c.want) {
			t.Errorf("validate = %q, want %q", got, c.want)
		}
	}
}
