package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// adminCall calls Caddy's admin API and returns the status and body.
func adminCall(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, _ := http.NewRequest(method, adminBase+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, b := do(t, req)
	return resp.StatusCode, strings.TrimSpace(b)
}

// Replays through the admin endpoint and the API: bad input gets a clear
// 400, a dry run counts, a replay sends the failed deliveries again and
// its progress can be read; an unknown replay is a 404.
func TestReplayEndpoints(t *testing.T) {
	f := startAPIFixture(t)
	var failing atomic.Bool
	failing.Store(true)
	var got atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		if failing.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	t.Cleanup(rcv.Close)
	code, body, _ := f.raw(t, http.MethodPost, "/api/v4/projects/acme%2Fapi/hooks", apiAdminToken, "application/json",
		[]byte(`{"url":"`+rcv.URL+`/x","retry_schedule":["1h"]}`))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	var hook struct{ ID int64 }
	json.Unmarshal([]byte(body), &hook)
	for _, ref := range []string{"refs/heads/a", "refs/heads/b", "refs/heads/c"} {
		f.event(t, ref)
	}
	waitAPI(t, "three failed attempts", func() bool { return got.Load() == 3 })
	failing.Store(false)

	for _, c := range []struct{ body, want string }{
		{`{"since":"1h","status":"broken"}`, `status must be failed, dead or all, got \"broken\"`},
		{`{"since":"yesterday"}`, `since: \"yesterday\" is neither a time (RFC 3339) nor how long ago`},
		{`{"status":"failed"}`, `since is required`},
		{`{"since":"1h","hooks":[999]}`, `there is no hook 999`},
		{`{"since":"1h","hoks":[1]}`, `unknown field \"hoks\"`},
	} {
		if code, body := adminCall(t, http.MethodPost, "/webhooks/replays", c.body); code != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("admin %s: %d %s, want 400 with %s", c.body, code, body, c.want)
		}
	}
	path := fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/replay", hook.ID)
	for _, c := range []struct{ body, want string }{
		{`{"since":"1h","status":"nope"}`, `{"error":"status does not have a valid value (failed, dead or all)"}`},
		{`{"status":"failed"}`, `{"error":"since is missing"}`},
		{`{"since":"soon"}`, `{"error":"since is invalid"}`},
	} {
		if code, body, _ := f.raw(t, http.MethodPost, path, apiAdminToken, "application/json", []byte(c.body)); code != http.StatusBadRequest || body != c.want {
			t.Errorf("api %s: %d %s, want 400 %s", c.body, code, body, c.want)
		}
	}
	code, body = adminCall(t, http.MethodPost, "/webhooks/replays", fmt.Sprintf(`{"since":"1h","hooks":[%d],"dry_run":true}`, hook.ID))
	if code != http.StatusOK || !strings.Contains(body, `"matched":3`) || strings.Contains(body, `"id":`) {
		t.Fatalf("admin dry run: %d %s", code, body)
	}
	code, body, _ = f.raw(t, http.MethodPost, path, apiAdminToken, "application/json", []byte(`{"since":"1h"}`))
	if code != http.StatusCreated || !strings.Contains(body, `"matched":3`) {
		t.Fatalf("api replay: %d %s", code, body)
	}
	var job struct {
		ID int64 `json:"id"`
	}
	json.Unmarshal([]byte(body), &job)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := adminCall(t, http.MethodGet, fmt.Sprintf("/webhooks/replays/%d", job.ID), "")
		if code == http.StatusOK && strings.Contains(body, `"state":"done"`) && strings.Contains(body, `"queued":3`) && got.Load() == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replay %d: %d %s, %d requests", job.ID, code, body, got.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := adminCall(t, http.MethodGet, "/webhooks/replays", ""); code != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"id":%d`, job.ID)) {
		t.Errorf("replays: %d %s", code, body)
	}
	if code, body := adminCall(t, http.MethodGet, "/webhooks/replays/999", ""); code != http.StatusNotFound || !strings.Contains(body, "no replay 999") {
		t.Errorf("unknown replay: %d %s", code, body)
	}
}
