package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	glwire "github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// issueTitle has what would break a template that pasted values in raw.
const issueTitle = "say \"hi\"\nand \\ leave"

// startHookFeatureFixture starts Caddy with the hooks API, an app that
// announces push events (?ref=) and issue events (/app/issue), and the
// given lines added to the webhooks global option.
func startHookFeatureFixture(t *testing.T, options string) *apiFixture {
	t.Helper()
	f := &apiFixture{redis: redistest.Start(t)}
	t.Setenv("WEBHOOKS_TEST_ADMIN_TOKEN", apiAdminToken)
	t.Setenv("WEBHOOKS_TEST_ENCRYPTION_KEY", newEncryptionKey(t))
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/issue") {
			w.Header().Set("X-Webhook-Event", "issues")
			title, _ := json.Marshal(issueTitle)
			pad, _ := strconv.Atoi(r.URL.Query().Get("pad")) // a description of that many bytes
			fmt.Fprintf(w, `{"object_kind":"issue","project":{"name":"API"},"object_attributes":{"iid":7,"title":%s,"description":%q}}`,
				title, strings.Repeat("x", pad))
			return
		}
		ref := r.URL.Query().Get("ref")
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Ref", ref)
		fmt.Fprintf(w, `{"object_kind":"push","ref":%q,"project":{"name":"API","path_with_namespace":"acme/api"}}`, ref)
	}))
	t.Cleanup(upstream.Close)
	f.tester = caddytest.NewTester(t)
	f.tester.InitServer(testCaddyfile(`
	{
		webhooks {
			redis %s
			namespace hookfeat
			allow_local_requests
			encryption_key {env.WEBHOOKS_TEST_ENCRYPTION_KEY}
			timeout 2s
			lease 4s
			%s
		}
	}
	localhost:9080 {
		handle_path /api/v4/* {
			webhooks_api {
				token admin {env.WEBHOOKS_TEST_ADMIN_TOKEN}
				test_rate_limit 100
				resend_rate_limit 100
			}
		}
		handle /app/* {
			webhooks_capture
			reverse_proxy %s
		}
	}
	`, f.redis.URL, options, upstream.Listener.Addr()), "caddyfile")
	c, err := gitlab.NewClient(apiAdminToken, gitlab.WithBaseURL(apiBase), gitlab.WithCustomRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	return f
}

// verifies reports whether the Standard Webhooks library accepts the
// delivery as signed with token.
func verifies(t *testing.T, token string, d apiReceived) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(token)
	if err != nil {
		t.Fatal(err)
	}
	return wh.Verify(d.Body, d.Header)
}

func hookJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return m
}

