package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	_ "github.com/grt-continuation/caddy-webhooks"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

const (
	apiBase        = "http://localhost:9080/api/v4"
	apiAdminToken  = "glpat-admin-0123456789abcdef"
	apiScopedToken = "glpat-scoped-0123456789abcdef"
	// Secrets that must never appear in Redis, responses or logs.
	hookTokenSecret  = "hook-token-PLAINTEXT-7f3a"
	urlVarSecret     = "urlvar-PLAINTEXT-91bc"
	customHdrSecret  = "header-PLAINTEXT-c0de"
	customHdrSecret2 = "header2-PLAINTEXT-beef"
)

// apiReceived is one request an apiReceiver got.
type apiReceived struct {
	Path   string
	Header http.Header
	Body   []byte
}

type apiReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []apiReceived
	ch  chan apiReceived
}

func newAPIReceiver(t *testing.T) *apiReceiver {
	rc := &apiReceiver{ch: make(chan apiReceived, 64)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec := apiReceived{Path: r.URL.Path, Header: r.Header.Clone(), Body: b}
		rc.mu.Lock()
		rc.got = append(rc.got, rec)
		rc.mu.Unlock()
		rc.ch <- rec
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// wait collects n requests or fails after the timeout.
func (rc *apiReceiver) wait(t *testing.T, n int, timeout time.Duration) []apiReceived {
	t.Helper()
	var out []apiReceived
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case r := <-rc.ch:
			out = append(out, r)
		case <-deadline:
			t.Fatalf("apiReceiver got %d requests, want %d: %v", len(out), n, receivedPaths(out))
		}
	}
	return out
}

func receivedPaths(rs []apiReceived) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Path)
	}
	return out
}

func receivedByPath(rs []apiReceived) map[string]apiReceived {
	m := map[string]apiReceived{}
	for _, r := range rs {
		m[r.Path] = r
	}
	return m
}

func newEncryptionKey(t *testing.T) string {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// apiFixture is a Caddy with the hooks API under /api/v4 and a captured app
// under /app.
type apiFixture struct {
	tester *caddytest.Tester
	redis  *redistest.Server
	recv   *apiReceiver
	client *gitlab.Client
}

func startAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	return startAPIFixtureWith(t, "allow_local_requests")
}

// startAPIFixtureWith starts the fixture with network as the app's policy
// line; without allow_local_requests its configured hook points off
// loopback (and is never delivered to).
func startAPIFixtureWith(t *testing.T, network string) *apiFixture {
	t.Helper()
	f := &apiFixture{redis: redistest.Start(t), recv: newAPIReceiver(t)}
	configHookURL := f.recv.URL
	if network != "allow_local_requests" {
		configHookURL = "https://audit.example.invalid"
	}
	t.Setenv("WEBHOOKS_TEST_ADMIN_TOKEN", apiAdminToken)
	t.Setenv("WEBHOOKS_TEST_ENCRYPTION_KEY", newEncryptionKey(t))
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ref := r.URL.Query().Get("ref")
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Header().Set("X-Webhook-Ref", ref)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object_kind":"push","ref":%q,"project":{"path_with_namespace":"acme/api"}}`, ref)
	}))
	t.Cleanup(upstream.Close)
	f.tester = caddytest.NewTester(t)
	f.tester.InitServer(testCaddyfile(`
	{
		webhooks {
			redis %s
			namespace apitest
			%s
			encryption_key {env.WEBHOOKS_TEST_ENCRYPTION_KEY}
			hook ops-audit {
				url %s/config
				project acme/api
				events push
			}
		}
	}
	localhost:9080 {
		handle_path /api/v4/* {
			webhooks_api {
				token admin {env.WEBHOOKS_TEST_ADMIN_TOKEN}
				token api-team %s scope acme/api
				max_group_hooks 2
				max_body 64KiB
			}
		}
		handle /app/* {
			webhooks_capture
			reverse_proxy %s
		}
	}
	`, f.redis.URL, network, configHookURL, apiScopedToken, upstream.Listener.Addr()), "caddyfile")
	c, err := gitlab.NewClient(apiAdminToken, gitlab.WithBaseURL(apiBase), gitlab.WithCustomRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	return f
}

