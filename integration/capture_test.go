package integration

import (
	"bufio"
	"context"
	"fmt"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/google/uuid"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

func TestEventFromTheAppReachesTheReceiver(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := newApp(t)
	start(t, func(redisURL string) string {
		return caddyfile(redisURL, "https://forge.example.com", app,
			hookBlock("ci", rcv.URL+"/hook", "group acme", "push", "member"))
	})

	captured := func() float64 {
		v, _ := strconv.ParseFloat(metric(t, `caddy_webhooks_events_captured_total{trigger="push"}`), 64)
		return v
	}
	before := captured()
	resp, body := post(t, "/push?project=acme/platform/api&branch=main", nil)
	want := pushPayload("acme/platform/api", "refs/heads/main")
	if resp.StatusCode != 200 || body != want {
		t.Fatalf("client got %d %q", resp.StatusCode, body)
	}
	// The proxy flushes every write, yet by the time the client has the
	// whole response the event is already in Redis.
	if got := captured() - before; got != 1 {
		t.Fatalf("events captured when the response completed: %v, want 1", got)
	}
	assertNoSignalHeaders(t, resp.Header)

	d := rcv.next(t)
	for k, v := range map[string]string{
		"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "it-s3cret-ci",
		"X-Gitlab-Instance": "https://forge.example.com", "User-Agent": "GitLab/18.6.0",
		"Content-Type": "application/json",
	} {
		if got := d.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID", "Idempotency-Key"} {
		if _, err := uuid.Parse(d.Header.Get(k)); err != nil {
			t.Errorf("%s = %q: not a UUID", k, d.Header.Get(k))
		}
	}
	if d.Body != want {
		t.Errorf("receiver got body %q, want the app's %q", d.Body, want)
	}

	// A group-only event reaches the group hook too.
	resp, body = post(t, "/groups/acme/members", nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("member: %s", answered(resp, body))
	}
	if d := rcv.next(t); d.Header.Get("X-Gitlab-Event") != "Member Hook" {
		t.Errorf("member event arrived as %q", d.Header.Get("X-Gitlab-Event"))
	}
	// Another namespace's push and a non-event reach nobody.
	post(t, "/push?project=other/api&branch=main", nil)
	do(t, mustRequest(t, http.MethodGet, "/plain"))
	rcv.quiet(t, time.Second)
}

func TestRecursionChainIsPropagated(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := newApp(t)
	start(t, func(redisURL string) string {
		return caddyfile(redisURL, "https://forge.example.com", app, hookBlock("ci", rcv.URL, "project acme/api", "push"))
	})
	chain := uuid.NewString()
	post(t, "/push?project=acme/api&branch=main", http.Header{"X-Gitlab-Event-Uuid": {chain}})
	if got := rcv.next(t).Header.Get("X-Gitlab-Event-UUID"); got != chain {
		t.Fatalf("X-Gitlab-Event-UUID = %q, want the triggering request's %q", got, chain)
	}
}

// A client that names an event UUID a hook already received would have its
// own event blocked as recursion (GitLab's behaviour, kept by default);
// trusted_event_uuid_from limits whose UUID is believed.
func TestEventUUIDIsHonouredOnlyFromTrustedNetworks(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := newApp(t)
	config := func(redisURL, capture string) string {
		return testCaddyfile(`{
	webhooks {
		redis %s
		timeout 2s
		lease 4s
		allow_local_requests
%s
	}
}

localhost:9080 {
	webhooks_capture {
		%s
	}
	reverse_proxy %s
}
`, redisURL, hookBlock("ci", rcv.URL, "project acme/api", "push"), capture, app.addr())
	}
	tester, redis := start(t, func(redisURL string) string { return config(redisURL, "") })
	chain := uuid.NewString()
	send := func() {
		t.Helper()
		if resp, body := post(t, "/push?project=acme/api&branch=main", http.Header{"X-Gitlab-Event-Uuid": {chain}}); resp.StatusCode != 200 {
			t.Fatalf("push: %s", answered(resp, body))
		}
	}

	// Default: the UUID is believed, so a second event in the chain is
	// recursion and the hook does not get it.
	send()
	if got := rcv.next(t).Header.Get("X-Gitlab-Event-UUID"); got != chain {
		t.Fatalf("X-Gitlab-Event-UUID = %q, want the request's %q", got, chain)
	}
	send()
	rcv.quiet(t, time.Second)

	// Trusting only a network the client is not in (compared, never
	// dialled): the same UUID is ignored and the event delivered in a
	// chain of its own.
	tester.InitServer(config(redis.URL, "trusted_event_uuid_from 192.0.2.0/24"), "caddyfile")
	send()
	got := rcv.next(t).Header.Get("X-Gitlab-Event-UUID")
	if got == chain {
		t.Fatalf("an untrusted client's X-Gitlab-Event-UUID was honoured")
	}
	if _, err := uuid.Parse(got); err != nil {
		t.Fatalf("X-Gitlab-Event-UUID = %q: not a UUID", got)
	}

	// Trusting the client's network: believed again, so blocked again.
	tester.InitServer(config(redis.URL, "trusted_event_uuid_from 192.0.2.0/24 127.0.0.0/8 ::1"), "caddyfile")
	send()
	rcv.quiet(t, time.Second)
}

func TestResponsesThatAreNotEventsPassUntouched(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := newApp(t)
	_, redis := start(t, func(redisURL string) string {
		return caddyfile(redisURL, "https://forge.example.com", app, hookBlock("ci", rcv.URL, "group acme", "push"))
	})

	direct, directBody := do(t, mustURL(t, http.MethodGet, app.URL+"/plain"))
	viaCaddy, body := do(t, mustRequest(t, http.MethodGet, "/plain"))
	if body != directBody || viaCaddy.Header.Get("X-App") != "kept" || viaCaddy.Header.Get("Content-Type") != direct.Header.Get("Content-Type") {
		t.Fatalf("non-event changed: %q %v", body, viaCaddy.Header)
	}

	// Signals on responses that cannot be events are stripped, statuses and
	// bodies kept, nothing queued.
	for _, c := range []struct {
		method string
		code   int
	}{
		{http.MethodGet, 404}, {http.MethodPost, 500}, {http.MethodPost, 204}, {http.MethodGet, 304}, {http.MethodHead, 200},
	} {
		resp, body := do(t, mustRequest(t, c.method, fmt.Sprintf("/status/%d", c.code)))
		if resp.StatusCode != c.code {
			t.Errorf("%s %d: client got %s", c.method, c.code, answered(resp, body))
		}
		if (c.code == 204 || c.code == 304 || c.method == http.MethodHead) && body != "" {
			t.Errorf("%s %d: got a body %q", c.method, c.code, body)
		}
		if c.code == 304 && resp.Header.Get("ETag") != `"v1"` {
			t.Errorf("304 lost its ETag")
		}
		assertNoSignalHeaders(t, resp.Header)
	}
	rcv.quiet(t, time.Second)
	c := redis.Client()
	defer c.Close()
	if n, _ := c.XLen(context.Background(), redisstore.Keys{Namespace: "webhooks"}.Events(0)).Result(); n != 0 {
		t.Errorf("%d events queued for non-events", n)
	}
}

func TestSignalHeadersAndTrailersNeverReachTheClient(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := newApp(t)
	start(t, func(redisURL string) string {
		return caddyfile(redisURL, "https://forge.example.com", app, hookBlock("ci", rcv.URL, "group acme", "push"))
	})
	resp, body := do(t, mustRequest(t, http.MethodGet, "/empty-signals"))
	if resp.StatusCode != 200 || body != "no event here" {
		t.Fatalf("empty signals: %d %q", resp.StatusCode, body)
	}
	assertNoSignalHeaders(t, resp.Header)

	for _, path := range []string{"/trailers/declared", "/trailers/prefixed"} {
		// do reads the whole body, so resp.Trailer holds what arrived
		// (and, for declared trailers, every name the Trailer header listed).
		resp, body := do(t, mustRequest(t, http.MethodGet, path))
		if resp.StatusCode != 200 || body != "body" {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
		assertNoSignalHeaders(t, resp.Header)
		assertNoSignalHeaders(t, resp.Trailer)
		if got := resp.Trailer.Get("X-App-Checksum"); got != "abc" {
			t.Errorf("%s: the app's own trailer X-App-Checksum = %q, want abc (trailers: %v)", path, got, resp.Trailer)
		}
	}
	rcv.quiet(t, 500*time.Millisecond)
}

// The shipped Caddyfile.example scopes capture to writes (@writes): the
// responses to reads pass the handler all the same and lose their
// X-Webhook-* headers and trailers, though they are never events.
func TestShippedCaddyfileStripsSignalsFromEveryResponse(t *testing.T) {
	app := newApp(t)
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CI_HOOK_TOKEN", "ci-token-not-used")
	t.Setenv("CHAT_HOOK_PATH", "chat-path-not-used")
	t.Setenv("WEBHOOKS_INGEST_TOKEN", "ingest-token-not-used-0123")
	_, redis := start(t, func(redisURL string) string {
		t.Setenv("WEBHOOKS_REDIS_URL", redisURL)
		cfg := string(example)
		for old, repl := range map[string]string{
			"\n{\n": "\n{\n" + testGlobals, "\nforge.example.com {": "\nlocalhost:9080 {",
			"reverse_proxy 127.0.0.1:3000": "reverse_proxy " + app.addr(),
		} {
			if !strings.Contains(cfg, old) {
				t.Fatalf("Caddyfile.example has no %q to adapt", old)
			}
			cfg = strings.Replace(cfg, old, repl, 1)
		}
		return cfg
	})
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/status/200"}, {http.MethodHead, "/status/200"}, {http.MethodGet, "/status/404"},
		{http.MethodGet, "/empty-signals"}, {http.MethodGet, "/trailers/declared"}, {http.MethodGet, "/trailers/prefixed"},
		{http.MethodOptions, "/status/200"},
	} {
		resp, _ := do(t, mustRequest(t, c.method, c.path))
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s: %d", c.method, c.path, resp.StatusCode)
		}
		for k := range resp.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-webhook-") {
				t.Errorf("%s %s: signal header %s reached the client", c.method, c.path, k)
			}
		}
		for k := range resp.Trailer {
			if strings.HasPrefix(strings.ToLower(k), "x-webhook-") {
				t.Errorf("%s %s: signal trailer %s reached the client", c.method, c.path, k)
			}
		}
	}
	rdb := redis.Client()
	defer rdb.Close()
	if n, _ := rdb.XLen(context.Background(), redisstore.Keys{Namespace: "webhooks"}.Events(0)).Result(); n != 0 {
		t.Errorf("%d events queued for reads", n)
	}
}

