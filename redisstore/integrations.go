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

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Chat integrations (Slack, Mattermost, Discord, Microsoft Teams) live
// beside the hooks, under the same hash tag:
//
//	<ns>:{h0}:integrations   hash, "<kind>:<lower path>:<service>" → JSON
//	                         (webhook sealed)
//
// Their ids come from the hook id counter, so a delivery's hook id names
// either a hook or an integration; every change bumps the hooks version,
// so runtimes reload both.

// Integrations is the hash of chat integrations.
func (k Keys) Integrations() string { return k.Namespace + ":{h0}:integrations" }

// IntegrationRecord is a chat integration of a project or group, its
// webhook in clear. Only IntegrationStore sees the sealed form.
type IntegrationRecord struct {
	ID          int64  `json:"id"`
	Kind        Kind   `json:"kind"`
	Path        string `json:"path"`
	NamespaceID int64  `json:"namespace_id"`
	// Service is the chat's slug: slack, mattermost, discord, microsoft_teams.
	Service string `json:"service"`
	// Webhook is the chat's incoming-webhook URL, a secret (sealed at rest).
	Webhook  string `json:"-"`
	Username string `json:"username,omitempty"`
	Channel  string `json:"channel,omitempty"`
	// Channels are per-event channel overrides, by event name.
	Channels map[string]string `json:"channels,omitempty"`
	// Triggers are the gitlab.Trigger values notified of.
	Triggers                   []string  `json:"triggers,omitempty"`
	NotifyOnlyBrokenPipelines  bool      `json:"notify_only_broken_pipelines"`
	BranchesToBeNotified       string    `json:"branches_to_be_notified"`
	ProtectedBranches          []string  `json:"protected_branches,omitempty"`
	LabelsToBeNotified         string    `json:"labels_to_be_notified,omitempty"`
	LabelsToBeNotifiedBehavior string    `json:"labels_to_be_notified_behavior,omitempty"`
	CreatedAt                  time.Time `json:"created_at"`
	UpdatedAt                  time.Time `json:"updated_at"`
}

// storedIntegration is the JSON an integration is kept as.
type storedIntegration struct {
	IntegrationRecord
	WebhookSealed string `json:"webhook_sealed"`
}

// ErrIntegrationNotFound: the project or group has no such integration.
var ErrIntegrationNotFound = errors.New("integration not found")

// IntegrationStore keeps chat integrations in Redis, webhooks sealed with
// box.
type IntegrationStore struct {
	s   *Store
	box *secret.Box
}

// Integrations returns the store's integration repository; box seals and
// opens webhooks (nil: no key, and no integration can be saved or loaded).
func (s *Store) Integrations(box *secret.Box) *IntegrationStore {
	return &IntegrationStore{s: s, box: box}
}

func integrationField(kind Kind, path, service string) string {
	return string(kind) + ":" + strings.ToLower(path) + ":" + service
}

func integrationSealContext(id int64) string {
	return "integration:" + strconv.FormatInt(id, 10) + ":webhook"
}