// A receiver checks every delivery with a Standard Webhooks verifier: on a
// retry, after a rotation (both tokens verify during the overlap), on a
// resend and a test; the token never shows and never follows the hook elsewhere.
func TestSigningTokenEndToEnd(t *testing.T) {
	f := startHookFeatureFixture(t, "max_attempts 3\n\t\t\tretry_backoff 1s\n\t\t\tsigning_token_overlap 1h")
	recv := newRecordingReceiver(t, http.StatusInternalServerError, func(w http.ResponseWriter, _ *http.Request, status int) {
		w.WriteHeader(status)
	})
	other := newRecordingReceiver(t, http.StatusOK, func(w http.ResponseWriter, _ *http.Request, status int) { w.WriteHeader(status) })
	tokA, _ := glwire.GenerateSigningToken()
	tokB, _ := glwire.GenerateSigningToken()
	hooks := "/api/v4/projects/acme%2Fapi/hooks"

	// A token of the wrong form is refused.
	for _, bad := range []string{"plain-secret", "whsec_c2hvcnQ="} {
		st, out, _ := f.raw(t, "POST", hooks, apiAdminToken, "application/json",
			[]byte(fmt.Sprintf(`{"url":%q,"signing_token":%q}`, recv.URL, bad)))
		if st != http.StatusUnprocessableEntity || !strings.Contains(out, "Signing token must be whsec_") {
			t.Fatalf("signing_token %q: %d %s", bad, st, out)
		}
	}
	st, out, _ := f.raw(t, "POST", hooks, apiAdminToken, "application/json",
		[]byte(fmt.Sprintf(`{"url":%q,"signing_token":%q}`, recv.URL, tokA)))
	h := hookJSON(t, out)
	if st != http.StatusCreated || h["signing_token_present"] != true || h["token_present"] != false || strings.Contains(out, tokA) {
		t.Fatalf("create = %d %s", st, out)
	}
	id := int64(h["id"].(float64))
	hook := fmt.Sprintf("%s/%d", hooks, id)

	// First attempt fails (500), the retry succeeds: both signed, afresh.
	f.event(t, "refs/heads/main")
	first := recv.next(t)
	recv.status.Store(http.StatusOK)
	retry := recv.next(t)
	for i, d := range []apiReceived{first, retry} {
		if err := verifies(t, tokA, d); err != nil {
			t.Fatalf("attempt %d does not verify: %v (%v)", i+1, err, d.Header)
		}
		if d.Header.Get("webhook-id") != first.Header.Get("Idempotency-Key") {
			t.Fatalf("attempt %d: webhook-id %q, Idempotency-Key %q", i+1, d.Header.Get("webhook-id"), first.Header.Get("Idempotency-Key"))
		}
	}
	if retry.Header.Get("webhook-timestamp") < first.Header.Get("webhook-timestamp") {
		t.Fatalf("the retry reuses an older timestamp: %v", retry.Header)
	}

	// Rotation: tokB signs, and tokA beside it for the overlap.
	st, out, _ = f.raw(t, "PUT", hook, apiAdminToken, "application/json", []byte(fmt.Sprintf(`{"signing_token":%q}`, tokB)))
	if st != http.StatusOK || strings.Contains(out, tokB) {
		t.Fatalf("rotate = %d %s", st, out)
	}
	f.event(t, "refs/heads/main")
	rotated := recv.next(t)
	if n := len(strings.Fields(rotated.Header.Get("webhook-signature"))); n != 2 {
		t.Fatalf("%d signatures during the overlap: %v", n, rotated.Header)
	}
	for _, tok := range []string{tokA, tokB} {
		if err := verifies(t, tok, rotated); err != nil {
			t.Fatalf("after the rotation, a token does not verify: %v", err)
		}
	}

	// A resend of the first delivery is signed afresh, with both tokens.
	es := waitLog(t, f, hook, 3)
	oldest := es[len(es)-1]
	if oldest.RequestHeaders["webhook-signature"] == "" || strings.Contains(fmt.Sprint(es), strings.TrimPrefix(tokA, "whsec_")) {
		t.Fatalf("log entry headers = %v", oldest.RequestHeaders)
	}
	st, out, _ = f.raw(t, "POST", fmt.Sprintf("%s/events/%d/resend", hook, oldest.ID), apiAdminToken, "", nil)
	if st != http.StatusCreated {
		t.Fatalf("resend = %d %s", st, out)
	}
	resent := recv.next(t)
	for _, tok := range []string{tokA, tokB} {
		if err := verifies(t, tok, resent); err != nil {
			t.Fatalf("the resend does not verify: %v", err)
		}
	}
	if resent.Header.Get("webhook-id") != first.Header.Get("Idempotency-Key") {
		t.Fatalf("resend webhook-id %q, want %q", resent.Header.Get("webhook-id"), first.Header.Get("Idempotency-Key"))
	}

	// A test request is signed too.
	if st, out, _ := f.raw(t, "POST", hook+"/test/push_events", apiAdminToken, "", nil); st != http.StatusCreated {
		t.Fatalf("test = %d %s", st, out)
	}
	if err := verifies(t, tokB, recv.next(t)); err != nil {
		t.Fatalf("the test request does not verify: %v", err)
	}

	// Moved to another receiver without giving a signing token again: the
	// tokens do not follow.
	st, out, _ = f.raw(t, "PUT", hook, apiAdminToken, "application/json", []byte(fmt.Sprintf(`{"url":%q}`, other.URL)))
	if st != http.StatusOK || hookJSON(t, out)["signing_token_present"] != false {
		t.Fatalf("move = %d %s", st, out)
	}
	f.event(t, "refs/heads/main")
	if moved := other.next(t); moved.Header.Get("webhook-signature") != "" {
		t.Fatalf("the new receiver got a signature: %v", moved.Header)
	}
	assertNoPlaintextInRedis(t, f.redis, tokA, tokB, strings.TrimPrefix(tokA, "whsec_"), strings.TrimPrefix(tokB, "whsec_"))
}

