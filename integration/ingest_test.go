package integration

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	ingestAll  = "ingest-token-all-0123456789"
	ingestAcme = "ingest-token-acme-api-0123"
)

func ingestCaddyfile(redisURL, spoolDir, hookURL string) string {
	return testCaddyfile(`{
	webhooks {
		redis %s
		timeout 2s
		lease 4s
		claim_interval 500ms
		allow_local_requests
		spool_dir %s
		hook ci {
			url %s
			token it-s3cret-ci
			group acme
			events push issues member
		}
	}
}

localhost:9080 {
	handle /api/v4/events {
		webhooks_ingest {
			token jobs %s
			token acme-api %s scope acme/api
			max_body 4KiB
			max_batch 10
			enqueue_timeout 300ms
			idempotency_window 1m
		}
	}
}
`, redisURL, spoolDir, hookURL, ingestAll, ingestAcme)
}

// ingest posts to the ingest endpoint and decodes its JSON answer.
func ingest(t *testing.T, token, contentType, body string, header http.Header) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, caddyBase+"/api/v4/events", strings.NewReader(body))
	if token != "" {
		req.Header.Set("PRIVATE-TOKEN", token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, raw := do(t, req)
	var out map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("%d answer is not JSON: %q", resp.StatusCode, raw)
	}
	return resp, out
}

func eventIDs(t *testing.T, ans map[string]any) []string {
	t.Helper()
	var ids []string
	list, _ := ans["event_ids"].([]any)
	for _, v := range list {
		ids = append(ids, v.(string))
	}
	return ids
}

func pushEvent(project, branch string) string {
	ref := "refs/heads/" + branch
	return `{"trigger":"push","project":"` + project + `","ref":"` + ref + `","payload":` + pushPayload(project, ref) + `}`
}

