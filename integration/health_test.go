package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// A receiver that fails gets its hook temporarily disabled, which GitLab's
// API shows; the deliveries meanwhile wait instead of being dropped, and
// the failed ones can be seen and redriven through Caddy's admin API.
func TestFailingHookIsDisabledShownAndRecovered(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	arrived := make(chan time.Time, 100)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(int(status.Load()))
		arrived <- time.Now()
	}))
	defer rcv.Close()
	waitArrival := func() time.Time {
		t.Helper()
		select {
		case at := <-arrived:
			return at
		case <-time.After(15 * time.Second):
			t.Fatal("no delivery within 15s")
			return time.Time{}
		}
	}
	app := newApp(t)
	redis := redistest.Start(t)
	t.Setenv("WEBHOOKS_TEST_ADMIN_TOKEN", apiAdminToken)
	t.Setenv("WEBHOOKS_TEST_ENCRYPTION_KEY", newEncryptionKey(t))
	tester := caddytest.NewTester(t)
	tester.InitServer(testCaddyfile(`{
	webhooks {
		redis %s
		namespace healthtest
		allow_local_requests
		encryption_key {env.WEBHOOKS_TEST_ENCRYPTION_KEY}
		max_attempts 1
		disable_for 3s
		max_disable_for 6s
		hook flaky {
			url %s
			project acme/api
			events push
		}
	}
}
localhost:9080 {
	handle_path /api/v4/* {
		webhooks_api {
			token admin {env.WEBHOOKS_TEST_ADMIN_TOKEN}
		}
	}
	webhooks_capture
	reverse_proxy %s
}
`, redis.URL, rcv.URL, app.addr()), "caddyfile")

	for range 4 {
		post(t, "/push?project=acme/api&branch=main", nil)
		waitArrival()
	}
	// The receiver answers before Caddy records the outcome: wait for it.
	hook := configuredHook(t)
	for deadline := time.Now().Add(5 * time.Second); hook["alert_status"] != "temporarily_disabled"; hook = configuredHook(t) {
		if time.Now().After(deadline) {
			t.Fatalf("after 4 failures the API shows alert_status=%v", hook["alert_status"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if hook["disabled_until"] == nil {
		t.Fatal("a temporarily disabled hook must show disabled_until")
	}
	until, err := time.Parse("2006-01-02T15:04:05.000Z", hook["disabled_until"].(string))
	if err != nil {
		t.Fatal(err)
	}

	// The operator view: the hook's health and its recent attempts.
	var hooks []map[string]any
	adminJSON(t, http.MethodGet, "/webhooks/hooks", nil, &hooks)
	if len(hooks) != 1 || hooks[0]["alert_status"] != "temporarily_disabled" {
		t.Fatalf("admin hooks = %v", hooks)
	}
	var attempts []map[string]any
	adminJSON(t, http.MethodGet, fmt.Sprintf("/webhooks/hooks/%.0f/events", hooks[0]["id"]), nil, &attempts)
	if len(attempts) != 4 || attempts[0]["status"] != "500" {
		t.Fatalf("admin events = %v", attempts)
	}

	var dead []map[string]any
	for deadline := time.Now().Add(5 * time.Second); len(dead) < 4 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		adminJSON(t, http.MethodGet, "/webhooks/dead-letters", nil, &dead)
	}
	if len(dead) != 4 || dead[0]["reason"] != "gave up after 1 attempts, last: 500" {
		t.Fatalf("dead letters = %v", dead)
	}

	// The receiver is fixed; an event sent while the hook is disabled waits
	// for it to come back (GitLab would drop it).
	status.Store(http.StatusOK)
	post(t, "/push?project=acme/api&branch=main", nil)
	if at := waitArrival(); at.Before(until) {
		t.Fatalf("delivered at %s, before the hook came back at %s", at, until)
	}
	deadline := time.Now().Add(5 * time.Second)
	for configuredHook(t)["alert_status"] != "executable" {
		if time.Now().After(deadline) {
			t.Fatal("the hook did not become executable after a success")
		}
		time.Sleep(50 * time.Millisecond)
	}

	var redriven map[string]int
	adminJSON(t, http.MethodPost, "/webhooks/dead-letters/redrive", map[string]any{"all": true}, &redriven)
	if redriven["redriven"] != 4 {
		t.Fatalf("redrive = %v", redriven)
	}
	for range 4 {
		waitArrival()
	}
	var stats map[string]any
	adminJSON(t, http.MethodGet, "/webhooks/stats", nil, &stats)
	if stats["dead_letters"] != float64(0) {
		t.Fatalf("stats after redrive = %v", stats)
	}
}

// configuredHook returns the configured hook of acme/api as GitLab's API lists it.
func configuredHook(t *testing.T) map[string]any {
	t.Helper()
	req := mustURL(t, http.MethodGet, caddyBase+"/api/v4/projects/acme%2Fapi/hooks")
	req.Header.Set("PRIVATE-TOKEN", apiAdminToken)
	resp, body := do(t, req)
	var hooks []map[string]any
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &hooks) != nil || len(hooks) != 1 {
		t.Fatalf("listing hooks: %d %s", resp.StatusCode, body)
	}
	return hooks[0]
}

func adminJSON(t *testing.T, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, adminBase+path, body)
	resp, raw := do(t, req)
	if resp.StatusCode != 200 || json.Unmarshal([]byte(raw), out) != nil {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
}
