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

// Integration ids are their own, as GitLab's: a new integration's API id
// comes from the integrations' counter (starting above the ids integrations
// saved earlier took from the hooks' counter), while the engine delivers
// to it under an id from the hooks' counter, which no hook shares. An
// integration saved before keeps its id for both.
func TestIntegrationIDsAreTheirOwn(t *testing.T) {
	hs, s, box := newHookStore(t)
	is := s.Integrations(box)
	ctx := context.Background()
	ns, err := hs.NamespaceByPath(ctx, webhook.KindProject, "acme/api")
	if err != nil {
		t.Fatal(err)
	}
	// As an earlier version stored one: id 5 from the hooks' counter, at 9.
	old := &webhook.IntegrationRecord{ID: 5, Kind: ns.Kind, Path: ns.Path, NamespaceID: ns.ID, Service: "slack",
		Webhook: "https://hooks.slack.example/services/T/B/old", BranchesToBeNotified: "default"}
	raw, err := is.encode(old)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, "hook_id") {
		t.Fatalf("an integration without a delivery id is stored with one: %s", raw)
	}
	c, k := s.Client(), s.Keys()
	c.HSet(ctx, k.Integrations(), "project:acme/api:slack", raw)
	c.Set(ctx, k.HookSeq(), 9, 0)

	add := func(svc string) *webhook.IntegrationRecord {
		t.Helper()
		r, created, err := is.PutIntegration(ctx, ns, svc, func(r *webhook.IntegrationRecord, _ bool) error {
			r.Webhook, r.BranchesToBeNotified = "https://chat.example/"+svc, "default"
			return nil
		})
		if err != nil || !created {
			t.Fatalf("put %s: %v %v", svc, created, err)
		}
		return r
	}
	discord, teams := add("discord"), add("microsoft_teams")
	if discord.ID != 6 || teams.ID != 7 {
		t.Errorf("API ids %d, %d; want 6 and 7, after the integration saved with 5", discord.ID, teams.ID)
	}
	if discord.DeliveryID() != 10 || teams.DeliveryID() != 11 {
		t.Errorf("delivery ids %d, %d; want 10 and 11 from the hooks' counter", discord.DeliveryID(), teams.DeliveryID())
	}
	all, err := is.LoadIntegrations(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("load = %v, %v", all, err)
	}
	for _, r := range all {
		h, err := r.Hook()
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]int64{5: 5, 6: 10, 7: 11}[r.ID]
		if h.ID != want {
			t.Errorf("integration %d delivers as hook %d, want %d", r.ID, h.ID, want)
		}
	}
	// An update keeps both ids.
	r, _, err := is.PutIntegration(ctx, ns, "discord", func(r *webhook.IntegrationRecord, _ bool) error { r.Channel = "x"; return nil })
	if err != nil || r.ID != 6 || r.DeliveryID() != 10 {
		t.Errorf("update = %+v, %v", r, err)
	}
}