// raw sends a request and returns the status and trimmed body.
func (f *apiFixture) raw(t *testing.T, method, path, token, contentType string, body []byte) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, "http://localhost:9080"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	if token != "" {
		req.Header.Set("PRIVATE-TOKEN", token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := f.tester.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
}

func (f *apiFixture) event(t *testing.T, ref string) {
	t.Helper()
	resp, err := f.tester.Client.Get("http://localhost:9080/app/push?ref=" + ref)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the app's push: %s", answered(resp, string(body)))
	}
}

func TestAPIWithGitLabClient(t *testing.T) {
	f := startAPIFixture(t)
	c := f.client

	// Project hook through the official client, by URL-encoded path.
	ph, resp, err := c.Projects.AddProjectHook("acme/api", &gitlab.AddProjectHookOptions{
		URL: gitlab.Ptr(f.recv.URL + "/project"), Name: gitlab.Ptr("ci"), Token: gitlab.Ptr(hookTokenSecret),
		PushEvents: gitlab.Ptr(true), PushEventsBranchFilter: gitlab.Ptr("main"),
		CustomHeaders: &[]*gitlab.HookCustomHeader{{Key: "X-Team", Value: customHdrSecret}},
	})
	if err != nil {
		t.Fatalf("AddProjectHook: %v", err)
	}
	if resp.StatusCode != http.StatusCreated || ph.ID <= 0 || ph.ProjectID <= 0 || ph.Name != "ci" ||
		!ph.PushEvents || ph.TagPushEvents || !ph.EnableSSLVerification || ph.PushEventsBranchFilter != "main" ||
		ph.BranchFilterStrategy != "wildcard" || ph.AlertStatus != "executable" || ph.CreatedAt == nil {
		t.Fatalf("AddProjectHook = %d %+v", resp.StatusCode, ph)
	}
	if len(ph.CustomHeaders) != 1 || ph.CustomHeaders[0].Key != "X-Team" || ph.CustomHeaders[0].Value != "" {
		t.Fatalf("custom headers = %+v, want the key only", ph.CustomHeaders)
	}

	// The numeric project id works once the path was used.
	got, _, err := c.Projects.GetProjectHook(int(ph.ProjectID), ph.ID)
	if err != nil || got.ID != ph.ID || got.URL != f.recv.URL+"/project" {
		t.Fatalf("GetProjectHook by numeric id = %+v, %v", got, err)
	}

	// Edit.
	ed, _, err := c.Projects.EditProjectHook("acme/api", ph.ID, &gitlab.EditProjectHookOptions{
		Name: gitlab.Ptr("ci-edited"), TagPushEvents: gitlab.Ptr(true),
	})
	if err != nil || ed.Name != "ci-edited" || !ed.TagPushEvents || !ed.PushEvents {
		t.Fatalf("EditProjectHook = %+v, %v", ed, err)
	}
	resp, err = c.Projects.SetProjectCustomHeader("acme/api", ph.ID, "X-Extra", &gitlab.SetHookCustomHeaderOptions{Value: gitlab.Ptr(customHdrSecret2)})
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("SetProjectCustomHeader: %v", err)
	}
	// A variable the URL does not use yet is allowed, as in GitLab.
	resp, err = c.Projects.SetProjectWebhookURLVariable("acme/api", ph.ID, "unused", &gitlab.SetProjectWebhookURLVariableOptions{Value: gitlab.Ptr("x")})
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("SetProjectWebhookURLVariable: %v", err)
	}
	resp, err = c.Projects.DeleteProjectWebhookURLVariable("acme/api", ph.ID, "unused")
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DeleteProjectWebhookURLVariable: %v", err)
	}

	// A hook with a masked URL variable (client-go has no url_variables on
	// create; GitLab's curl recipe sends JSON).
	body := fmt.Sprintf(`{"url":%q,"push_events":true,"url_variables":[{"key":"secret","value":%q}]}`,
		f.recv.URL+"/masked/{secret}", urlVarSecret)
	st, out, _ := f.raw(t, "POST", "/api/v4/projects/acme%2Fapi/hooks", apiAdminToken, "application/json", []byte(body))
	if st != http.StatusCreated || !strings.Contains(out, `"url":"`+f.recv.URL+`/masked/{secret}"`) ||
		!strings.Contains(out, `"url_variables":[{"key":"secret"}]`) || strings.Contains(out, urlVarSecret) {
		t.Fatalf("create masked hook = %d %s", st, out)
	}

	// Group hook on an ancestor group.
	gh, _, err := c.Groups.AddGroupHook("acme", &gitlab.AddGroupHookOptions{
		URL: gitlab.Ptr(f.recv.URL + "/group"), PushEvents: gitlab.Ptr(true), MemberEvents: gitlab.Ptr(true),
		Token: gitlab.Ptr(hookTokenSecret),
	})
	if err != nil || !gh.MemberEvents || gh.GroupID <= 0 {
		t.Fatalf("AddGroupHook = %+v, %v", gh, err)
	}
	groups, _, err := c.Groups.ListGroupHooks("acme", nil)
	if err != nil || len(groups) != 1 || groups[0].ID != gh.ID {
		t.Fatalf("ListGroupHooks = %+v, %v", groups, err)
	}

	// Listing shows the API hooks and the configured one, with GitLab's
	// pagination headers.
	list, resp, err := c.Projects.ListProjectHooks("acme/api", &gitlab.ListProjectHooksOptions{ListOptions: gitlab.ListOptions{PerPage: 2}})
	if err != nil || len(list) != 2 || resp.TotalItems != 3 || resp.TotalPages != 2 || resp.NextPage != 2 {
		t.Fatalf("ListProjectHooks = %d hooks, total %d, pages %d, next %d, %v", len(list), resp.TotalItems, resp.TotalPages, resp.NextPage, err)
	}
	if link := resp.Header.Get("Link"); !strings.Contains(link, "http://localhost:9080/api/v4/projects/acme%2Fapi/hooks?page=2&per_page=2>; rel=\"next\"") {
		t.Fatalf("Link = %q", link)
	}
	list2, _, err := c.Projects.ListProjectHooks("acme/api", &gitlab.ListProjectHooksOptions{ListOptions: gitlab.ListOptions{PerPage: 2, Page: 2}})
	if err != nil || len(list2) != 1 || list2[0].ID < 1<<52 || list2[0].Name != "ops-audit" {
		t.Fatalf("page 2 = %+v, %v", list2, err)
	}
	configID := list2[0].ID

	// A push to main reaches the project hook, the masked hook, the group
	// hook of the ancestor group and the configured hook.
	f.event(t, "refs/heads/main")
	rs := receivedByPath(f.recv.wait(t, 4, 10*time.Second))
	p, ok := rs["/project"]
	if !ok {
		t.Fatalf("project hook not called: %v", rs)
	}
	if p.Header.Get("X-Gitlab-Token") != hookTokenSecret || p.Header.Get("X-Team") != customHdrSecret ||
		p.Header.Get("X-Extra") != customHdrSecret2 || p.Header.Get("X-Gitlab-Event") != "Push Hook" {
		t.Fatalf("project hook headers = %v", p.Header)
	}
	if !strings.Contains(string(p.Body), `"ref":"refs/heads/main"`) {
		t.Fatalf("project hook body = %s", p.Body)
	}
	for _, want := range []string{"/masked/" + urlVarSecret, "/group", "/config"} {
		if _, ok := rs[want]; !ok {
			t.Fatalf("%s not called: %v", want, receivedPaths(f.recv.got))
		}
	}

	// A push to another branch skips the project hook's branch filter.
	f.event(t, "refs/heads/feature")
	rs = receivedByPath(f.recv.wait(t, 3, 10*time.Second))
	if _, ok := rs["/project"]; ok {
		t.Fatal("branch filter main let a push to feature through")
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(f.recv.ch); n != 0 {
		t.Fatalf("%d unexpected extra deliveries", n)
	}

	// Test endpoint: a sample push, synchronously.
	resp, err = c.Projects.TriggerTestProjectHook("acme/api", ph.ID, gitlab.ProjectHookEventPush)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("TriggerTestProjectHook: %v", err)
	}
	tr := f.recv.wait(t, 1, 5*time.Second)[0]
	if tr.Path != "/project" || tr.Header.Get("X-Gitlab-Event") != "Push Hook" || tr.Header.Get("X-Gitlab-Token") != hookTokenSecret {
		t.Fatalf("test delivery = %s %v", tr.Path, tr.Header)
	}
	st, out, _ = f.raw(t, "POST", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/test/deployment_events", ph.ID), apiAdminToken, "", nil)
	if st != http.StatusUnprocessableEntity || out != `{"message":"Testing not available for this hook"}` {
		t.Fatalf("test deployment_events = %d %s", st, out)
	}

	// Configured hooks are read-only.
	_, err = c.Projects.DeleteProjectHook("acme/api", configID)
	if er, ok := err.(*gitlab.ErrorResponse); !ok || er.Response.StatusCode != http.StatusForbidden {
		t.Fatalf("DeleteProjectHook(configured) = %v", err)
	}
	st, out, _ = f.raw(t, "PUT", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d", configID), apiAdminToken, "application/json", []byte(`{"name":"x"}`))
	if want := fmt.Sprintf(`{"message":"403 Forbidden - hook %d is declared in the Caddy configuration and is read-only through the API"}`, configID); st != 403 || out != want {
		t.Fatalf("PUT configured = %d %s", st, out)
	}

	// Secrets are encrypted at rest: no Redis value holds a plaintext.
	assertNoPlaintextInRedis(t, f.redis, hookTokenSecret, urlVarSecret, customHdrSecret, customHdrSecret2)

	// Delete, idempotent by status: the second time is a 404.
	resp, err = c.Projects.DeleteProjectHook("acme/api", ph.ID)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DeleteProjectHook: %v", err)
	}
	st, out, _ = f.raw(t, "DELETE", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d", ph.ID), apiAdminToken, "", nil)
	if st != 404 || out != `{"message":"404 Not found"}` {
		t.Fatalf("second delete = %d %s", st, out)
	}
	resp, err = c.Groups.DeleteGroupHook("acme", gh.ID)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DeleteGroupHook: %v", err)
	}
}

