package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

const (
	logHookToken = "log-hook-token-PLAINTEXT-5e1f"
	logHdrSecret = "log-header-PLAINTEXT-77aa"
	logVarSecret = "log-urlvar-PLAINTEXT-0b0b"
	logNewToken  = "log-new-token-PLAINTEXT-3c3c"
)

// recordingReceiver answers with a settable status, headers and body from
// respond, and records what it gets.
type recordingReceiver struct {
	*httptest.Server
	status atomic.Int32
	ch     chan apiReceived
}

func newRecordingReceiver(t *testing.T, status int, respond func(w http.ResponseWriter, r *http.Request, status int)) *recordingReceiver {
	rc := &recordingReceiver{ch: make(chan apiReceived, 64)}
	rc.status.Store(int32(status))
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		// The status is read before the test sees the request: a test that
		// changes it on receipt means the next request, and would
		// otherwise race this one's answer.
		status := int(rc.status.Load())
		rc.ch <- apiReceived{Path: r.URL.Path, Header: r.Header.Clone(), Body: b}
		respond(w, r, status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *recordingReceiver) next(t *testing.T) apiReceived {
	t.Helper()
	select {
	case r := <-rc.ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver got nothing within 10s")
		return apiReceived{}
	}
}

// newEchoReceiver echoes the token it got in a response header and its
// body, as a careless receiver might.
func newEchoReceiver(t *testing.T) *recordingReceiver {
	return newRecordingReceiver(t, http.StatusOK, func(w http.ResponseWriter, r *http.Request, status int) {
		w.Header().Set("X-Echo", "token="+r.Header.Get("X-Gitlab-Token")+" path="+r.URL.Path)
		w.WriteHeader(status)
		fmt.Fprintf(w, "got %s", r.Header.Get("X-Gitlab-Token"))
	})
}

type logFixture struct {
	*apiFixture
	recv, other *recordingReceiver
}

func startLogFixture(t *testing.T) *logFixture {
	t.Helper()
	f := &logFixture{apiFixture: &apiFixture{redis: redistest.Start(t)}, recv: newEchoReceiver(t), other: newEchoReceiver(t)}
	t.Setenv("WEBHOOKS_TEST_ADMIN_TOKEN", apiAdminToken)
	t.Setenv("WEBHOOKS_TEST_ENCRYPTION_KEY", newEncryptionKey(t))
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/note") {
			w.Header().Set("X-Webhook-Event", "note")
			io.WriteString(w, `{"object_kind":"note","object_attributes":{"note":"look ![shot](/uploads/abc/shot.png) and ![cdn](https://cdn.example/x.png)"}}`)
			return
		}
		ref := r.URL.Query().Get("ref")
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Ref", ref)
		fmt.Fprintf(w, `{"object_kind":"push","ref":%q,"marker":"latest-push","project":{"path_with_namespace":"acme/api"}}`, ref)
	}))
	t.Cleanup(upstream.Close)
	f.tester = caddytest.NewTester(t)
	f.tester.InitServer(testCaddyfile(`
	{
		webhooks {
			redis %s
			namespace logtest
			allow_local_requests
			instance https://gitlab.example.com
			encryption_key {env.WEBHOOKS_TEST_ENCRYPTION_KEY}
			max_attempts 1
			timeout 2s
			lease 4s
			log_retention 48h
			log_max_entries 100
		}
	}
	localhost:9080 {
		handle_path /api/v4/* {
			webhooks_api {
				token admin {env.WEBHOOKS_TEST_ADMIN_TOKEN}
				test_rate_limit 100
				resend_rate_limit 3
			}
		}
		handle /app/* {
			webhooks_capture
			reverse_proxy %s
		}
	}
	`, f.redis.URL, upstream.Listener.Addr()), "caddyfile")
	c, err := gitlab.NewClient(apiAdminToken, gitlab.WithBaseURL(apiBase), gitlab.WithCustomRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	return f
}

// logEvent is GitLab's WebHookLog entity.
type logEvent struct {
	ID                int64             `json:"id"`
	URL               string            `json:"url"`
	Trigger           string            `json:"trigger"`
	RequestHeaders    map[string]string `json:"request_headers"`
	RequestData       json.RawMessage   `json:"request_data"`
	ResponseHeaders   map[string]string `json:"response_headers"`
	ResponseBody      string            `json:"response_body"`
	ExecutionDuration float64           `json:"execution_duration"`
	ResponseStatus    string            `json:"response_status"`
	CreatedAt         string            `json:"created_at"`
	InternalError     *string           `json:"internal_error_message"`
}