func TestStreamingResponsesAreNotHeldBack(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := newApp(t)
	start(t, func(redisURL string) string {
		return caddyfile(redisURL, "https://forge.example.com", app, hookBlock("ci", rcv.URL, "group acme", "push"))
	})
	resp, err := http.Get(caddyBase + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	assertNoSignalHeaders(t, resp.Header)
	// The upstream sends its second message only after we have read the
	// first: a handler that buffered the stream would never deliver it.
	lines := bufio.NewReader(resp.Body)
	first, err := lines.ReadString('\n')
	if err != nil || first != "data: first\n" {
		t.Fatalf("first SSE line = %q, %v", first, err)
	}
	close(app.release)
	rest, _ := io.ReadAll(lines)
	if !strings.Contains(string(rest), "data: second") {
		t.Fatalf("rest of stream = %q", rest)
	}
}

func TestUpgradedConnectionsPassThrough(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := newApp(t)
	start(t, func(redisURL string) string {
		return caddyfile(redisURL, "https://forge.example.com", app, hookBlock("ci", rcv.URL, "group acme", "push"))
	})
	conn := rawConn(t)
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: localhost:9080\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		t.Fatalf("GET /ws with Upgrade: echo on %s: %s %q, want 101", conn.RemoteAddr(), resp.Status, body)
	}
	assertNoSignalHeaders(t, resp.Header)
	fmt.Fprint(conn, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: ping\n" {
		t.Fatalf("echo = %q, %v", line, err)
	}
	rcv.quiet(t, 500*time.Millisecond)
}

