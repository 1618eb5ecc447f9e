package engine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/internal/chatfixtures"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// storeSlack saves a Slack integration the way the API does.
func storeSlack(t *testing.T, redisURL string, box *secret.Box, project, hookURL string) int64 {
	t.Helper()
	return storeChat(t, redisURL, box, project, chat.Slack, func(r *webhook.IntegrationRecord) {
		r.Webhook, r.Channel, r.Username = hookURL, "#dev", "GitLab"
	})
}

// storeChat saves an integration of svc for push events on every branch,
// edited by edit, the way the API does.
func storeChat(t *testing.T, redisURL string, box *secret.Box, project string, svc chat.Service, edit func(*webhook.IntegrationRecord)) int64 {
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
	r, _, err := store.Integrations(box).PutIntegration(ctx, ns, string(svc), func(r *webhook.IntegrationRecord, _ bool) error {
		r.Triggers, r.BranchesToBeNotified = []string{"push"}, chat.BranchesAll
		edit(r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r.DeliveryID()
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
	ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: project}, chatfixtures.Payload("push"), "", time.Now())
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

// Each channel of a list is a delivery of its own, as GitLab posts to
// each: a channel whose post fails is retried alone, the others are
// delivered once, and each carries an Idempotency-Key of its own.
func TestChatChannelListIsOneDeliveryPerChannel(t *testing.T) {
	type post struct{ channel, key string }
	posts := make(chan post, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		var msg slack.WebhookMessage
		_ = json.Unmarshal([]byte(r.PostForm.Get("payload")), &msg)
		posts <- post{msg.Channel, r.Header.Get("Idempotency-Key")}
		if msg.Channel == "#down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	redis := redistest.Start(t)
	box := testBox(t)
	storeChat(t, redis.URL, box, "mike/diaspora", chat.Slack, func(r *webhook.IntegrationRecord) {
		r.Webhook, r.Channels = srv.URL+"/services/T0/B0/x", map[string]string{"push": "#down, #dev,#ops"}
	})
	cfg := testConfig()
	cfg.Secrets = box
	cfg.Retry.MaxAttempts = 3
	rt := startOn(t, redis.URL, cfg)
	enqueue(t, rt, samplePush(t, "mike/diaspora"))

	count, keys := map[string]int{}, map[string]string{}
	deadline := time.After(15 * time.Second)
	for count["#down"] < 3 || count["#dev"] < 1 || count["#ops"] < 1 {
		select {
		case p := <-posts:
			count[p.channel]++
			if k, seen := keys[p.channel]; seen && k != p.key {
				t.Errorf("%s: Idempotency-Key changed on a retry: %s, then %s", p.channel, k, p.key)
			}
			keys[p.channel] = p.key
		case <-deadline:
			t.Fatalf("posts per channel %v, want #down tried 3 times and #dev, #ops once", count)
		}
	}
	streamsDrained(t, rt)
	if count["#dev"] != 1 || count["#ops"] != 1 || len(posts) != 0 {
		t.Errorf("posts per channel %v (%d more), want #dev and #ops once", count, len(posts))
	}
	if keys["#down"] == keys["#dev"] || keys["#dev"] == keys["#ops"] || keys["#down"] == keys["#ops"] {
		t.Errorf("channels share an Idempotency-Key: %v", keys)
	}
	if reasons := deadReasons(t, rt); len(reasons) != 1 {
		t.Errorf("dead letters %v, want #down's alone", reasons)
	}
}
