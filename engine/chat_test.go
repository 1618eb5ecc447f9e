package engine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// storeSlack saves a Slack integration the way the API does.
func storeSlack(t *testing.T, redisURL string, box *secret.Box, project, hookURL string) int64 {
	t.Helper()
	store, err := redisstore.New(redisstore.Options{URL: redisURL, Namespace: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	ns, err := store.Hooks(box).NamespaceByPath(ctx, webhook.KindProject, project)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := store.Integrations(box).PutIntegration(ctx, ns, "slack", func(r *webhook.IntegrationRecord, _ bool) error {
		r.Webhook, r.Channel, r.Username = hookURL, "#dev", "GitLab"
		r.Triggers, r.BranchesToBeNotified = []string{"push"}, chat.BranchesAll
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func testBox(t *testing.T) *secret.Box {
	t.Helper()
	key := make([]byte, secret.KeySize)
	_, _ = rand.Read(key)
	box, err := secret.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return box
}

func samplePush(t *testing.T, project string) *webhook.Event {
	t.Helper()
	body, err := os.ReadFile("../chat/testdata/push.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: project}, body, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestSlackIntegrationGetsGitLabsMessage(t *testing.T) {
	srv, got := receiver(t, 200)
	redis := redistest.Start(t)
	box := testBox(t)
	id := storeSlack(t, redis.URL, box, "mike/diaspora", srv.URL+"/services/T0/B0/secret")
	cfg := testConfig()
	cfg.Secrets = box
	rt := startOn(t, redis.URL, cfg)
	enqueue(t, rt, samplePush(t, "mike/diaspora"))
	r := next(t, got)
	if ct := r.header.Get("Content-Type"); ct != chat.FormContentType {
		t.Errorf("Content-Type %q, want GitLab's form post", ct)
	}
	for _, h := range []string{"X-Gitlab-Event", "X-Gitlab-Token", "X-Gitlab-Instance"} {
		if r.header.Get(h) != "" {
			t.Errorf("%s sent to a chat", h)
		}
	}
	form, err := url.ParseQuery(r.body)
	if err != nil {
		t.Fatal(err)
	}
	var msg slack.WebhookMessage
	if err := json.Unmarshal([]byte(form.Get("payload")), &msg); err != nil {
		t.Fatalf("payload is not a Slack message: %v\n%s", err, r.body)
	}
	if !strings.HasPrefix(msg.Text, "John Smith pushed to branch <https://gitlab.example.com/mike/diaspora/-/commits/master|master>") ||
		msg.Channel != "#dev" || msg.Username != "GitLab" || len(msg.Attachments) != 1 {
		t.Errorf("message %+v", msg)
	}
	streamsDrained(t, rt)
	refs, err := rt.HookLog(context.Background(), id)
	if err != nil || len(refs) != 1 {
		t.Fatalf("integration log = %v, %v", refs, err)
	}
}

// Slack answers a removed webhook with 404 no_service, a revoked one with
// 403 invalid_token: a client error, reported and not retried.
func TestChatEndpointRefusalIsDeadLettered(t *testing.T) {
	rcv := newScripted(t, 404)
	redis := redistest.Start(t)
	box := testBox(t)
	id := storeSlack(t, redis.URL, box, "mike/diaspora", rcv.URL+"/services/T0/B0/gone")
	cfg := testConfig()
	cfg.Secrets = box
	cfg.Retry.MaxAttempts = 5
	rt := startOn(t, redis.URL, cfg)
	enqueue(t, rt, samplePush(t, "mike/diaspora"))
	rcv.wait(t, 1)
	rcv.quiet(t, 700*time.Millisecond)
	streamsDrained(t, rt)
	reasons := deadReasons(t, rt)
	if len(reasons) != 1 || !strings.Contains(reasons[0], "client error 404") {
		t.Fatalf("dead letters %v", reasons)
	}
	h, ok := rt.Hooks().Get(id)
	if !ok || strings.Contains(h.MaskedURL(), "gone") {
		t.Fatalf("integration %d: masked URL %q shows the webhook's secret path", id, h.MaskedURL())
	}
}