// waitLog polls a hook's Recent events until it has n entries (newest first).
func waitLog(t *testing.T, f *apiFixture, hook string, n int) []logEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, out, _ := f.raw(t, "GET", hook+"/events", apiAdminToken, "", nil)
		var es []logEvent
		if st == http.StatusOK {
			_ = json.Unmarshal([]byte(out), &es)
		}
		if len(es) >= n || time.Now().After(deadline) {
			if len(es) != n {
				t.Fatalf("%s has %d log entries, want %d: %d %s", hook, len(es), n, st, out)
			}
			return es
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A custom webhook template replaces the payload, values JSON-escaped; a
// template that does not render to JSON is saved (as GitLab) and makes the
// attempt an internal error, logged and counted as a failure. A Caddyfile
// hook takes a template too.
func TestCustomWebhookTemplateEndToEnd(t *testing.T) {
	configured := newRecordingReceiver(t, http.StatusOK, func(w http.ResponseWriter, _ *http.Request, status int) { w.WriteHeader(status) })
	f := startHookFeatureFixture(t, fmt.Sprintf("max_attempts 1\n\t\t\tdisable_after_failures 1\n"+
		"\t\t\thook templated {\n\t\t\t\turl %s\n\t\t\t\tproject acme/api\n\t\t\t\tevents issues\n"+
		"\t\t\t\tcustom_webhook_template `{\"from\":\"caddyfile\",\"title\":\"{{object_attributes.title}}\"}`\n\t\t\t}",
		configured.URL))
	recv := newRecordingReceiver(t, http.StatusOK, func(w http.ResponseWriter, _ *http.Request, status int) { w.WriteHeader(status) })
	const tmpl = `{"kind":"{{object_kind}}","project":"{{project.name}}","iid":{{object_attributes.iid}},"title":"{{object_attributes.title}}"}`

	hook, _, err := f.client.Projects.AddProjectHook("acme/api", &gitlab.AddProjectHookOptions{
		URL: gitlab.Ptr(recv.URL), IssuesEvents: gitlab.Ptr(true), PushEvents: gitlab.Ptr(false),
		CustomWebhookTemplate: gitlab.Ptr(tmpl),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := f.client.Projects.GetProjectHook("acme/api", hook.ID); err != nil || got.CustomWebhookTemplate != tmpl {
		t.Fatalf("read back %q, %v", got.CustomWebhookTemplate, err)
	}
	// Group hooks take one too (this one gets no events: push only).
	gh, _, err := f.client.Groups.AddGroupHook("other", &gitlab.AddGroupHookOptions{
		URL: gitlab.Ptr(recv.URL), CustomWebhookTemplate: gitlab.Ptr(tmpl),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := f.client.Groups.GetGroupHook("other", gh.ID); err != nil || got.CustomWebhookTemplate != tmpl {
		t.Fatalf("group hook read back %q, %v", got.CustomWebhookTemplate, err)
	}
	st, out, _ := f.raw(t, "POST", "/api/v4/projects/acme%2Fapi/hooks", apiAdminToken, "application/json",
		[]byte(fmt.Sprintf(`{"url":%q,"custom_webhook_template":%q}`, recv.URL, strings.Repeat("x", 4097))))
	if st != http.StatusUnprocessableEntity || out != `{"error":"Custom webhook template is too long (maximum is 4096 characters)"}` {
		t.Fatalf("long template = %d %s", st, out)
	}

	issue := func() {
		t.Helper()
		resp, err := f.tester.Client.Get("http://localhost:9080/app/issue")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	issue()
	var sent []byte
	for _, c := range []struct {
		recv *recordingReceiver
		want map[string]any
	}{
		{recv, map[string]any{"kind": "issue", "project": "API", "iid": float64(7), "title": issueTitle}},
		{configured, map[string]any{"from": "caddyfile", "title": issueTitle}},
	} {
		d := c.recv.next(t)
		var got map[string]any
		if err := json.Unmarshal(d.Body, &got); err != nil {
			t.Fatalf("rendered template is not JSON: %v: %s", err, d.Body)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Fatalf("received %s, want %v", d.Body, c.want)
		}
		if c.recv == recv {
			sent = d.Body
		}
	}
	path := fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d", hook.ID)
	es := waitLog(t, f, path, 1)
	if !strings.Contains(string(es[0].RequestData), `"kind":"issue"`) {
		t.Fatalf("Recent events shows %s, want what was sent", es[0].RequestData)
	}
	// A resend sends what was sent, not the template rendered again.
	if st, out, _ := f.raw(t, "POST", fmt.Sprintf("%s/events/%d/resend", path, es[0].ID), apiAdminToken, "", nil); st != http.StatusCreated {
		t.Fatalf("resend = %d %s", st, out)
	}
	if again := recv.next(t); string(again.Body) != string(sent) {
		t.Fatalf("resent %s, first sent %s", again.Body, sent)
	}
	waitLog(t, f, path, 2)

	// A broken template is saved; the attempt is an internal error.
	st, out, _ = f.raw(t, "PUT", path, apiAdminToken, "application/json", []byte(`{"custom_webhook_template":"{\"kind\": {{object_kind}}}"}`))
	if st != http.StatusOK {
		t.Fatalf("saving a broken template = %d %s", st, out)
	}
	issue()
	es = waitLog(t, f, path, 3)
	if es[0].ResponseStatus != "internal error" || es[0].InternalError == nil ||
		!strings.HasPrefix(*es[0].InternalError, "Error while parsing rendered custom webhook template: ") {
		t.Fatalf("broken template entry = %+v", es[0])
	}
	recv.quietFor(t, 300*time.Millisecond)
	// Counted as a failure: with disable_after_failures 1 the hook is now
	// temporarily disabled.
	got, _, err := f.client.Projects.GetProjectHook("acme/api", hook.ID)
	if err != nil || got.AlertStatus != "temporarily_disabled" {
		t.Fatalf("after the failure: alert_status %q, %v", got.AlertStatus, err)
	}
}

// quietFor fails if the receiver gets anything within d.
func (rc *recordingReceiver) quietFor(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-rc.ch:
		t.Fatalf("the receiver got %s", r.Body)
	case <-time.After(d):
	}
}

// A custom webhook template that would amplify the payload (one field
// repeated as often as 4,095 characters allow) renders no further than
// max_payload: the attempt fails with that reason in Recent events and in
// the test endpoint's answer, and nothing reaches the receiver.
func TestCustomWebhookTemplateStopsAtMaxPayload(t *testing.T) {
	f := startHookFeatureFixture(t, "max_attempts 1\n\t\t\tmax_payload 64KiB")
	recv := newRecordingReceiver(t, http.StatusOK, func(w http.ResponseWriter, _ *http.Request, status int) { w.WriteHeader(status) })
	const ref = "{{object_attributes.description}}"
	tmpl := `{"a":"` + strings.Repeat(ref, (glwire.MaxCustomWebhookTemplate-1-8)/len(ref)) + `"}`
	hook, _, err := f.client.Projects.AddProjectHook("acme/api", &gitlab.AddProjectHookOptions{
		URL: gitlab.Ptr(recv.URL), IssuesEvents: gitlab.Ptr(true), PushEvents: gitlab.Ptr(false),
		CustomWebhookTemplate: gitlab.Ptr(tmpl),
	})
	if err != nil {
		t.Fatal(err)
	}
	// A 40 KB description, under max_body: rendered in full it would be
	// 4.6 MB.
	resp, err := f.tester.Client.Get("http://localhost:9080/app/issue?pad=40000")
	if err != nil {
		t.Fatal(err)
	}
	// Read whole: a client that hangs up early cuts the response, and so
	// the event's body.
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	const why = "custom webhook template: the rendered template is larger than 65536 bytes (max_payload); nothing was sent"
	path := fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d", hook.ID)
	es := waitLog(t, f, path, 1)
	if es[0].ResponseStatus != "internal error" || es[0].InternalError == nil || *es[0].InternalError != why {
		t.Fatalf("Recent events entry = %+v, want the internal error %q", es[0], why)
	}
	// The test endpoint sends the latest issue event, synchronously.
	st, out, _ := f.raw(t, "POST", path+"/test/issues_events", apiAdminToken, "", nil)
	if want, _ := json.Marshal(map[string]string{"message": why}); st != http.StatusUnprocessableEntity || out != string(want) {
		t.Fatalf("test = %d %s, want 422 %s", st, out, want)
	}
	waitLog(t, f, path, 2)
	recv.quietFor(t, 300*time.Millisecond)
}
