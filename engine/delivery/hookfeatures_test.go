package delivery

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func localSend() *SendConfig {
	return &SendConfig{Timeout: 5 * time.Second, MaxResponseBody: 1 << 10, UserAgent: "GitLab/17.0.0",
		Network: NetworkPolicy{AllowLocal: true}}
}

type received struct {
	header http.Header
	body   string
}

// receiver is a real HTTP server that records what arrives.
func receiver(t *testing.T) (*httptest.Server, chan received) {
	t.Helper()
	ch := make(chan received, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- received{header: r.Header.Clone(), body: string(b)}
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// A hook with a template and a signing token sends the rendered template,
// signed as sent; the log keeps the rendering and the signature, never the
// signing token.
func TestSendRendersTemplateAndSignsIt(t *testing.T) {
	srv, got := receiver(t)
	url := srv.URL
	tok, _ := gitlab.GenerateSigningToken()
	h := &webhook.Hook{ID: 3, URL: url, EnableSSLVerification: true, Signing: gitlab.SigningTokens{Current: tok},
		CustomWebhookTemplate: `{"text":"{{object_attributes.title}}"}`}
	payload := []byte(`{"object_kind":"issue","object_attributes":{"title":"a \"quoted\"\nline"}}`)
	req := &Request{Hook: h, EventID: "ev1", Chain: "ev1", Trigger: gitlab.Issues, Body: payload}
	res := NewSender().Send(context.Background(), localSend(), req)
	if !res.Success() {
		t.Fatalf("send failed: %+v", res)
	}
	r := <-got
	var doc map[string]string
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil || doc["text"] != "a \"quoted\"\nline" {
		t.Fatalf("receiver got %s (%v)", r.body, err)
	}
	wh, err := standardwebhooks.NewWebhook(tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify([]byte(r.body), r.header); err != nil {
		t.Fatalf("the Standard Webhooks library refuses the delivery: %v", err)
	}
	if r.header.Get("webhook-id") != r.header.Get("Idempotency-Key") {
		t.Fatalf("webhook-id %q is not the Idempotency-Key %q", r.header.Get("webhook-id"), r.header.Get("Idempotency-Key"))
	}
	e := hooklog.NewEntry(hooklog.KindDelivery, attempt(req, &res), 1<<20)
	if !e.Rendered || string(e.RequestData) != r.body {
		t.Fatalf("log keeps %s (rendered %v), want what was sent", e.RequestData, e.Rendered)
	}
	if e.RequestHeaders[gitlab.HeaderStdWebhookSignature] == "" {
		t.Fatalf("log hides the signature: %v", e.RequestHeaders)
	}
	all, _ := json.Marshal(e)
	if strings.Contains(string(all), strings.TrimPrefix(tok, gitlab.SigningTokenPrefix)) {
		t.Fatal("the log entry holds the signing token")
	}
}

// As GitLab, a template that does not render to JSON fails each attempt
// with an internal error, and nothing is sent.
func TestSendWithBrokenTemplateIsAnInternalError(t *testing.T) {
	srv, got := receiver(t)
	url := srv.URL
	h := &webhook.Hook{ID: 3, URL: url, CustomWebhookTemplate: `{"kind": {{object_kind}}}`}
	res := NewSender().Send(context.Background(), localSend(),
		&Request{Hook: h, EventID: "ev1", Chain: "ev1", Trigger: gitlab.Push, Body: []byte(`{"object_kind":"push"}`)})
	if res.Outcome() != "internal_error" || !strings.HasPrefix(res.Err.Error(), "Error while parsing rendered custom webhook template: ") {
		t.Fatalf("outcome %s, error %v", res.Outcome(), res.Err)
	}
	select {
	case r := <-got:
		t.Fatalf("a broken template was sent: %s", r.body)
	default:
	}
}