func assertNoPlaintextInRedis(t *testing.T, srv *redistest.Server, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	rdb := srv.Client()
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("KEYS: %v (%d keys)", err, len(keys))
	}
	for _, k := range keys {
		var dump string
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			dump = rdb.Get(ctx, k).Val()
		case "hash":
			dump = fmt.Sprint(rdb.HGetAll(ctx, k).Val())
		case "set":
			dump = fmt.Sprint(rdb.SMembers(ctx, k).Val())
		case "stream":
			dump = fmt.Sprint(rdb.XRange(ctx, k, "-", "+").Val())
		case "zset":
			dump = fmt.Sprint(rdb.ZRangeWithScores(ctx, k, 0, -1).Val())
		case "list":
			dump = fmt.Sprint(rdb.LRange(ctx, k, 0, -1).Val())
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
		for _, s := range secrets {
			if strings.Contains(dump, s) {
				t.Fatalf("Redis key %s holds the plaintext secret %q", k, s)
			}
		}
	}
}

func TestAPIRawHTTP(t *testing.T) {
	f := startAPIFixture(t)
	hooks := "/api/v4/projects/acme%2Fapi/hooks"
	valid := fmt.Sprintf(`{"url":%q}`, f.recv.URL+"/x")
	huge := []byte(`{"url":"http://example.com/","description":"` + strings.Repeat("a", 70<<10) + `"}`)
	cases := []struct {
		name, method, path, token, ctype string
		body                             []byte
		status                           int
		want                             string
	}{
		{"no token", "GET", hooks, "", "", nil, 401, `{"message":"401 Unauthorized"}`},
		{"wrong token", "GET", hooks, "glpat-wrong-0123456789abcdef", "", nil, 401, `{"message":"401 Unauthorized"}`},
		{"empty list", "GET", "/api/v4/projects/acme%2Fempty/hooks", apiAdminToken, "", nil, 200, `[]`},
		{"scoped in scope", "GET", "/api/v4/projects/acme%2Fapi%2Fsub/hooks", apiScopedToken, "", nil, 200, `[]`},
		{"scoped out of scope", "GET", "/api/v4/projects/acme%2Fother/hooks", apiScopedToken, "", nil, 403, `{"message":"403 Forbidden"}`},
		{"scoped on parent group", "GET", "/api/v4/groups/acme/hooks", apiScopedToken, "", nil, 403, `{"message":"403 Forbidden"}`},
		{"unknown numeric project", "GET", "/api/v4/projects/999999/hooks", apiAdminToken, "", nil, 404, `{"message":"404 Project Not Found"}`},
		{"unknown numeric group", "GET", "/api/v4/groups/999999/hooks", apiAdminToken, "", nil, 404, `{"message":"404 Group Not Found"}`},
		// Caddy cleans the decoded path before handlers run, so a traversal
		// resolves to the project it names, and scopes still apply to it.
		{"traversal out of scope", "GET", "/api/v4/projects/acme%2Fapi%2F..%2F..%2Fother/hooks", apiScopedToken, "", nil, 403, `{"message":"403 Forbidden"}`},
		{"dot-dot id", "GET", "/api/v4/projects/../hooks", apiAdminToken, "", nil, 404, `{"error":"404 Not Found"}`},
		{"empty segment", "GET", "/api/v4/projects/acme%2F%2Fapi/hooks", apiAdminToken, "", nil, 404, `{"message":"404 Project Not Found"}`},
		{"invalid chars", "GET", "/api/v4/projects/acme%2Fa%20b/hooks", apiAdminToken, "", nil, 404, `{"message":"404 Project Not Found"}`},
		{"unknown route", "GET", "/api/v4/projects/acme%2Fapi/nothing", apiAdminToken, "", nil, 404, `{"error":"404 Not Found"}`},
		{"wrong method", "PATCH", hooks, apiAdminToken, "", nil, 405, `{"error":"405 Not Allowed"}`},
		{"bad json", "POST", hooks, apiAdminToken, "application/json", []byte(`{"url":`), 400, `{"error":"message body does not match declared format"}`},
		{"json array", "POST", hooks, apiAdminToken, "application/json", []byte(`[1]`), 400, `{"error":"message body does not match declared format"}`},
		{"missing url", "POST", hooks, apiAdminToken, "application/json", []byte(`{"push_events":true}`), 400, `{"error":"url is missing"}`},
		{"wrong type", "POST", hooks, apiAdminToken, "application/json", []byte(`{"url":"http://example.com/","push_events":"maybe"}`), 400, `{"error":"push_events is invalid"}`},
		{"object as url", "POST", hooks, apiAdminToken, "application/json", []byte(`{"url":{"a":1}}`), 400, `{"error":"url is invalid"}`},
		{"bad strategy", "POST", hooks, apiAdminToken, "application/json", []byte(`{"url":"http://example.com/","branch_filter_strategy":"glob"}`), 400, `{"error":"branch_filter_strategy does not have a valid value"}`},
		{"ftp url", "POST", hooks, apiAdminToken, "application/json", []byte(`{"url":"ftp://example.com/"}`), 422, `{"error":"Invalid url given"}`},
		{"missing url variable", "POST", hooks, apiAdminToken, "application/json", []byte(`{"url":"http://example.com/{x}"}`), 422, `{"error":"Invalid url given"}`},
		{"bad regex filter", "POST", hooks, apiAdminToken, "application/json", []byte(`{"url":"http://example.com/","branch_filter_strategy":"regex","push_events_branch_filter":"(x"}`), 422, `{"error":"Invalid branch filter given"}`},
		{"bad wildcard filter", "POST", hooks, apiAdminToken, "application/json", []byte(`{"url":"http://example.com/","push_events_branch_filter":"a..b"}`), 422, `{"error":"Invalid branch filter given"}`},
		{"bad custom header", "POST", hooks, apiAdminToken, "application/json", []byte(`{"url":"http://example.com/","custom_headers":[{"key":"X--bad","value":"v"}]}`), 422, `{"error":"Custom headers must be a valid json schema"}`},
		{"custom header without value", "POST", hooks, apiAdminToken, "application/json", []byte(`{"url":"http://example.com/","custom_headers":[{"key":"X-A"}]}`), 400, `{"error":"custom_headers[0][value] is missing"}`},
		{"huge body", "POST", hooks, apiAdminToken, "application/json", huge, 413, `{"message":"413 Request Entity Too Large"}`},
		{"unsupported type", "POST", hooks, apiAdminToken, "text/plain", []byte(valid), 415, `{"error":"The provided content-type 'text/plain' is not supported."}`},
		{"bad hook id", "GET", hooks + "/abc", apiAdminToken, "", nil, 400, `{"error":"hook_id is invalid"}`},
		{"missing hook", "GET", hooks + "/123456", apiAdminToken, "", nil, 404, `{"message":"404 Not found"}`},
		{"bad test trigger", "POST", hooks + "/1/test/nope_events", apiAdminToken, "", nil, 400, `{"error":"trigger does not have a valid value"}`},
		{"group trigger on project", "POST", hooks + "/1/test/member_events", apiAdminToken, "", nil, 400, `{"error":"trigger does not have a valid value"}`},
	}
	for _, c := range cases {
		st, out, _ := f.raw(t, c.method, c.path, c.token, c.ctype, c.body)
		if st != c.status || out != c.want {
			t.Errorf("%s: %s %s = %d %s, want %d %s", c.name, c.method, c.path, st, out, c.status, c.want)
		}
	}

	// Bearer works like PRIVATE-TOKEN.
	req, _ := http.NewRequest("GET", "http://localhost:9080"+hooks, nil)
	req.Header.Set("Authorization", "Bearer "+apiAdminToken)
	f.tester.AssertResponseCode(req, 200)

	// Unknown fields are ignored, as GitLab does; form bodies work (curl -d).
	st, out, _ := f.raw(t, "POST", hooks, apiAdminToken, "application/json",
		[]byte(fmt.Sprintf(`{"url":%q,"no_such_field":1,"issues_events":"true"}`, f.recv.URL+"/x")))
	var h map[string]any
	if st != 201 || json.Unmarshal([]byte(out), &h) != nil || h["no_such_field"] != nil || h["issues_events"] != true || h["push_events"] != true {
		t.Fatalf("create with unknown field = %d %s", st, out)
	}
	id := int64(h["id"].(float64))
	st, out, _ = f.raw(t, "PUT", fmt.Sprintf("%s/%d", hooks, id), apiAdminToken, "application/x-www-form-urlencoded",
		[]byte("push_events=false&name=form"))
	if st != 200 || !strings.Contains(out, `"name":"form"`) || !strings.Contains(out, `"push_events":false`) {
		t.Fatalf("form PUT = %d %s", st, out)
	}
	st, out, _ = f.raw(t, "PUT", fmt.Sprintf("%s/%d", hooks, id), apiAdminToken, "application/json", []byte(`{"unknown":1}`))
	if st != 400 || out != `{"error":"No parameters provided"}` {
		t.Fatalf("empty PUT = %d %s", st, out)
	}
	st, out, _ = f.raw(t, "PUT", fmt.Sprintf("%s/%d/url_variables/1bad", hooks, id), apiAdminToken, "application/json", []byte(`{"value":"v"}`))
	if st != 422 || out != `{"error":"Illegal key or value"}` {
		t.Fatalf("bad url variable = %d %s", st, out)
	}
	st, out, _ = f.raw(t, "PUT", fmt.Sprintf("%s/%d/custom_headers/X-A", hooks, id), apiAdminToken, "application/json", []byte(`{}`))
	if st != 400 || out != `{"error":"value is missing"}` {
		t.Fatalf("custom header without value = %d %s", st, out)
	}
	st, out, _ = f.raw(t, "DELETE", fmt.Sprintf("%s/%d/custom_headers/X-None", hooks, id), apiAdminToken, "", nil)
	if st != 404 || out != `{"message":"404 Custom header Not Found"}` {
		t.Fatalf("delete missing header = %d %s", st, out)
	}
	st, out, _ = f.raw(t, "DELETE", fmt.Sprintf("%s/%d/url_variables/none", hooks, id), apiAdminToken, "", nil)
	if st != 404 || out != `{"message":"404 URL variable Not Found"}` {
		t.Fatalf("delete missing variable = %d %s", st, out)
	}
	// A scoped token cannot reach another project's hook by its id either.
	st, out, _ = f.raw(t, "GET", fmt.Sprintf("/api/v4/projects/acme%%2Fother/hooks/%d", id), apiAdminToken, "", nil)
	if st != 404 || out != `{"message":"404 Not found"}` {
		t.Fatalf("hook of another project = %d %s", st, out)
	}

	// Group hook limit (max_group_hooks 2), with GitLab's message.
	for i := range 3 {
		st, out, _ = f.raw(t, "POST", "/api/v4/groups/limits/hooks", apiAdminToken, "application/json", []byte(valid))
		if i < 2 && st != 201 {
			t.Fatalf("group hook %d = %d %s", i, st, out)
		}
	}
	if st != 422 || out != `{"error":"Maximum number of group hooks (2) exceeded"}` {
		t.Fatalf("third group hook = %d %s", st, out)
	}
}
