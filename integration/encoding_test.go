package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/codingtest"
)

// An app that compresses its responses still announces events: the event
// carries the decoded JSON, the client gets the app's bytes unchanged, and
// a compression bomb is refused and counted.
func TestEveryContentEncodingIsCaptured(t *testing.T) {
	rcv := newReceiver(t, 0)
	payload := pushPayload("acme/api", "refs/heads/main")
	bomb := `{"x":"` + strings.Repeat("A", 2<<20) + `"}` // twice max_body
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		coding := strings.TrimPrefix(r.URL.Path, "/")
		body := payload
		if r.URL.Query().Has("bomb") {
			body = bomb
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", coding)
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Write(codingtest.Encode(t, coding, []byte(body)))
	}))
	t.Cleanup(upstream.Close)
	start(t, func(redisURL string) string {
		return caddyfile(redisURL, "https://forge.example.com", &app{Server: upstream},
			hookBlock("ci", rcv.URL, "project acme/api", "push"))
	})
	// The client asks for the coding, as a browser would; without that the
	// proxy's transport would ask for gzip itself and undo it.
	get := func(path string) (*http.Response, []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, caddyBase+path, nil)
		req.Header.Set("Accept-Encoding", strings.Trim(strings.SplitN(path, "?", 2)[0], "/"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	for _, coding := range []string{"gzip", "deflate", "br", "zstd"} {
		resp, body := get("/" + coding)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != coding || !bytes.Equal(body, codingtest.Encode(t, coding, []byte(payload))) {
			t.Errorf("%s: the client got %d %s and other bytes than the app sent", coding, resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
		if d := rcv.next(t); d.Body != payload {
			t.Errorf("%s: the receiver got %q, want the decoded %q", coding, d.Body, payload)
		}
	}

	tooLarge := func() float64 {
		v, _ := strconv.ParseFloat(metric(t, `caddy_webhooks_events_rejected_total{reason="too_large"}`), 64)
		return v
	}
	for _, coding := range []string{"gzip", "br", "zstd"} {
		before := tooLarge()
		if resp, body := get("/" + coding + "?bomb"); resp.StatusCode != 200 {
			t.Errorf("%s bomb: the client got %s, want the app's 200", coding, answered(resp, string(body)))
		}
		if d := tooLarge() - before; d != 1 {
			t.Errorf("%s bomb: too_large rejections grew by %v, want 1", coding, d)
		}
	}
	rcv.quiet(t, time.Second)
}
