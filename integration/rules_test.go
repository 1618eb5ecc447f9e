package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/examples/tracker"
)

func rulesCaddyfile(redisURL, hookURL, capture, upstream string) string {
	return testCaddyfile(`{
	webhooks {
		redis %s
		timeout 2s
		lease 4s
		claim_interval 500ms
		allow_local_requests
		hook ci {
			url %s
			token it-s3cret-ci
			group acme
			events push issues merge_requests pipeline
		}
	}
}

localhost:9080 {
	webhooks_capture {
%s
	}
	reverse_proxy %s
}
`, redisURL, hookURL, capture, upstream)
}

func sendJSON(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, caddyBase+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// gitlabPayload is what a receiver written for GitLab reads of an issue or
// merge request event.
type gitlabPayload struct {
	ObjectKind string `json:"object_kind"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	Project struct {
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	ObjectAttributes struct {
		ID           int64  `json:"id"`
		IID          int64  `json:"iid"`
		Title        string `json:"title"`
		State        string `json:"state"`
		Action       string `json:"action"`
		SourceBranch string `json:"source_branch"`
		URL          string `json:"url"`
	} `json:"object_attributes"`
}

func decodeDelivery(t *testing.T, d delivery) gitlabPayload {
	t.Helper()
	var p gitlabPayload
	if err := json.Unmarshal([]byte(d.Body), &p); err != nil {
		t.Fatalf("delivery is not JSON: %v: %s", err, d.Body)
	}
	return p
}

// The example tracker knows nothing of webhooks; the shipped rules make its
// issues and merge requests arrive as GitLab's Issue Hook and Merge Request
// Hook, while its clients see its own answers byte for byte.
func TestCaptureRulesMakeTheTrackerGitLabCompatible(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := httptest.NewServer(tracker.New())
	t.Cleanup(app.Close)
	rules, err := filepath.Abs("../examples/tracker/rules.caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	start(t, func(redisURL string) string {
		return rulesCaddyfile(redisURL, rcv.URL, "\t\timport "+rules, strings.TrimPrefix(app.URL, "http://"))
	})

	title := `Login fails with "quotes" & <angle brackets>`
	resp, body := sendJSON(t, http.MethodPost, "/api/projects/acme/web/issues",
		`{"title":`+strconv.Quote(title)+`,"description":"line one\nline two","author":"ann"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create issue: %d %s", resp.StatusCode, body)
	}
	var issue tracker.Issue
	if err := json.Unmarshal([]byte(body), &issue); err != nil || issue.Title != title {
		t.Fatalf("the client did not get the tracker's own answer: %s", body)
	}
	d := rcv.next(t)
	p := decodeDelivery(t, d)
	if d.Header.Get("X-Gitlab-Event") != "Issue Hook" || p.ObjectKind != "issue" || p.ObjectAttributes.Action != "open" ||
		p.ObjectAttributes.IID != issue.Number || p.ObjectAttributes.Title != title || p.User.Username != "ann" ||
		p.Project.PathWithNamespace != "acme/web" || p.ObjectAttributes.URL != issue.URL {
		t.Fatalf("issue delivery %s: %s", d.Header.Get("X-Gitlab-Event"), d.Body)
	}

	// Reads and refused writes are not events (method, status).
	do(t, mustRequest(t, http.MethodGet, "/api/projects/acme/web/issues"))
	if resp, body := sendJSON(t, http.MethodPost, "/api/projects/acme/web/issues", `{"description":"no title"}`); resp.StatusCode != 422 {
		t.Fatalf("invalid issue: %s", answered(resp, body))
	}
	rcv.quiet(t, 500*time.Millisecond)

	// Closing: the project comes from the response's JSON.
	sendJSON(t, http.MethodPost, "/api/projects/acme/web/issues/1/close", "")
	if p := decodeDelivery(t, rcv.next(t)); p.ObjectAttributes.Action != "close" || p.ObjectAttributes.State != "closed" ||
		p.Project.PathWithNamespace != "acme/web" {
		t.Fatalf("close delivery: %+v", p)
	}

	// Merge requests: open, merge; a second merge is refused by the app (422)
	// and is no event.
	sendJSON(t, http.MethodPost, "/api/projects/acme/web/merge_requests", `{"title":"Fix login","source_branch":"fix-login","author":"bob"}`)
	d = rcv.next(t)
	if p := decodeDelivery(t, d); d.Header.Get("X-Gitlab-Event") != "Merge Request Hook" || p.ObjectKind != "merge_request" ||
		p.ObjectAttributes.Action != "open" || p.ObjectAttributes.SourceBranch != "fix-login" {
		t.Fatalf("merge request delivery %s: %s", d.Header.Get("X-Gitlab-Event"), d.Body)
	}
	sendJSON(t, http.MethodPost, "/api/projects/acme/web/merge_requests/1/merge", "")
	if p := decodeDelivery(t, rcv.next(t)); p.ObjectAttributes.Action != "merge" || p.ObjectAttributes.State != "merged" {
		t.Fatalf("merge delivery: %+v", p)
	}
	if resp, body := sendJSON(t, http.MethodPost, "/api/projects/acme/web/merge_requests/1/merge", ""); resp.StatusCode != 422 {
		t.Fatalf("second merge: %s", answered(resp, body))
	}
	// Another group's project reaches no hook of acme.
	sendJSON(t, http.MethodPost, "/api/projects/other/web/issues", `{"title":"elsewhere"}`)
	rcv.quiet(t, 500*time.Millisecond)
}

// Rules use Caddy's matchers (header, query, expression), response header
// matchers, JSON fields and placeholders; signal headers win over rules; a
// rule whose placeholder does not resolve refuses the event (counted) and
// leaves the response alone.
func TestCaptureRulesMatchersPlaceholdersAndSignals(t *testing.T) {
	rcv := newReceiver(t, 0)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Kind", r.URL.Query().Get("kind"))
		if r.URL.Path == "/signalled" {
			w.Header().Set("X-Webhook-Event", "push")
			w.Header().Set("X-Webhook-Project", "acme/api")
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b) // the app answers what it was sent
	}))
	t.Cleanup(upstream.Close)
	start(t, func(redisURL string) string {
		return rulesCaddyfile(redisURL, rcv.URL, `		rule builds {
			match {
				method PUT
				path /builds/*
				query notify=1
			}
			header X-Kind pipeline
			event pipeline
			project {json.project.path}
			ref {json.ref}
		}
		rule by-expression {
			match {
				expression {http.request.header.X-Tenant} == "acme"
			}
			status 2xx
			event {http.request.header.X-Event}
			project {http.request.header.X-Tenant}/{http.request.uri.path.0}
			ref refs/heads/main
		}`, strings.TrimPrefix(upstream.URL, "http://"))
	})
	build := `{"project":{"path":"acme/api"},"ref":"refs/heads/main","status":"success"}`

	// Method, path, query and the response header all match: an event, the
	// body as is.
	resp, body := sendJSON(t, http.MethodPut, "/builds/7?notify=1&kind=pipeline", build)
	if resp.StatusCode != 200 || body != build {
		t.Fatalf("client got %d %q", resp.StatusCode, body)
	}
	if d := rcv.next(t); d.Header.Get("X-Gitlab-Event") != "Pipeline Hook" || d.Body != build {
		t.Fatalf("pipeline delivery %s: %s", d.Header.Get("X-Gitlab-Event"), d.Body)
	}
	// Any one not matching: nothing.
	sendJSON(t, http.MethodPut, "/builds/7?kind=pipeline", build)           // query
	sendJSON(t, http.MethodPut, "/builds/7?notify=1&kind=deploy", build)    // response header
	sendJSON(t, http.MethodPost, "/builds/7?notify=1&kind=pipeline", build) // method
	rcv.quiet(t, 500*time.Millisecond)

	// An expression matcher, and the trigger and project from request
	// placeholders.
	req, _ := http.NewRequest(http.MethodPost, caddyBase+"/tools/x", strings.NewReader(`{"object_kind":"issue"}`))
	req.Header.Set("X-Tenant", "acme")
	req.Header.Set("X-Event", "issues")
	do(t, req)
	if d := rcv.next(t); d.Header.Get("X-Gitlab-Event") != "Issue Hook" {
		t.Fatalf("expression rule delivered %s", d.Header.Get("X-Gitlab-Event"))
	}

	// Signal headers win over a matching rule, and are still stripped.
	req, _ = http.NewRequest(http.MethodPost, caddyBase+"/signalled", strings.NewReader(`{"object_kind":"push","ref":"refs/heads/main"}`))
	req.Header.Set("X-Tenant", "acme")
	req.Header.Set("X-Event", "issues")
	resp, _ = do(t, req)
	assertNoSignalHeaders(t, resp.Header)
	if d := rcv.next(t); d.Header.Get("X-Gitlab-Event") != "Push Hook" {
		t.Fatalf("signalled response delivered as %s, want the signal's Push Hook", d.Header.Get("X-Gitlab-Event"))
	}

	// A JSON field that is not there: refused and counted, response intact.
	badScope := func() float64 {
		v, _ := strconv.ParseFloat(metric(t, `caddy_webhooks_events_rejected_total{reason="bad_scope"}`), 64)
		return v
	}
	before := badScope()
	noProject := `{"ref":"refs/heads/main"}`
	if resp, body := sendJSON(t, http.MethodPut, "/builds/8?notify=1&kind=pipeline", noProject); resp.StatusCode != 200 || body != noProject {
		t.Fatalf("client got %d %q", resp.StatusCode, body)
	}
	if d := badScope() - before; d != 1 {
		t.Fatalf("bad_scope rejections grew by %v, want 1", d)
	}
	rcv.quiet(t, 500*time.Millisecond)
}
