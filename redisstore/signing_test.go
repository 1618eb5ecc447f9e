package redisstore

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Signing tokens, the one being rotated out included, are sealed at rest
// like the token; the custom webhook template is kept in clear, as GitLab.
func TestSigningTokensSealedAtRest(t *testing.T) {
	hs, s, _ := newHookStore(t)
	ctx := context.Background()
	ns, _ := hs.NamespaceByPath(ctx, webhook.KindProject, "acme/api")
	cur := gitlab.SigningTokenPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("C", 32)))
	prev := gitlab.SigningTokenPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("P", 32)))
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	r := &webhook.HookRecord{
		URL: "https://example.com/", Triggers: []string{"push"}, CreatedAt: time.Now(),
		Signing:               gitlab.SigningTokens{Current: cur, Previous: prev, PreviousUntil: until},
		CustomWebhookTemplate: `{"kind":"{{object_kind}}"}`,
	}
	if err := hs.CreateHook(ctx, ns, r, 0); err != nil {
		t.Fatal(err)
	}
	raw := s.Client().HGet(ctx, s.c.keys.Hooks(), "1").Val()
	for _, secret := range []string{cur, prev, cur[len(gitlab.SigningTokenPrefix):], prev[len(gitlab.SigningTokenPrefix):]} {
		if strings.Contains(raw, secret) {
			t.Fatalf("a signing token is in clear in Redis: %s", raw)
		}
	}
	got, err := hs.GetHook(ctx, ns, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Signing.Current != cur || got.Signing.Previous != prev || !got.Signing.PreviousUntil.Equal(until) {
		t.Fatalf("signing tokens read back as %+v", got.Signing)
	}
	if got.CustomWebhookTemplate != r.CustomWebhookTemplate {
		t.Fatalf("template read back as %q", got.CustomWebhookTemplate)
	}
}