func TestEventSurvivesTheClientGoingAway(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := newApp(t)
	start(t, func(redisURL string) string {
		return caddyfile(redisURL, "https://forge.example.com", app, hookBlock("ci", rcv.URL, "group acme", "push"))
	})
	conn := rawConn(t)
	fmt.Fprint(conn, "POST /abort HTTP/1.1\r\nHost: localhost:9080\r\nContent-Length: 0\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("response: %v %v", resp, err)
	}
	// Read the start of the body (the app has committed the event), then
	// hang up while the app is still writing.
	buf := make([]byte, 16)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	d := rcv.next(t)
	if !strings.HasPrefix(d.Body, pushPayload("acme/api", "refs/heads/main")) {
		t.Fatalf("delivered body %q", d.Body)
	}
	// Caddy keeps serving.
	if r, _ := do(t, mustRequest(t, http.MethodGet, "/plain")); r.StatusCode != 200 {
		t.Fatalf("after abort: %d", r.StatusCode)
	}
}

func TestBadConfigurationIsRefusedWithReasons(t *testing.T) {
	redis := redistest.Start(t)
	base := func(webhooks, site string) string {
		return testCaddyfile(`{
	%s
}
localhost:9080 {
	%s
	respond "ok"
}
`, webhooks, site)
	}
	cases := map[string]struct{ cfg, want string }{
		"lease not above timeout": {base("webhooks {\n redis "+redis.URL+"\n timeout 10s\n lease 5s\n}", "webhooks_capture"),
			"lease (5s) must be longer than the delivery timeout (10s)"},
		"hook URL not http": {base("webhooks {\n redis "+redis.URL+"\n hook x {\n url ftp://example.com\n group acme\n }\n}", "webhooks_capture"),
			"must be an http or https URL"},
		"group event on a project hook": {base("webhooks {\n redis "+redis.URL+"\n hook x {\n url http://example.com\n project acme/api\n events member\n }\n}", "webhooks_capture"),
			"hook x: member events are for group hooks only"},
		"bad branch filter": {base("webhooks {\n redis "+redis.URL+"\n hook x {\n url http://example.com\n group acme\n branch_filter regex (\n }\n}", "webhooks_capture"),
			"hook x: branch filter is not valid RE2 syntax"},
		"capture without the app": {base("", "webhooks_capture"),
			"webhooks_capture needs the webhooks app"},
		"max_body over max_payload": {base("webhooks {\n redis "+redis.URL+"\n max_payload 1MiB\n}", "webhooks_capture {\n max_body 2MiB\n }"),
			"max_body (2097152 bytes) exceeds the webhooks max_payload (1048576 bytes)"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			caddytest.AssertLoadError(t, c.cfg, "caddyfile", c.want)
		})
	}
}

func mustRequest(t *testing.T, method, path string) *http.Request {
	return mustURL(t, method, caddyBase+path)
}

func mustURL(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
