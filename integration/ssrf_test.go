package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// storeHook writes a hook straight into Redis, as one saved by an earlier
// version or while allow_local_requests was on: the API would refuse it
// now, and the dial-time check must still hold.
func storeHook(t *testing.T, redisURL, namespace, project, hookURL string) int64 {
	t.Helper()
	s, err := redisstore.New(redisstore.Options{URL: redisURL, Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs := s.Hooks(nil)
	ctx := context.Background()
	ns, err := hs.NamespaceByPath(ctx, webhook.KindProject, project)
	if err != nil {
		t.Fatal(err)
	}
	rec := &webhook.HookRecord{URL: hookURL, Triggers: []string{"push"}, EnableSSLVerification: true,
		BranchFilterStrategy: "wildcard", CreatedAt: time.Now().UTC()}
	if err := hs.CreateHook(ctx, ns, rec, 0); err != nil {
		t.Fatal(err)
	}
	return rec.ID
}

// hitCounter is a receiver on a loopback address that counts what reaches it.
func hitCounter(t *testing.T, network, addr string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("secret from the loopback receiver"))
	})}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &hits
}

// Without allow_local_requests, a stored hook whose name resolves to
// loopback gets nothing: the connection is refused, and the attempt fails
// as an internal error naming the rule.
func TestLocalReceiversAreRefusedByDefault(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := newApp(t)
	port := rcv.Listener.Addr().(*net.TCPAddr).Port
	start(t, func(redisURL string) string {
		storeHook(t, redisURL, "webhooks", "acme/api", fmt.Sprintf("http://localhost:%d/hook", port))
		cfg := caddyfile(redisURL, "https://forge.example.com", app, "\t\tmax_attempts 1\n")
		return strings.Replace(cfg, "\t\tallow_local_requests\n", "", 1)
	})
	failed := func() float64 {
		v, _ := strconv.ParseFloat(metric(t, `caddy_webhooks_deliveries_total{result="internal_error"}`), 64)
		return v
	}
	before := failed()
	if resp, body := post(t, "/push?project=acme/api&branch=main", nil); resp.StatusCode != 200 {
		t.Fatalf("client got %s", answered(resp, body))
	}
	deadline := time.Now().Add(10 * time.Second)
	for failed() == before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if failed() == before {
		t.Fatal("no failed attempt recorded within 10s")
	}
	rcv.quiet(t, 500*time.Millisecond)
}

// A hook URL with an IPv6 zone (http://[::1%251]:…), or another spelling
// of a loopback address, is refused when saved, with GitLab's message, and
// a stored one is refused when tested, without a connection to the
// loopback receivers it would reach.
func TestLoopbackHookURLsAreRefusedInEverySpelling(t *testing.T) {
	v6, v6hits := hitCounter(t, "tcp6", "[::1]:0")
	v4, v4hits := hitCounter(t, "tcp4", "127.0.0.1:0")
	port6 := v6.Listener.Addr().(*net.TCPAddr).Port
	port4 := v4.Listener.Addr().(*net.TCPAddr).Port
	f := startAPIFixtureWith(t, "")

	const hooks = "/api/v4/projects/acme%2Fapi/hooks"
	blocked := `{"error":"Url is blocked: Requests to localhost are not allowed"}`
	for _, u := range []string{
		fmt.Sprintf("http://[::1%%251]:%d/x", port6),
		fmt.Sprintf("http://[::1%%25lo]:%d/x", port6),
		fmt.Sprintf("http://[::ffff:127.0.0.1%%251]:%d/x", port4),
		fmt.Sprintf("http://[::127.0.0.1]:%d/x", port4),
		fmt.Sprintf("http://[64:ff9b::7f00:1]:%d/x", port4),
		fmt.Sprintf("http://localhost:%d/x", port4),
		// Spellings the resolver reads as 127.0.0.1 (inet_aton, a
		// trailing dot, IDNA) or that embed it (SIIT).
		fmt.Sprintf("http://2130706433:%d/x", port4),
		fmt.Sprintf("http://0177.0.0.1:%d/x", port4),
		fmt.Sprintf("http://0x7f.0.0.1:%d/x", port4),
		fmt.Sprintf("http://127.1:%d/x", port4),
		fmt.Sprintf("http://127.0.0.1.:%d/x", port4),
		fmt.Sprintf("http://127.000.000.001:%d/x", port4),
		fmt.Sprintf("http://0:%d/x", port4),
		fmt.Sprintf("http://１２７．０．０．１:%d/x", port4),
		fmt.Sprintf("http://①②⑦.⓪.⓪.①:%d/x", port4),
		fmt.Sprintf("http://[::ffff:0:127.0.0.1]:%d/x", port4),
	} {
		status, body, _ := f.raw(t, http.MethodPost, hooks, apiAdminToken, "application/x-www-form-urlencoded",
			[]byte("url="+url.QueryEscape(u)))
		if status != http.StatusUnprocessableEntity || body != blocked {
			t.Errorf("POST hook %s: %d %s, want 422 %s", u, status, body, blocked)
		}
	}
	// The same through URL variables, at create and when one is set.
	status, body, _ := f.raw(t, http.MethodPost, hooks, apiAdminToken, "application/json",
		[]byte(fmt.Sprintf(`{"url":"http://{host}:%d/x","url_variables":[{"key":"host","value":"[::1%%251]"}]}`, port6)))
	if status != http.StatusUnprocessableEntity || body != blocked {
		t.Errorf("POST hook with a zoned URL variable: %d %s, want 422 %s", status, body, blocked)
	}
	status, body, _ = f.raw(t, http.MethodPost, hooks, apiAdminToken, "application/json",
		[]byte(`{"url":"http://{host}/x","url_variables":[{"key":"host","value":"203.0.114.1"}]}`))
	if status != http.StatusCreated {
		t.Fatalf("POST hook with a public address: %d %s", status, body)
	}
	var created struct{ ID int64 }
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.ID == 0 {
		t.Fatalf("created hook %s: %v", body, err)
	}
	id := created.ID
	status, body, _ = f.raw(t, http.MethodPut, fmt.Sprintf("%s/%d/url_variables/host", hooks, id), apiAdminToken,
		"application/json", []byte(fmt.Sprintf(`{"value":"[::1%%25lo]:%d"}`, port6)))
	if status != http.StatusUnprocessableEntity || body != blocked {
		t.Errorf("PUT a zoned URL variable: %d %s, want 422 %s", status, body, blocked)
	}

	// Stored before the check existed: a test delivery is refused too.
	for _, u := range []string{fmt.Sprintf("http://[::1%%251]:%d/x", port6), fmt.Sprintf("http://[::ffff:127.0.0.1%%25lo]:%d/x", port4),
		fmt.Sprintf("http://2130706433:%d/x", port4), fmt.Sprintf("http://127.1:%d/x", port4)} {
		id := storeHook(t, f.redis.URL, "apitest", "acme/api", u)
		status, body, _ := f.raw(t, http.MethodPost, fmt.Sprintf("%s/%d/test/push_events", hooks, id), apiAdminToken, "", nil)
		if status != http.StatusUnprocessableEntity || !strings.HasSuffix(body, `: Requests to localhost are not allowed"}`) || strings.Contains(body, "secret from") {
			t.Errorf("test of a stored hook at %s: %d %s, want 422 naming the rule", u, status, body)
		}
	}
	if n, m := v6hits.Load(), v4hits.Load(); n != 0 || m != 0 {
		t.Fatalf("the loopback receivers got %d ([::1]) and %d (127.0.0.1) requests", n, m)
	}
}
