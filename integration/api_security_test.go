package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// authorizer is an app deciding who may manage which hooks behind
// forward_auth, written to docs/api.md: the session cookie "alice" may
// manage project allowed/proj only, read from X-Forwarded-Uri, the path
// webhooks_api routes on; the admin token may do anything.
func newAuthorizer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("PRIVATE-TOKEN") == apiAdminToken || r.Header.Get("Authorization") == "Bearer "+apiAdminToken {
			return
		}
		c, err := r.Cookie("session")
		if err != nil || c.Value != "alice" {
			http.Error(w, `{"message":"401 Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		u, err := url.ParseRequestURI(r.Header.Get("X-Forwarded-Uri"))
		if err != nil {
			http.Error(w, `{"message":"403 Forbidden"}`, http.StatusForbidden)
			return
		}
		segs := strings.Split(u.EscapedPath(), "/")
		if len(segs) < 4 || segs[0] != "" || segs[1] != "projects" || segs[3] != "hooks" {
			http.Error(w, `{"message":"403 Forbidden"}`, http.StatusForbidden)
			return
		}
		if id, err := url.PathUnescape(segs[2]); err != nil || id != "allowed/proj" {
			http.Error(w, `{"message":"403 Forbidden"}`, http.StatusForbidden)
			return
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// forwardAuthFixture is a Caddy with the forward_auth recipe of
// docs/api.md and the log filter of docs/deployment.md, logging at debug
// level to files.
type forwardAuthFixture struct {
	tester              *caddytest.Tester
	redis               *redistest.Server
	accessLog, debugLog string
}

func startForwardAuthFixture(t *testing.T) *forwardAuthFixture {
	t.Helper()
	dir := t.TempDir()
	f := &forwardAuthFixture{
		redis:     redistest.Start(t),
		accessLog: filepath.Join(dir, "access.log"),
		debugLog:  filepath.Join(dir, "caddy.log"),
	}
	authz := newAuthorizer(t)
	t.Setenv("WEBHOOKS_TEST_ADMIN_TOKEN", apiAdminToken)
	t.Setenv("WEBHOOKS_TEST_TENANT_TOKEN", tenantToken)
	t.Setenv("WEBHOOKS_TEST_ENCRYPTION_KEY", newEncryptionKey(t))
	f.tester = caddytest.NewTester(t)
	f.tester.InitServer(testCaddyfile(`
	{
		log {
			output file %s
			level DEBUG
			format filter {
				wrap console
				request>headers>Private-Token delete
			}
		}
		webhooks {
			redis %s
			namespace fatest
			allow_local_requests
			encryption_key {env.WEBHOOKS_TEST_ENCRYPTION_KEY}
		}
	}
	localhost:9080 {
		log {
			output file %s
			format filter {
				request>headers>Private-Token delete
			}
		}
		handle_path /api/v4/* {
			forward_auth %s {
				uri /internal/authz/webhooks
			}
			webhooks_api {
				token admin {env.WEBHOOKS_TEST_ADMIN_TOKEN}
				trust_upstream_auth
			}
		}
		handle /kept/api/v4/* {
			webhooks_api {
				prefix /kept/api/v4
				token admin {env.WEBHOOKS_TEST_ADMIN_TOKEN}
				token tenant {env.WEBHOOKS_TEST_TENANT_TOKEN} scope tenant
				max_scope_namespaces 3
			}
		}
		handle_path /down/* {
			forward_auth 127.0.0.1:1 {
				uri /authz
			}
			webhooks_api {
				trust_upstream_auth
			}
		}
	}
	`, f.debugLog, f.redis.URL, f.accessLog, authz.Listener.Addr()), "caddyfile")
	return f
}

// do sends a request with the given headers and returns status and body.
func (f *forwardAuthFixture) do(t *testing.T, method, path, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://localhost:9080"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.tester.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// namespaceKeys returns the project and group ids the API has given out.
func namespaceKeys(t *testing.T, srv *redistest.Server, ns string) map[string]string {
	t.Helper()
	rdb := srv.Client()
	defer rdb.Close()
	m, err := rdb.HGetAll(context.Background(), ns+":{h0}:ns:by_path").Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestForwardAuthSeesThePathTheAPIRoutes: the project an authorizer
// allows from the path is the one the API acts on; a second hooks path
// further down the URL is not a route.
func TestForwardAuthSeesThePathTheAPIRoutes(t *testing.T) {
	f := startForwardAuthFixture(t)
	admin := []string{"PRIVATE-TOKEN", apiAdminToken, "Content-Type", "application/json"}
	st, out := f.do(t, "POST", "/api/v4/projects/victim%2Frepo/hooks", `{"url":"http://127.0.0.1:1/victim"}`, admin...)
	if st != 201 {
		t.Fatalf("admin creates a victim hook = %d %s", st, out)
	}
	var victimHook int64
	fmt.Sscanf(out[strings.Index(out, `"id":`)+5:], "%d", &victimHook)

	alice := []string{"Cookie", "session=alice"}
	if st, out := f.do(t, "GET", "/api/v4/projects/allowed%2Fproj/hooks", "", alice...); st != 200 || out != "[]" {
		t.Fatalf("alice lists her project = %d %s", st, out)
	}
	if st, _ := f.do(t, "GET", "/api/v4/projects/victim%2Frepo/hooks", "", alice...); st != 403 {
		t.Fatalf("alice lists the victim's project = %d, want the authorizer's 403", st)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v4/projects/allowed%2Fproj/hooks/projects/victim%2Frepo/hooks"},
		{"GET", fmt.Sprintf("/api/v4/projects/allowed%%2Fproj/hooks/projects/victim%%2Frepo/hooks/%d", victimHook)},
		{"DELETE", fmt.Sprintf("/api/v4/projects/allowed%%2Fproj/hooks/1/projects/victim%%2Frepo/hooks/%d", victimHook)},
		{"DELETE", fmt.Sprintf("/api/v4/projects/allowed%%2Fproj/hooks/projects/victim%%2Frepo/hooks/%d", victimHook)},
	} {
		st, out := f.do(t, c.method, c.path, "", alice...)
		if st != 404 || out != `{"error":"404 Not Found"}` {
			t.Errorf("%s %s = %d %s, want 404", c.method, c.path, st, out)
		}
	}
	st, out = f.do(t, "GET", fmt.Sprintf("/api/v4/projects/victim%%2Frepo/hooks/%d", victimHook), "", admin...)
	if st != 200 || !strings.Contains(out, `"url":"http://127.0.0.1:1/victim"`) {
		t.Fatalf("the victim's hook after the attempts = %d %s", st, out)
	}

	// With the prefix kept (handle, prefix), the route is still the whole
	// path after it.
	if st, out := f.do(t, "GET", "/kept/api/v4/projects/victim%2Frepo/hooks", "", admin...); st != 200 || !strings.Contains(out, "/victim") {
		t.Fatalf("kept prefix = %d %s", st, out)
	}
	if st, _ := f.do(t, "GET", "/kept/api/v4/x/projects/victim%2Frepo/hooks", "", admin...); st != 404 {
		t.Fatalf("kept prefix, hooks path further down = %d, want 404", st)
	}
}

// TestCrossSiteWritesAreRefused: a form another site submits with the
// user's session cookie creates nothing; the page (same origin), and API
// clients with a token, keep working.
func TestCrossSiteWritesAreRefused(t *testing.T) {
	f := startForwardAuthFixture(t)
	hooks := "/api/v4/projects/allowed%2Fproj/hooks"
	form := "url=http%3A%2F%2F127.0.0.1%3A1%2Fevil&push_events=true"
	st, out := f.do(t, "POST", hooks, form, "Cookie", "session=alice",
		"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site",
		"Content-Type", "application/x-www-form-urlencoded")
	if st != 403 || out != `{"message":"403 Forbidden - cross-site request refused"}` {
		t.Fatalf("cross-site form POST = %d %s, want 403", st, out)
	}
	// An older browser sends only Origin.
	st, out = f.do(t, "POST", hooks, form, "Cookie", "session=alice",
		"Origin", "http://evil.example", "Content-Type", "application/x-www-form-urlencoded")
	if st != 403 {
		t.Fatalf("cross-origin form POST without Sec-Fetch-Site = %d %s, want 403", st, out)
	}
	if st, out := f.do(t, "GET", hooks, "", "Cookie", "session=alice"); st != 200 || out != "[]" {
		t.Fatalf("hooks after the forged requests = %d %s", st, out)
	}

	// The page: same origin, JSON, the session cookie.
	st, out = f.do(t, "POST", hooks, `{"url":"http://127.0.0.1:1/page"}`, "Cookie", "session=alice",
		"Origin", "http://localhost:9080", "Sec-Fetch-Site", "same-origin", "Content-Type", "application/json")
	if st != 201 {
		t.Fatalf("same-origin POST from the page = %d %s", st, out)
	}
	// curl with a token and a form body, as GitLab's docs show.
	st, out = f.do(t, "POST", hooks, form, "PRIVATE-TOKEN", apiAdminToken,
		"Content-Type", "application/x-www-form-urlencoded")
	if st != 201 {
		t.Fatalf("form POST with a token = %d %s", st, out)
	}
	// A token in a header is no browser credential, whatever the origin.
	st, out = f.do(t, "POST", hooks, form, "Authorization", "Bearer "+apiAdminToken,
		"Origin", "http://elsewhere.example", "Sec-Fetch-Site", "cross-site",
		"Content-Type", "application/x-www-form-urlencoded")
	if st != 201 {
		t.Fatalf("cross-site POST with a Bearer token = %d %s", st, out)
	}
}

// TestReadsAllocateNoIDs: reading the hooks of projects and groups never
// written gives GitLab's empty answers and stores nothing.
func TestReadsAllocateNoIDs(t *testing.T) {
	f := startForwardAuthFixture(t)
	admin := []string{"PRIVATE-TOKEN", apiAdminToken}
	for i := range 20 {
		for _, p := range []string{
			fmt.Sprintf("/api/v4/projects/acme%%2Fread-%d/hooks", i),
			fmt.Sprintf("/api/v4/groups/read-%d/hooks", i),
		} {
			if st, out := f.do(t, "GET", p, "", admin...); st != 200 || out != "[]" {
				t.Fatalf("GET %s = %d %s, want 200 []", p, st, out)
			}
		}
		p := fmt.Sprintf("/api/v4/projects/acme%%2Fread-%d/hooks/1", i)
		if st, out := f.do(t, "GET", p, "", admin...); st != 404 || out != `{"message":"404 Not found"}` {
			t.Fatalf("GET %s = %d %s, want 404", p, st, out)
		}
	}
	if ids := namespaceKeys(t, f.redis, "fatest"); len(ids) != 0 {
		t.Fatalf("reads gave out ids: %v", ids)
	}
	st, out := f.do(t, "POST", "/api/v4/projects/acme%2Fread-1/hooks", `{"url":"http://127.0.0.1:1/x"}`,
		"PRIVATE-TOKEN", apiAdminToken, "Content-Type", "application/json")
	if st != 201 {
		t.Fatalf("create = %d %s", st, out)
	}
	if ids := namespaceKeys(t, f.redis, "fatest"); len(ids) != 1 || ids["project:acme/read-1"] == "" {
		t.Fatalf("ids after one write: %v", ids)
	}
}

// tenantToken may manage the hooks of group tenant and below, through
// /kept/api/v4.
const tenantToken = "tenant-scoped-token-0123456789"

// TestRefusedWritesAllocateNoIDs: a write the API refuses (invalid, of a
// hook that does not exist, or over a limit) gives its project or group no
// id, so a token cannot grow the path index by failing; a stored write
// gives one.
func TestRefusedWritesAllocateNoIDs(t *testing.T) {
	f := startForwardAuthFixture(t)
	admin := []string{"PRIVATE-TOKEN", apiAdminToken, "Content-Type", "application/json"}
	for i, c := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/api/v4/projects/acme%%2Frefused-%d/hooks", `{"url":"ftp://127.0.0.1/x"}`, 422},
		{"POST", "/api/v4/groups/refused-%d/hooks", `{"url":"http://127.0.0.1:1/x","custom_headers":[{"key":"Webhook-Id","value":"x"}]}`, 422},
		{"POST", "/api/v4/projects/acme%%2Frefused-%d/hooks", `{"push_events":true}`, 400},
		{"PUT", "/api/v4/projects/acme%%2Frefused-%d/hooks/1", `{"push_events":true}`, 404},
		{"DELETE", "/api/v4/projects/acme%%2Frefused-%d/hooks/1", "", 404},
		{"POST", "/api/v4/projects/acme%%2Frefused-%d/hooks/1/test/push_events", "", 404},
		{"PUT", "/api/v4/projects/acme%%2Frefused-%d/hooks/1/url_variables/k", `{"value":"v"}`, 404},
		{"DELETE", "/api/v4/groups/refused-%d/hooks/1/custom_headers/X-A", "", 404},
		{"POST", "/api/v4/projects/acme%%2Frefused-%d/hooks/1/events/1/resend", "", 404},
		{"PUT", "/api/v4/projects/acme%%2Frefused-%d/integrations/slack", `{"channel":"#x"}`, 400},
		{"PUT", "/api/v4/groups/refused-%d/integrations/slack", `{"webhook":"ftp://x"}`, 400},
		{"DELETE", "/api/v4/projects/acme%%2Frefused-%d/integrations/slack", "", 404},
	} {
		path := fmt.Sprintf(c.path, i)
		if st, out := f.do(t, c.method, path, c.body, admin...); st != c.status {
			t.Errorf("%s %s = %d %s, want %d", c.method, path, st, out, c.status)
		}
	}
	if ids := namespaceKeys(t, f.redis, "fatest"); len(ids) != 0 {
		t.Fatalf("refused writes gave out ids: %v", ids)
	}
	for _, p := range []string{"/api/v4/projects/acme%2Fstored/hooks", "/api/v4/groups/acme/integrations/slack"} {
		method, body := "POST", `{"url":"http://127.0.0.1:1/x"}`
		if strings.HasSuffix(p, "slack") {
			method, body = "PUT", `{"webhook":"http://127.0.0.1:1/chat"}`
		}
		if st, out := f.do(t, method, p, body, admin...); st != 201 && st != 200 {
			t.Fatalf("%s %s = %d %s", method, p, st, out)
		}
	}
	ids := namespaceKeys(t, f.redis, "fatest")
	if len(ids) != 2 || ids["project:acme/stored"] == "" || ids["group:acme"] == "" {
		t.Fatalf("ids after two stored writes: %v", ids)
	}
}

// TestScopedTokensHaveBoundedNamespaces: a scoped token gives hooks to at
// most max_scope_namespaces projects and groups under its scope (each with
// at most max_project_hooks hooks), so it cannot grow the store without
// bound; paths that have hooks take more.
func TestScopedTokensHaveBoundedNamespaces(t *testing.T) {
	f := startForwardAuthFixture(t)
	tenant := []string{"PRIVATE-TOKEN", tenantToken, "Content-Type", "application/json"}
	hook := `{"url":"http://127.0.0.1:1/x"}`
	for i := range 3 {
		p := fmt.Sprintf("/kept/api/v4/projects/tenant%%2Fp%d/hooks", i)
		if st, out := f.do(t, "POST", p, hook, tenant...); st != 201 {
			t.Fatalf("POST %s = %d %s", p, st, out)
		}
	}
	for _, p := range []string{"/kept/api/v4/projects/tenant%2Fp3/hooks", "/kept/api/v4/groups/tenant%2Fsub/hooks"} {
		st, out := f.do(t, "POST", p, hook, tenant...)
		if want := `{"error":"Maximum number of projects and groups with hooks under tenant (3) exceeded"}`; st != 422 || out != want {
			t.Errorf("POST %s = %d %s, want 422 %s", p, st, out, want)
		}
	}
	if st, out := f.do(t, "PUT", "/kept/api/v4/projects/tenant%2Fp4/integrations/slack", `{"webhook":"http://127.0.0.1:1/chat"}`, tenant...); st != 422 {
		t.Errorf("integration of a fourth project = %d %s, want 422", st, out)
	}
	if st, out := f.do(t, "POST", "/kept/api/v4/projects/tenant%2Fp0/hooks", hook, tenant...); st != 201 {
		t.Fatalf("another hook of a project that has hooks = %d %s", st, out)
	}
	if st, out := f.do(t, "POST", "/kept/api/v4/projects/tenant%2Fp3/hooks", hook, "PRIVATE-TOKEN", apiAdminToken, "Content-Type", "application/json"); st != 201 {
		t.Fatalf("the unscoped admin token = %d %s", st, out)
	}
	if ids := namespaceKeys(t, f.redis, "fatest"); len(ids) != 4 {
		t.Fatalf("ids: %v, want the 3 of the scope and the admin's", ids)
	}
}

// TestAPITokensNeverReachTheLogs: with access logs and debug logging as
// docs/deployment.md shows them, neither a PRIVATE-TOKEN nor a Bearer token
// is written by any logger: the access log, handle_path's rewrite log,
// forward_auth's upstream log and the error log.
func TestAPITokensNeverReachTheLogs(t *testing.T) {
	f := startForwardAuthFixture(t)
	const bearer = "glpat-bearer-not-configured-0123"
	hooks := "/api/v4/projects/allowed%2Fproj/hooks"
	f.do(t, "GET", hooks, "", "PRIVATE-TOKEN", apiAdminToken)
	f.do(t, "POST", hooks, `{"url":"http://127.0.0.1:1/x"}`, "PRIVATE-TOKEN", apiAdminToken, "Content-Type", "application/json")
	f.do(t, "GET", hooks, "", "Authorization", "Bearer "+apiAdminToken)
	f.do(t, "GET", hooks, "", "Authorization", "Bearer "+bearer)
	f.do(t, "GET", hooks, "", "PRIVATE-TOKEN", bearer)
	f.do(t, "GET", "/kept/api/v4/projects/allowed%2Fproj/hooks", "", "PRIVATE-TOKEN", apiAdminToken)
	if st, _ := f.do(t, "GET", "/down/projects/a/hooks", "", "PRIVATE-TOKEN", apiAdminToken); st != 502 {
		t.Fatalf("forward_auth to a closed port = %d, want 502", st)
	}
	// Stop Caddy so every log line is written.
	f.tester.InitServer(testCaddyfile("{\n}\nlocalhost:9080 {\n\trespond 204\n}\n"), "caddyfile")

	access, _ := os.ReadFile(f.accessLog)
	debug, _ := os.ReadFile(f.debugLog)
	for name, want := range map[string]string{
		"access log":     "handled request",
		"rewrite log":    "rewrote request",
		"forward_auth":   "upstream roundtrip",
		"error log":      "http.log.error",
		"redacted token": "REDACTED",
	} {
		if !strings.Contains(string(access)+string(debug), want) {
			t.Errorf("the logs have no %s (%q): the test logs too little", name, want)
		}
	}
	for _, tok := range []string{apiAdminToken, bearer} {
		for name, b := range map[string][]byte{"access log": access, "debug log": debug} {
			if strings.Contains(string(b), tok) {
				t.Errorf("the %s holds the API token %q", name, tok)
			}
		}
	}
}
