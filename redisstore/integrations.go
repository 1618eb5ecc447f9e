package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// storedIntegration is the JSON an integration is kept as.
type storedIntegration struct {
	webhook.IntegrationRecord
	WebhookSealed string `json:"webhook_sealed"`
}

// ErrIntegrationNotFound: the project or group has no such integration.
var ErrIntegrationNotFound = errors.New("integration not found")

// Integrations keeps chat integrations in Redis, webhooks sealed with box.
type Integrations struct {
	*conn
	box *secret.Box
}

func integrationField(kind webhook.Kind, path, service string) string {
	return string(kind) + ":" + strings.ToLower(path) + ":" + service
}

func integrationSealContext(id int64) string {
	return "integration:" + strconv.FormatInt(id, 10) + ":webhook"
}

func (is *Integrations) encode(r *webhook.IntegrationRecord) (string, error) {
	st := storedIntegration{IntegrationRecord: *r}
	var err error
	if st.WebhookSealed, err = is.box.Seal(r.Webhook, integrationSealContext(r.ID)); err != nil {
		return "", fmt.Errorf("sealing the webhook of integration %d: %w", r.ID, err)
	}
	b, err := json.Marshal(&st)
	if err != nil {
		return "", fmt.Errorf("encoding integration %d: %w", r.ID, err)
	}
	return string(b), nil
}

func (is *Integrations) decode(field, raw string) (*webhook.IntegrationRecord, error) {
	var st storedIntegration
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return nil, fmt.Errorf("decoding integration %q: %w", field, err)
	}
	r := st.IntegrationRecord
	var err error
	if r.Webhook, err = is.box.Open(st.WebhookSealed, integrationSealContext(r.ID)); err != nil {
		return nil, fmt.Errorf("opening the webhook of integration %d: %w", r.ID, err)
	}
	return &r, nil
}

// GetIntegration returns the service's integration of ns.
func (is *Integrations) GetIntegration(ctx context.Context, ns webhook.Namespace, service string) (*webhook.IntegrationRecord, error) {
	r, _, err := is.get(ctx, ns, service)
	return r, err
}

func (is *Integrations) get(ctx context.Context, ns webhook.Namespace, service string) (*webhook.IntegrationRecord, string, error) {
	f := integrationField(ns.Kind, ns.Path, service)
	raw, err := is.rdb.HGet(ctx, is.keys.Integrations(), f).Result()
	if errors.Is(err, redis.Nil) {
		return nil, "", ErrIntegrationNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading integration %q: %w", f, err)
	}
	r, err := is.decode(f, raw)
	if err != nil {
		return nil, "", err
	}
	return r, raw, nil
}

// PutIntegration creates or updates the service's integration of ns: fn
// gets the stored record, or a new one (created true) with its id, owner
// and service set, and edits it; for an ns without an id yet (ID 0), fn
// sets NamespaceID once it has decided the write goes ahead. An error from
// fn is returned as is.
func (is *Integrations) PutIntegration(ctx context.Context, ns webhook.Namespace, service string,
	fn func(r *webhook.IntegrationRecord, created bool) error) (*webhook.IntegrationRecord, bool, error) {
	if is.box == nil {
		return nil, false, fmt.Errorf("storing an integration's webhook: %w", secret.ErrNoKey)
	}
	k := is.keys
	for range 16 {
		r, old, err := is.get(ctx, ns, service)
		created := errors.Is(err, ErrIntegrationNotFound)
		switch {
		case created:
			// GitLab's integration ids are their own; the engine delivers
			// under an id from the hooks' counter, unique among both.
			id, err := nextIntegrationScript.run(ctx, is.rdb, []string{k.IntegrationSeq(), k.Integrations()}).Int64()
			if err != nil {
				return nil, false, fmt.Errorf("assigning an integration id: %w", err)
			}
			hookID, err := is.rdb.Incr(ctx, k.HookSeq()).Result()
			if err != nil {
				return nil, false, fmt.Errorf("assigning integration %d its delivery id: %w", id, err)
			}
			if hookID > webhook.MaxHookID || id > webhook.MaxHookID {
				return nil, false, fmt.Errorf("hook ids exhausted (%d)", max(id, hookID))
			}
			now := time.Now().UTC()
			r = &webhook.IntegrationRecord{ID: id, HookID: hookID, Kind: ns.Kind, Path: ns.Path, NamespaceID: ns.ID,
				Service: service, CreatedAt: now}
		case err != nil:
			return nil, false, err
		}
		id, hookID, created0 := r.ID, r.HookID, r.CreatedAt
		if err := fn(r, created); err != nil {
			return nil, false, err
		}
		r.ID, r.HookID, r.Kind, r.Service, r.CreatedAt = id, hookID, ns.Kind, service, created0
		if ns.ID != 0 { // else fn gave the new integration's owner its id
			r.NamespaceID = ns.ID
		}
		if created {
			r.Path = ns.Path
		}
		r.UpdatedAt = time.Now().UTC()
		raw, err := is.encode(r)
		if err != nil {
			return nil, false, err
		}
		ok, err := putIntegrationScript.run(ctx, is.rdb, []string{k.Integrations(), k.HooksVersion()},
			integrationField(ns.Kind, ns.Path, service), old, raw).Int()
		if err != nil {
			return nil, false, fmt.Errorf("storing integration %d: %w", id, err)
		}
		if ok == 1 {
			return r, created, nil
		}
	}
	return nil, false, ErrConflict
}

// DeleteIntegration removes the service's integration of ns, or returns
// ErrIntegrationNotFound.
func (is *Integrations) DeleteIntegration(ctx context.Context, ns webhook.Namespace, service string) error {
	k := is.keys
	f := integrationField(ns.Kind, ns.Path, service)
	for range 16 {
		old, err := is.rdb.HGet(ctx, k.Integrations(), f).Result()
		if errors.Is(err, redis.Nil) {
			return ErrIntegrationNotFound
		}
		if err != nil {
			return fmt.Errorf("reading integration %q: %w", f, err)
		}
		ok, err := putIntegrationScript.run(ctx, is.rdb, []string{k.Integrations(), k.HooksVersion()}, f, old, "").Int()
		if err != nil {
			return fmt.Errorf("deleting integration %q: %w", f, err)
		}
		if ok == 1 {
			return nil
		}
	}
	return ErrConflict
}

// LoadIntegrations reads every integration. One that cannot be decoded or
// opened fails the load: the caller keeps what it had.
func (is *Integrations) LoadIntegrations(ctx context.Context) ([]*webhook.IntegrationRecord, error) {
	all, err := is.rdb.HGetAll(ctx, is.keys.Integrations()).Result()
	if err != nil {
		return nil, fmt.Errorf("loading integrations: %w", err)
	}
	out := make([]*webhook.IntegrationRecord, 0, len(all))
	for f, raw := range all {
		r, err := is.decode(f, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *webhook.IntegrationRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}