func (is *IntegrationStore) encode(r *IntegrationRecord) (string, error) {
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

func (is *IntegrationStore) decode(field, raw string) (*IntegrationRecord, error) {
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
func (is *IntegrationStore) GetIntegration(ctx context.Context, ns Namespace, service string) (*IntegrationRecord, error) {
	r, _, err := is.get(ctx, ns, service)
	return r, err
}

func (is *IntegrationStore) get(ctx context.Context, ns Namespace, service string) (*IntegrationRecord, string, error) {
	f := integrationField(ns.Kind, ns.Path, service)
	raw, err := is.s.rdb.HGet(ctx, is.s.keys.Integrations(), f).Result()
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

// KEYS[1] integrations hash, KEYS[2] hooks version; ARGV[1] field,
// ARGV[2] the value read before ("" when absent), ARGV[3] the new value
// ("" to delete). Returns 1 when written, 0 when the value changed since.
var putIntegrationScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  if cur == '' then return 1 end
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
redis.call('INCR', KEYS[2])
return 1
`)

// PutIntegration creates or updates the service's integration of ns: fn
// gets the stored record, or a new one (created true) with its id, owner
// and service set, and edits it; for an ns without an id yet (ID 0), fn
// sets NamespaceID once it has decided the write goes ahead. An error from
// fn is returned as is.
func (is *IntegrationStore) PutIntegration(ctx context.Context, ns Namespace, service string,
	fn func(r *IntegrationRecord, created bool) error) (*IntegrationRecord, bool, error) {
	if is.box == nil {
		return nil, false, fmt.Errorf("storing an integration's webhook: %w", secret.ErrNoKey)
	}
	k := is.s.keys
	for range 16 {
		r, old, err := is.get(ctx, ns, service)
		created := errors.Is(err, ErrIntegrationNotFound)
		switch {
		case created:
			id, err := is.s.rdb.Incr(ctx, k.HookSeq()).Result()
			if err != nil {
				return nil, false, fmt.Errorf("assigning an integration id: %w", err)
			}
			if id > MaxHookID {
				return nil, false, fmt.Errorf("hook ids exhausted (%d)", id)
			}
			now := time.Now().UTC()
			r = &IntegrationRecord{ID: id, Kind: ns.Kind, Path: ns.Path, NamespaceID: ns.ID, Service: service,
				CreatedAt: now}
		case err != nil:
			return nil, false, err
		}
		id, created0 := r.ID, r.CreatedAt
		if err := fn(r, created); err != nil {
			return nil, false, err
		}
		r.ID, r.Kind, r.Service, r.CreatedAt = id, ns.Kind, service, created0
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
		ok, err := putIntegrationScript.Run(ctx, is.s.rdb, []string{k.Integrations(), k.HooksVersion()},
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
func (is *IntegrationStore) DeleteIntegration(ctx context.Context, ns Namespace, service string) error {
	k := is.s.keys
	f := integrationField(ns.Kind, ns.Path, service)
	for range 16 {
		old, err := is.s.rdb.HGet(ctx, k.Integrations(), f).Result()
		if errors.Is(err, redis.Nil) {
			return ErrIntegrationNotFound
		}
		if err != nil {
			return fmt.Errorf("reading integration %q: %w", f, err)
		}
		ok, err := putIntegrationScript.Run(ctx, is.s.rdb, []string{k.Integrations(), k.HooksVersion()}, f, old, "").Int()
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
func (is *IntegrationStore) LoadIntegrations(ctx context.Context) ([]*IntegrationRecord, error) {
	all, err := is.s.rdb.HGetAll(ctx, is.s.keys.Integrations()).Result()
	if err != nil {
		return nil, fmt.Errorf("loading integrations: %w", err)
	}
	out := make([]*IntegrationRecord, 0, len(all))
	for f, raw := range all {
		r, err := is.decode(f, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *IntegrationRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Hook is the integration as deliveries go to it: a hook whose Chat
// settings make the fan-out write the chat's message for it.
func (r *IntegrationRecord) Hook() (*webhook.Hook, error) {
	svc, ok := chat.ParseService(r.Service)
	if !ok {
		return nil, fmt.Errorf("integration %d has unknown service %q", r.ID, r.Service)
	}
	s := &chat.Settings{
		Service: svc, Username: r.Username, Channel: r.Channel, Channels: r.Channels,
		NotifyOnlyBrokenPipelines: r.NotifyOnlyBrokenPipelines, BranchesToBeNotified: r.BranchesToBeNotified,
		ProtectedBranches: r.ProtectedBranches, LabelsToBeNotified: r.LabelsToBeNotified,
		LabelsToBeNotifiedBehavior: r.LabelsToBeNotifiedBehavior,
	}
	for _, t := range r.Triggers {
		tr, ok := gitlab.ParseTrigger(t)
		if !ok {
			return nil, fmt.Errorf("integration %d has unknown trigger %q", r.ID, t)
		}
		s.Triggers.Add(tr)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("integration %d: %w", r.ID, err)
	}
	// Triggers are shown (admin API); matching is MatchChats' alone, as
	// NewHookSet indexes chat integrations apart.
	h := &webhook.Hook{ID: r.ID, Name: svc.Title(), URL: r.Webhook, EnableSSLVerification: true, Chat: s, Triggers: s.Triggers}
	if !r.Kind.own(h, r.Path) {
		return nil, fmt.Errorf("integration %d has unknown owner kind %q", r.ID, r.Kind)
	}
	return h, nil
}
