package api

import (
	"net/url"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func TestMatchRoutesTheWholePath(t *testing.T) {
	cases := []struct {
		path string
		ok   bool
		want route
	}{
		{"/projects/acme%2Fapi/hooks", true, route{kind: webhook.KindProject, rawID: "acme%2Fapi"}},
		{"/groups/acme/hooks/7", true, route{kind: webhook.KindGroup, rawID: "acme", rawHook: "7"}},
		{"/projects/5/hooks/7/test/push_events", true, route{kind: webhook.KindProject, rawID: "5", rawHook: "7", sub: "test", rawKey: "push_events"}},
		{"/projects/5/hooks/7/events", true, route{kind: webhook.KindProject, rawID: "5", rawHook: "7", sub: "events"}},
		{"/projects/5/hooks/7/events/9/resend", true, route{kind: webhook.KindProject, rawID: "5", rawHook: "7", sub: "resend", rawKey: "9"}},
		{"/projects/5/hooks/7/custom_headers/X-A", true, route{kind: webhook.KindProject, rawID: "5", rawHook: "7", sub: "custom_headers", rawKey: "X-A"}},
		{"/projects/x/hooks/1/events/9", true, route{kind: webhook.KindProject, rawID: "x", rawHook: "1", sub: "events", rawKey: "9"}},
		{"/groups/acme/hooks/7/url_variables/x", true, route{kind: webhook.KindGroup, rawID: "acme", rawHook: "7", sub: "url_variables", rawKey: "x"}},
		{"/projects/x", false, route{}},
		{"/hooks", false, route{}},
		{"/projects/x/hooks/1/other/y", false, route{}},
		{"/projects/x/hooks/1/events/9/retry", false, route{}},
		// A hooks path later in the URL is not a route: the project acted
		// on is always the one named first.
		{"/projects/allowed%2Fproj/hooks/projects/victim%2Frepo/hooks", false, route{}},
		{"/projects/allowed%2Fproj/hooks/1/projects/victim%2Frepo/hooks/324", false, route{}},
		{"/x/projects/victim/hooks", false, route{}},
		{"/api/v4/projects/victim/hooks", false, route{}},
		{"projects/victim/hooks", false, route{}},
		{"//projects/victim/hooks", false, route{}},
		{"/projects//hooks", false, route{}},
		{"/projects/a/hooks/", false, route{}},
		{"/projects/a/hooks/1/", false, route{}},
		{"/projects/a/hooks/1/test", false, route{}},
		{"/projects/a/hooks/1/events/2/resend/x", false, route{}},
		{"/Projects/a/hooks", false, route{}},
	}
	for _, c := range cases {
		got, ok := match(c.path)
		if ok != c.ok || got != c.want {
			t.Errorf("match(%q) = %+v, %v; want %+v, %v", c.path, got, ok, c.want, c.ok)
		}
	}
}

// FuzzMatch checks that no path routes to a project or group other than
// the one named at its start, and that a route covers the whole path.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{
		"/projects/acme%2Fapi/hooks",
		"/groups/acme/hooks/1/events/2/resend",
		"/projects/allowed%2Fproj/hooks/projects/victim%2Frepo/hooks",
		"/projects/a/hooks/1/projects/b/hooks/2",
		"/projects/1/hooks/2/url_variables/k",
		"/groups/g/hooks/3/test/push_events",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		match(p) // any string: no panic
		u, err := url.Parse("http://h" + p)
		if err != nil {
			return
		}
		esc := u.EscapedPath()
		rt, ok := match(esc)
		if !ok {
			return
		}
		segs := strings.Split(esc, "/")
		if len(segs) < 4 || segs[0] != "" || segs[3] != "hooks" {
			t.Fatalf("match(%q) routed a path that does not start with /<kind>/<id>/hooks", esc)
		}
		wantKind := map[string]webhook.Kind{"projects": webhook.KindProject, "groups": webhook.KindGroup}[segs[1]]
		if wantKind == "" || rt.kind != wantKind || rt.rawID != segs[2] || rt.rawID == "" {
			t.Fatalf("match(%q) = %+v: not the %s named first (%q)", esc, rt, segs[1], segs[2])
		}
		// The route rebuilt from its parts is the whole path.
		rebuilt := "/" + segs[1] + "/" + rt.rawID + "/hooks"
		switch {
		case rt.rawHook == "":
		case rt.sub == "":
			rebuilt += "/" + rt.rawHook
		case rt.sub == "resend":
			rebuilt += "/" + rt.rawHook + "/events/" + rt.rawKey + "/resend"
		case rt.rawKey == "":
			rebuilt += "/" + rt.rawHook + "/" + rt.sub
		default:
			rebuilt += "/" + rt.rawHook + "/" + rt.sub + "/" + rt.rawKey
		}
		if rebuilt != esc {
			t.Fatalf("match(%q) = %+v covers only %q", esc, rt, rebuilt)
		}
	})
}
