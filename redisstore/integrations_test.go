package redisstore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func TestIntegrationLifecycle(t *testing.T) {
	hs, s, box := newHookStore(t)
	is := s.Integrations(box)
	ctx := context.Background()
	ns, err := hs.NamespaceByPath(ctx, webhook.KindProject, "Acme/API")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := is.GetIntegration(ctx, ns, "slack"); !errors.Is(err, ErrIntegrationNotFound) {
		t.Fatalf("get before put: %v", err)
	}
	v0, _ := hs.HooksVersion(ctx)
	const hookURL = "https://hooks.slack.example/services/T000/B000/XXXXSECRET"
	r, created, err := is.PutIntegration(ctx, ns, "slack", func(r *webhook.IntegrationRecord, created bool) error {
		r.Webhook, r.Channel, r.Triggers = hookURL, "#dev", []string{"push"}
		return nil
	})
	if err != nil || !created || r.ID == 0 || r.Path != "Acme/API" {
		t.Fatalf("put = %+v, %v, %v", r, created, err)
	}
	if v1, _ := hs.HooksVersion(ctx); v1 <= v0 {
		t.Fatalf("hooks version %d → %d: runtimes would not reload", v0, v1)
	}
	// The webhook is a secret: sealed at rest.
	raw, _ := s.Client().HGet(ctx, s.c.keys.Integrations(), "project:acme/api:slack").Result()
	if raw == "" || strings.Contains(raw, "XXXXSECRET") {
		t.Fatalf("stored form %q holds the webhook in clear (or nothing)", raw)
	}
	r2, created, err := is.PutIntegration(ctx, ns, "slack", func(r *webhook.IntegrationRecord, created bool) error {
		r.Channel = "#ops"
		return nil
	})
	if err != nil || created || r2.ID != r.ID || r2.Webhook != hookURL || r2.Channel != "#ops" {
		t.Fatalf("update = %+v, %v, %v", r2, created, err)
	}
	all, err := is.LoadIntegrations(ctx)
	if err != nil || len(all) != 1 || all[0].Webhook != hookURL {
		t.Fatalf("load = %+v, %v", all, err)
	}
	// Another key does not open it.
	if _, err := s.Integrations(nil).LoadIntegrations(ctx); !errors.Is(err, secret.ErrNoKey) {
		t.Fatalf("load without key: %v", err)
	}
	if err := is.DeleteIntegration(ctx, ns, "slack"); err != nil {
		t.Fatal(err)
	}
	if err := is.DeleteIntegration(ctx, ns, "slack"); !errors.Is(err, ErrIntegrationNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}