// A background job, a git hook or cron posts events that no response
// announces; they are authenticated, validated, deduplicated and delivered
// like captured ones.
func TestIngestEndpoint(t *testing.T) {
	rcv := newReceiver(t, 0)
	spoolDir := t.TempDir()
	_, redis := start(t, func(redisURL string) string { return ingestCaddyfile(redisURL, spoolDir, rcv.URL) })

	// Authentication, as the hooks API: GitLab's 401.
	for _, token := range []string{"", "not-a-configured-token-xyz"} {
		resp, ans := ingest(t, token, "application/json", pushEvent("acme/api", "main"), nil)
		if resp.StatusCode != http.StatusUnauthorized || ans["message"] != "401 Unauthorized" {
			t.Fatalf("token %q: %d %v, want 401 Unauthorized", token, resp.StatusCode, ans)
		}
	}

	// One event: 202 with its ID, delivered as GitLab would.
	resp, ans := ingest(t, ingestAll, "application/json", pushEvent("acme/api", "main"), nil)
	ids := eventIDs(t, ans)
	if resp.StatusCode != http.StatusAccepted || len(ids) != 1 {
		t.Fatalf("single event: %d %v", resp.StatusCode, ans)
	}
	d := rcv.next(t)
	if d.Header.Get("X-Gitlab-Event") != "Push Hook" || d.Body != pushPayload("acme/api", "refs/heads/main") ||
		d.Header.Get("X-Gitlab-Event-UUID") != ids[0] {
		t.Fatalf("delivery %v %q does not match event %s", d.Header, d.Body, ids[0])
	}

	// A scoped token emits events for its paths only.
	resp, ans = ingest(t, ingestAcme, "application/json", pushEvent("acme/web", "main"), nil)
	if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(ans["message"].(string), "403 Forbidden") {
		t.Fatalf("out of scope: %d %v, want 403", resp.StatusCode, ans)
	}
	resp, ans = ingest(t, ingestAcme, "", pushEvent("acme/api", "scoped"), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("in scope: %d %v, want 202", resp.StatusCode, ans)
	}
	if d := rcv.next(t); !strings.Contains(d.Body, "refs/heads/scoped") {
		t.Fatalf("in-scope event delivered as %q", d.Body)
	}

	// A batch as NDJSON: every event, in order.
	batch := pushEvent("acme/api", "b1") + "\n" +
		`{"trigger":"issues","project":"acme/api","payload":{"object_kind":"issue","object_attributes":{"iid":7}}}` + "\n\n" +
		`{"trigger":"member","group":"acme","payload":{"event_name":"user_add_to_group","group_path":"acme"}}` + "\n"
	resp, ans = ingest(t, ingestAll, "application/x-ndjson", batch, nil)
	if ids := eventIDs(t, ans); resp.StatusCode != http.StatusAccepted || len(ids) != 3 {
		t.Fatalf("batch: %d %v", resp.StatusCode, ans)
	}
	got := map[string]bool{}
	for range 3 {
		got[rcv.next(t).Header.Get("X-Gitlab-Event")] = true
	}
	if !got["Push Hook"] || !got["Issue Hook"] || !got["Member Hook"] {
		t.Fatalf("batch delivered %v", got)
	}

	// A bad line refuses the whole batch, naming the line; GitLab's shapes.
	for _, tc := range []struct {
		body   string
		status int
		field  string
		want   string
	}{
		{pushEvent("acme/api", "x") + "\n{not json\n", 400, "error", "line 2: "},
		{pushEvent("acme/api", "x") + "\n\n" + `{"trigger":"push","project":"acme/api","payload":{},"extra":1}`, 400, "error", "line 3: not an event object: json: unknown field"},
		{pushEvent("acme/api", "x") + "\n" + `{"trigger":"nonsense","project":"acme/api","payload":{}}`, 422, "message", `line 2: unknown event "nonsense"`},
		{pushEvent("acme/api", "x") + "\n" + `{"trigger":"push","project":"acme/api","payload":{}}`, 422, "message", "line 2: push events need a ref"},
		{pushEvent("acme/api", "x") + "\n" + `{"trigger":"push","project":"acme/api","ref":"r","payload":[1]}`, 422, "message", "line 2: the payload is not a JSON object"},
		{pushEvent("acme/api", "x") + "\n" + `{"trigger":"push","project":"acme/api","ref":"r","payload":{"x":"` + strings.Repeat("a", 5000) + `"}}`, 413, "message", "line 2: 413 Request Entity Too Large"},
		{strings.Repeat(pushEvent("acme/api", "x")+"\n", 11), 413, "message", "413 Request Entity Too Large: 11 events"},
		// Valid JSON to encoding/json, but not UTF-8 (GitLab's payloads are).
		{pushEvent("acme/api", "x") + "\n" + `{"trigger":"push","project":"acme/api","ref":"r","payload":{"t":"caf` + "\xe9" + `"}}`, 400, "error", "line 2: the event is not valid UTF-8 (at byte 68)"},
		{pushEvent("acme/api", "x") + "\n" + `{"trigger":"push","project":"acme/api","ref":"r","payload":{"t":"\ud800"}}`, 400, "error", "line 2: the event is not valid UTF-8 (at byte 65)"},
		{`{"trigger":"push","project":"acme/api","ref":"r","payload":{"t":"` + "\xff\xfe" + `"}}`, 400, "error", "line 1: the event is not valid UTF-8 (at byte 65)"},
	} {
		resp, ans := ingest(t, ingestAll, "application/x-ndjson", tc.body, nil)
		msg, _ := ans[tc.field].(string)
		if resp.StatusCode != tc.status || !strings.HasPrefix(msg, tc.want) {
			t.Errorf("%d %v, want %d with %s starting %q", resp.StatusCode, ans, tc.status, tc.field, tc.want)
		}
	}
	rcv.quiet(t, 500*time.Millisecond) // nothing of the refused batches went out

	// A retry with the same Idempotency-Key is the same event.
	key := http.Header{"Idempotency-Key": {"nightly-2026-11-29"}}
	_, first := ingest(t, ingestAll, "application/json", pushEvent("acme/api", "nightly"), key)
	resp, again := ingest(t, ingestAll, "application/json", pushEvent("acme/api", "nightly"), key)
	if resp.StatusCode != http.StatusAccepted || eventIDs(t, again)[0] != eventIDs(t, first)[0] {
		t.Fatalf("retry: %d %v, want 202 with the first event's ID %v", resp.StatusCode, again, first)
	}
	rcv.next(t)
	rcv.quiet(t, 500*time.Millisecond)
	// Another token's identical key is its own event.
	if _, other := ingest(t, ingestAcme, "application/json", pushEvent("acme/api", "nightly"), key); eventIDs(t, other)[0] == eventIDs(t, first)[0] {
		t.Fatal("a key of another token was taken for a duplicate")
	}
	rcv.next(t)

	// Redis down: the event is spooled (202) and delivered once Redis is back.
	redis.Stop()
	resp, ans = ingest(t, ingestAll, "application/json", pushEvent("acme/api", "while-down"), key)
	if resp.StatusCode != http.StatusAccepted || len(eventIDs(t, ans)) != 1 {
		t.Fatalf("redis down: %d %v, want 202 (spooled)", resp.StatusCode, ans)
	}
	redis.Restart()
	// Delivery is at least once: an earlier delivery whose settlement the
	// outage cut off may come again first.
	for i := 0; ; i++ {
		d := rcv.next(t)
		if strings.Contains(d.Body, "refs/heads/while-down") {
			if d.Header.Get("X-Gitlab-Event-UUID") != eventIDs(t, ans)[0] {
				t.Fatalf("the spooled event arrived with X-Gitlab-Event-UUID %s, want its ID %s", d.Header.Get("X-Gitlab-Event-UUID"), eventIDs(t, ans)[0])
			}
			break
		}
		if i == 3 {
			t.Fatalf("after redis came back: %q, not the spooled event", d.Body)
		}
	}
}
