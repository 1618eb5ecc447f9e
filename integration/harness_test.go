// Package integration runs Caddy in-process (caddytest) with the plugin, a
// real redis-server, a real upstream app and real receivers. Tests here
// share one Caddy: they must not run in parallel.
package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/grt-continuation/caddy-webhooks"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

const (
	caddyBase = "http://localhost:9080"
	adminBase = "http://localhost:2999"
)

// delivery is one request a receiver got.
type delivery struct {
	Header http.Header
	Body   string
}

// receiver is a webhook receiver "written for GitLab": it records what
// arrives and answers 200 after an optional delay.
type receiver struct {
	*httptest.Server
	ch    chan delivery
	delay time.Duration
}

func newReceiver(t *testing.T, delay time.Duration) *receiver {
	t.Helper()
	r := &receiver{ch: make(chan delivery, 1000), delay: delay}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		time.Sleep(r.delay)
		r.ch <- delivery{Header: req.Header.Clone(), Body: string(b)}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

// next waits (bounded) for the next delivery.
func (r *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.ch:
		return d
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery within 15s")
		return delivery{}
	}
}

// quiet asserts nothing more arrives for a while.
func (r *receiver) quiet(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case d := <-r.ch:
		t.Fatalf("unexpected delivery %s: %s", d.Header.Get("X-Gitlab-Event"), d.Body)
	case <-time.After(wait):
	}
}

// app is the upstream web app behind Caddy. Its routes announce events
// the way a real app would, with X-Webhook-* response headers.
type app struct {
	*httptest.Server
	release chan struct{} // lets /sse send its second message
	mu      sync.Mutex
	aborted bool // /abort saw its writes fail
}

func pushPayload(project, ref string) string {
	return fmt.Sprintf(`{"object_kind":"push","event_name":"push","ref":%q,"project":{"path_with_namespace":%q},"commits":[]}`, ref, project)
}

func newApp(t *testing.T) *app {
	t.Helper()
	a := &app{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /push", func(w http.ResponseWriter, r *http.Request) {
		project, ref := r.URL.Query().Get("project"), "refs/heads/"+r.URL.Query().Get("branch")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Project", project)
		w.Header().Set("X-Webhook-Ref", ref)
		io.WriteString(w, pushPayload(project, ref))
	})
	mux.HandleFunc("POST /groups/{group}/members", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Webhook-Event", "member")
		w.Header().Set("X-Webhook-Namespace", r.PathValue("group"))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"event_name":"user_add_to_group","group_path":%q}`, r.PathValue("group"))
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "kept")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello, not an event")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscan(r.PathValue("code"), &code)
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Header().Set("X-Webhook-Ref", "refs/heads/main")
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(code)
		if code != http.StatusNoContent && code != http.StatusNotModified && r.Method != http.MethodHead {
			io.WriteString(w, pushPayload("acme/api", "refs/heads/main"))
		}
	})
	mux.HandleFunc("/empty-signals", func(w http.ResponseWriter, r *http.Request) {
		for _, k := range []string{"X-Webhook-Event", "X-Webhook-Project", "X-Webhook-Namespace", "X-Webhook-Ref", "X-Webhook-Other"} {
			w.Header()[k] = []string{""}
		}
		io.WriteString(w, "no event here")
	})
	// Trailers an app sets after the body: declared up front in Trailer,
	// or undeclared with http.TrailerPrefix.
	mux.HandleFunc("/trailers/declared", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Webhook-Event, X-App-Checksum")
		w.Header().Add("Trailer", "X-Webhook-Project")
		io.WriteString(w, "body")
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Header().Set("X-App-Checksum", "abc")
	})
	mux.HandleFunc("/trailers/prefixed", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "body")
		w.(http.Flusher).Flush() // chunked: an undeclared trailer needs it
		w.Header().Set(http.TrailerPrefix+"X-Webhook-Event", "push")
		w.Header().Set(http.TrailerPrefix+"X-Webhook-Ref", "")
		w.Header().Set(http.TrailerPrefix+"X-App-Checksum", "abc")
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Webhook-Event", "push") // even a signalled stream must not be held back
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Header().Set("X-Webhook-Ref", "refs/heads/main")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-a.release:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "data: second\n\n")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Webhook-Event: push\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	})
	mux.HandleFunc("POST /abort", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Header().Set("X-Webhook-Ref", "refs/heads/main")
		io.WriteString(w, pushPayload("acme/api", "refs/heads/main"))
		w.(http.Flusher).Flush()
		// Keep streaming whitespace (still valid JSON after the object)
		// until the client's disconnect makes writes fail.
		for range 100 {
			time.Sleep(50 * time.Millisecond)
			if _, err := io.WriteString(w, strings.Repeat(" ", 1024)); err != nil {
				break
			}
			if http.NewResponseController(w).Flush() != nil {
				break
			}
		}
	})
	a.Server = httptest.NewServer(mux)
	t.Cleanup(a.Close)
	return a
}

func (a *app) addr() string { return strings.TrimPrefix(a.URL, "http://") }

// testGlobals are the global options every test's Caddy shares: fixed
// loopback ports, no trust store, no shutdown grace.
const testGlobals = `	skip_install_trust
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
`

// testCaddyfile is fmt.Sprintf(format, args...) with testGlobals put first
// in the global options block (the first "{").
func testCaddyfile(format string, args ...any) string {
	return strings.Replace(fmt.Sprintf(format, args...), "{", "{\n"+testGlobals, 1)
}

// caddyfile is the standard test config; hooks and extra site lines vary.
func caddyfile(redisURL, instance string, app *app, hooks string) string {
	return testCaddyfile(`{
	webhooks {
		redis %s
		instance %s
		timeout 2s
		lease 4s
		claim_interval 500ms
		allow_local_requests
%s
	}
}

localhost:9080 {
	webhooks_capture
	reverse_proxy %s {
		flush_interval -1
	}
}
`, redisURL, instance, hooks, app.addr())
}

func hookBlock(name, url, scope string, events ...string) string {
	return fmt.Sprintf(`		hook %s {
			url %s
			token it-s3cret-%s
			%s
			events %s
		}
`, name, url, name, scope, strings.Join(events, " "))
}

// start brings up redis, and loads a config into the shared Caddy.
func start(t *testing.T, cfg func(redisURL string) string) (*caddytest.Tester, *redistest.Server) {
	t.Helper()
	redis := redistest.Start(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(cfg(redis.URL), "caddyfile")
	return tester, redis
}

func post(t *testing.T, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, caddyBase+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, req)
}

// answered says what came back for a request, for failure messages: the
// request, the status and the body.
func answered(resp *http.Response, body string) string {
	if len(body) > 300 {
		body = body[:300] + "…"
	}
	return fmt.Sprintf("%s %s: %s %q", resp.Request.Method, resp.Request.URL, resp.Status, body)
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 15*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func assertNoSignalHeaders(t *testing.T, h http.Header) {
	t.Helper()
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-webhook-") {
			t.Errorf("signal header %s reached the client", k)
		}
	}
}

// metric reads one sample from Caddy's admin /metrics endpoint.
func metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get(adminBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	return ""
}

// rawRequest sends bytes over a fresh TCP connection and returns it.
func rawConn(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:9080", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return conn
}
