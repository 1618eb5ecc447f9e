package api

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func TestValidPath(t *testing.T) {
	for _, p := range []string{"acme", "acme/platform/api", "a.b_c-d/x"} {
		if !validPath(p) {
			t.Errorf("validPath(%q) = false", p)
		}
	}
	for _, p := range []string{"", "/acme", "acme/", "acme//api", "acme/../etc", "..", ".", "a b", "acme/-x", "a\x00b", strings.Repeat("a", maxPathLen+1)} {
		if validPath(p) {
			t.Errorf("validPath(%q) = true", p)
		}
	}
}

func TestScopes(t *testing.T) {
	a, err := newAuthenticator([]Token{{Name: "t", Value: "0123456789abcdefX", Scopes: []string{"Acme/Platform"}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	p := &a.tokens[0].p
	for path, want := range map[string]bool{
		"acme/platform": true, "acme/platform/api": true, "ACME/platform/x/y": true,
		"acme": false, "acme/platformer": false, "other": false,
	} {
		if got := p.may(path); got != want {
			t.Errorf("may(%q) = %v, want %v", path, got, want)
		}
	}
	for _, bad := range [][]Token{
		{{Name: "short", Value: "abc"}},
		{{Name: "empty", Value: ""}},
		{{Name: "a", Value: "0123456789abcdefX"}, {Name: "b", Value: "0123456789abcdefX"}},
		{{Name: "scope", Value: "0123456789abcdefX", Scopes: []string{"a/../b"}}},
	} {
		if _, err := newAuthenticator(bad, false); err == nil {
			t.Errorf("newAuthenticator(%v) accepted", bad[0].Name)
		}
	}
	if _, err := newAuthenticator(nil, false); err == nil {
		t.Error("no tokens and no upstream auth accepted")
	}
}

// FuzzHookInput drives arbitrary request bodies through parameter parsing,
// the edit rules and GitLab's validation: nothing may panic, and whatever
// validates must be a hook the engine can run with an http(s) URL.
func FuzzHookInput(f *testing.F) {
	f.Add("application/json", `{"url":"https://example.com/{a}","url_variables":[{"key":"a","value":"b"}],"push_events":"yes"}`)
	f.Add("application/json", `{"url":"http://x/","branch_filter_strategy":"regex","push_events_branch_filter":"^(a|b)$"}`)
	f.Add("application/json", `{"url":"http://x/","custom_headers":[{"key":"X-A","value":"v"}],"push_events_branch_filter":"feature/*"}`)
	f.Add("application/x-www-form-urlencoded", "url=http%3A%2F%2Fx%2F&push_events=false&tag_push_events=1")
	f.Add("application/json", `{"url":{"x":1},"push_events":[1]}`)
	f.Fuzz(func(t *testing.T, ctype, body string) {
		r := httptest.NewRequest(http.MethodPost, "/projects/a%2Fb/hooks", bytes.NewReader([]byte(body)))
		r.Header.Set("Content-Type", ctype)
		p, err := readParams(r, 1<<16)
		if err != nil {
			return
		}
		for _, kind := range []webhook.Kind{webhook.KindProject, webhook.KindGroup} {
			in := readInput(p, kind)
			rec := &webhook.HookRecord{Kind: kind, Triggers: []string{"push"}, EnableSSLVerification: true}
			in.apply(rec, DefaultSigningTokenOverlap)
			if validate(context.Background(), rec, webhook.Namespace{Kind: kind, Path: "a/b"}, true, &publicOnly) != nil {
				continue
			}
			raw, err := gitlab.InterpolateURL(rec.URL, rec.URLVariables)
			if err != nil {
				t.Fatalf("validated hook has an uninterpolatable URL %q: %v", rec.URL, err)
			}
			if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				t.Fatalf("validated hook has URL %q", raw)
			}
			if _, err := gitlab.NewBranchFilter(rec.BranchFilterStrategy, rec.PushEventsBranchFilter); err != nil {
				t.Fatalf("validated hook has a bad branch filter: %v", err)
			}
			o := entity(rec, true, delivery.HookHealth{AlertStatus: delivery.AlertExecutable}, nil)
			b, err := o.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range rec.URLVariables {
				if len(v) >= 8 && bytes.Contains(b, []byte(`"`+v+`"`)) {
					t.Fatalf("entity shows a URL variable value: %s", b)
				}
			}
		}
	})
}