func (f *logFixture) events(t *testing.T, hookID int64, query string) ([]logEvent, http.Header) {
	t.Helper()
	st, out, h := f.raw(t, "GET", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/events%s", hookID, query), apiAdminToken, "", nil)
	if st != http.StatusOK {
		t.Fatalf("events%s = %d %s", query, st, out)
	}
	var es []logEvent
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatalf("events%s: %v: %s", query, err, out)
	}
	return es, h
}

// waitEvents polls until the hook's log has n entries.
func (f *logFixture) waitEvents(t *testing.T, hookID int64, n int) []logEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		es, _ := f.events(t, hookID, "")
		if len(es) >= n || time.Now().After(deadline) {
			if len(es) != n {
				t.Fatalf("hook %d has %d log entries, want %d", hookID, len(es), n)
			}
			return es
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDeliveryLogResendAndRedaction(t *testing.T) {
	f := startLogFixture(t)
	body := fmt.Sprintf(`{"url":%q,"token":%q,"push_events":true,"note_events":true,`+
		`"url_variables":[{"key":"path","value":%q}],"custom_headers":[{"key":"X-Api-Key","value":%q}]}`,
		f.recv.URL+"/{path}", logHookToken, logVarSecret, logHdrSecret)
	st, out, _ := f.raw(t, "POST", "/api/v4/projects/acme%2Fapi/hooks", apiAdminToken, "application/json", []byte(body))
	if st != http.StatusCreated {
		t.Fatalf("create hook = %d %s", st, out)
	}
	var hook struct{ ID int64 }
	json.Unmarshal([]byte(out), &hook)

	// A delivery is logged with GitLab's fields, secrets redacted.
	f.event(t, "refs/heads/main")
	got := f.recv.next(t)
	if got.Path != "/"+logVarSecret || got.Header.Get("X-Gitlab-Token") != logHookToken {
		t.Fatalf("delivery = %s %v", got.Path, got.Header)
	}
	es := f.waitEvents(t, hook.ID, 1)
	e := es[0]
	if e.URL != f.recv.URL+"/{path}" || e.Trigger != "push_hooks" || e.ResponseStatus != "200" ||
		e.RequestHeaders["X-Gitlab-Token"] != "[REDACTED]" || e.RequestHeaders["X-Api-Key"] != "[REDACTED]" ||
		e.RequestHeaders["Idempotency-Key"] != got.Header.Get("Idempotency-Key") || e.RequestHeaders["X-Gitlab-Event"] != "Push Hook" ||
		e.ResponseHeaders["X-Echo"] != "token=[REDACTED] path=/{path}" || e.ResponseBody != "got [REDACTED]" ||
		e.ExecutionDuration <= 0 || e.ExecutionDuration > 5 || !strings.HasSuffix(e.CreatedAt, "Z") || e.InternalError != nil ||
		!strings.Contains(string(e.RequestData), `"ref":"refs/heads/main"`) {
		t.Fatalf("log entry = %+v", e)
	}
	st, out, _ = f.raw(t, "GET", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/events/%d", hook.ID, e.ID), apiAdminToken, "", nil)
	if st != 200 || !strings.Contains(out, fmt.Sprintf(`{"id":%d,"url":`, e.ID)) {
		t.Fatalf("one event = %d %s", st, out)
	}

	// Image URLs in Markdown fields are made absolute before sending.
	resp, err := f.tester.Client.Get("http://localhost:9080/app/note")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	note := f.recv.next(t)
	if want := `look ![shot](https://gitlab.example.com/acme/api/uploads/abc/shot.png) and ![cdn](https://cdn.example/x.png)`; !strings.Contains(string(note.Body), want) {
		t.Fatalf("note payload = %s", note.Body)
	}
	f.waitEvents(t, hook.ID, 2)

	// The hook moves to another receiver with a new token: a resend goes
	// there, with the same body and Idempotency-Key.
	_, _, err = f.client.Projects.EditProjectHook("acme/api", hook.ID, &gitlab.EditProjectHookOptions{
		URL: gitlab.Ptr(f.other.URL + "/new"), Token: gitlab.Ptr(logNewToken),
	})
	if err != nil {
		t.Fatal(err)
	}
	resend := fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/events/%d/resend", hook.ID, e.ID)
	st, out, _ = f.raw(t, "POST", resend, apiAdminToken, "", nil)
	if st != http.StatusCreated || out != `{"response_status":200}` {
		t.Fatalf("resend = %d %s", st, out)
	}
	again := f.other.next(t)
	if again.Path != "/new" || again.Header.Get("X-Gitlab-Token") != logNewToken ||
		again.Header.Get("Idempotency-Key") != got.Header.Get("Idempotency-Key") ||
		again.Header.Get("X-Gitlab-Event-UUID") != got.Header.Get("X-Gitlab-Event-UUID") ||
		again.Header.Get("X-Gitlab-Webhook-UUID") == got.Header.Get("X-Gitlab-Webhook-UUID") || string(again.Body) != string(got.Body) {
		t.Fatalf("resent = %s %v %s", again.Path, again.Header, again.Body)
	}
	es = f.waitEvents(t, hook.ID, 3)
	if es[0].URL != f.other.URL+"/new" || es[0].ResponseStatus != "200" || es[0].ResponseBody != "got [REDACTED]" {
		t.Fatalf("resend log entry = %+v", es[0])
	}

	// Failures: a 500 and an unreachable receiver, then the status filter.
	f.other.status.Store(http.StatusInternalServerError)
	f.event(t, "refs/heads/main")
	f.other.next(t)
	f.waitEvents(t, hook.ID, 4)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	if _, _, err := f.client.Projects.EditProjectHook("acme/api", hook.ID, &gitlab.EditProjectHookOptions{URL: gitlab.Ptr(deadURL + "/gone")}); err != nil {
		t.Fatal(err)
	}
	f.event(t, "refs/heads/main")
	es = f.waitEvents(t, hook.ID, 5)
	if es[0].ResponseStatus != "internal error" || es[0].InternalError == nil || es[0].ResponseBody != "" {
		t.Fatalf("internal error entry = %+v", es[0])
	}
	for q, want := range map[string]int{
		"?status=successful": 3, "?status=server_failure": 2, "?status=client_failure": 0,
		"?status=500": 1, "?status=200,500": 4, "?status[]=404&status[]=successful": 3,
	} {
		if es, _ := f.events(t, hook.ID, q); len(es) != want {
			t.Errorf("events%s = %d entries, want %d", q, len(es), want)
		}
	}
	es, h := f.events(t, hook.ID, "?per_page=2&page=2")
	if len(es) != 2 || h.Get("X-Total") != "5" || h.Get("X-Total-Pages") != "3" || h.Get("X-Next-Page") != "3" {
		t.Fatalf("page 2 = %d entries, headers %v", len(es), h)
	}
	for _, c := range []struct{ q, want string }{
		{"?status=bogus", `{"error":"status does not have a valid value"}`},
		{"?per_page=21", `{"error":"per_page does not have a valid value"}`},
	} {
		st, out, _ := f.raw(t, "GET", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/events%s", hook.ID, c.q), apiAdminToken, "", nil)
		if st != 400 || out != c.want {
			t.Errorf("events%s = %d %s", c.q, st, out)
		}
	}
	st, out, _ = f.raw(t, "GET", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/events/123", hook.ID), apiAdminToken, "", nil)
	if st != 404 || out != `{"message":"404 Not found"}` {
		t.Fatalf("missing event = %d %s", st, out)
	}

	// A resend that gets no answer is a 422 with the error; the limit (3
	// per minute here) then answers 429 as GitLab.
	st, out, _ = f.raw(t, "POST", resend, apiAdminToken, "", nil)
	if st != http.StatusUnprocessableEntity || !strings.Contains(out, `"message":"POST `+deadURL+`/gone`) {
		t.Fatalf("resend to a dead URL = %d %s", st, out)
	}
	f.raw(t, "POST", resend, apiAdminToken, "", nil)
	st, out, hdr := f.raw(t, "POST", resend, apiAdminToken, "", nil)
	if st != http.StatusTooManyRequests || out != `{"message":{"error":"This endpoint has been requested too many times. Try again later."}}` || hdr.Get("Retry-After") == "" {
		t.Fatalf("4th resend = %d %s %v", st, out, hdr)
	}

	// No secret is stored anywhere in Redis, in the log or elsewhere.
	assertNoPlaintextInRedis(t, f.redis, logHookToken, logHdrSecret, logVarSecret, logNewToken)
}

func TestTestHookEveryTrigger(t *testing.T) {
	f := startLogFixture(t)
	ph, _, err := f.client.Projects.AddProjectHook("acme/api", &gitlab.AddProjectHookOptions{
		URL: gitlab.Ptr(f.recv.URL + "/t"), Token: gitlab.Ptr(logHookToken),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The hook does not take push events, so the push below only becomes
	// the project's latest push: the sample of the push test.
	if _, _, err := f.client.Projects.EditProjectHook("acme/api", ph.ID, &gitlab.EditProjectHookOptions{PushEvents: gitlab.Ptr(false)}); err != nil {
		t.Fatal(err)
	}
	f.event(t, "refs/heads/latest")
	// The fan-out keeps it as the sample, after the response: wait for it.
	rdb := f.redis.Client()
	defer rdb.Close()
	latest := redisstore.Keys{Namespace: "logtest"}.LatestEvent("acme/api", "push")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, err := rdb.Get(context.Background(), latest).Bytes()
		if err == nil && bytes.Contains(b, []byte(`"ref":"refs/heads/latest"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the push was not kept as the project's latest within 10s: %v %s", err, b)
		}
	}

	testable := map[string]string{
		"push_events": "Push Hook", "tag_push_events": "Tag Push Hook", "issues_events": "Issue Hook",
		"confidential_issues_events": "Confidential Issue Hook", "note_events": "Note Hook",
		"merge_requests_events": "Merge Request Hook", "job_events": "Job Hook", "pipeline_events": "Pipeline Hook",
		"wiki_page_events": "Wiki Page Hook", "releases_events": "Release Hook", "emoji_events": "Emoji Hook",
		"resource_access_token_events": "Resource Access Token Hook",
	}
	for field, header := range testable {
		resp, err := f.client.Projects.TriggerTestProjectHook("acme/api", ph.ID, gitlab.ProjectHookEvent(field))
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("test %s: %v", field, err)
		}
		got := f.recv.next(t)
		var payload map[string]any
		if got.Header.Get("X-Gitlab-Event") != header || json.Unmarshal(got.Body, &payload) != nil {
			t.Fatalf("test %s sent %s: %s", field, got.Header.Get("X-Gitlab-Event"), got.Body)
		}
		if field == "push_events" && payload["marker"] != "latest-push" {
			t.Fatalf("push test did not send the latest push: %s", got.Body)
		}
		if p, ok := payload["project"].(map[string]any); field != "push_events" && ok && p["path_with_namespace"] != "acme/api" {
			t.Fatalf("test %s sample is not for the project: %s", field, got.Body)
		}
	}
	for _, field := range []string{"confidential_note_events", "deployment_events", "feature_flag_events", "milestone_events", "vulnerability_events"} {
		st, out, _ := f.raw(t, "POST", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/test/%s", ph.ID, field), apiAdminToken, "", nil)
		if st != 422 || out != `{"message":"Testing not available for this hook"}` {
			t.Errorf("test %s = %d %s", field, st, out)
		}
	}
	es := f.waitEvents(t, ph.ID, len(testable))
	if es[0].ResponseStatus != "200" || es[0].RequestHeaders["X-Gitlab-Token"] != "[REDACTED]" {
		t.Fatalf("test log entry = %+v", es[0])
	}

	// A failing receiver: 422 with its body. A disabled hook is re-enabled
	// by a successful test.
	f.recv.status.Store(http.StatusNotFound)
	st, out, _ := f.raw(t, "POST", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/test/push_events", ph.ID), apiAdminToken, "", nil)
	if st != 422 || out != `{"message":"got [REDACTED]"}` {
		t.Fatalf("failing test = %d %s", st, out)
	}
	f.recv.next(t)
	if err := rdb.HSet(context.Background(), redisstore.Keys{Namespace: "logtest"}.Health(int64(ph.ID)), "disabled", "1", "fails", "4").Err(); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := f.client.Projects.GetProjectHook("acme/api", ph.ID); h.AlertStatus != "disabled" {
		t.Fatalf("alert_status = %s, want disabled", h.AlertStatus)
	}
	f.recv.status.Store(http.StatusOK)
	if resp, err := f.client.Projects.TriggerTestProjectHook("acme/api", ph.ID, gitlab.ProjectHookEventNote); err != nil || resp.StatusCode != 201 {
		t.Fatalf("re-enabling test: %v", err)
	}
	f.recv.next(t)
	if h, _, _ := f.client.Projects.GetProjectHook("acme/api", ph.ID); h.AlertStatus != "executable" {
		t.Fatalf("alert_status after a successful test = %s", h.AlertStatus)
	}
	assertNoPlaintextInRedis(t, f.redis, logHookToken)
}
