package webhook

import (
	"fmt"
	"time"

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

// IntegrationRecord is a chat integration of a project or group, its
// webhook in clear (the store seals it).
type IntegrationRecord struct {
	// ID is the integration's id in GitLab's API, from the integrations'
	// own counter, as GitLab's integration ids are their own.
	ID int64 `json:"id"`
	// HookID is the id the engine delivers to it under (health, log, dead
	// letters), from the hooks' counter so that no hook has it; zero for
	// an integration saved before integrations had their own ids, whose
	// ID came from that counter and serves (DeliveryID).
	HookID      int64  `json:"hook_id,omitempty"`
	Kind        Kind   `json:"kind"`
	Path        string `json:"path"`
	NamespaceID int64  `json:"namespace_id"`
	// Service is the chat's slug: slack, mattermost, discord,
	// microsoft_teams, hangouts_chat, webex_teams.
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

// DeliveryID is the id the engine delivers to the integration under.
func (r *IntegrationRecord) DeliveryID() int64 {
	if r.HookID != 0 {
		return r.HookID
	}
	return r.ID
}

// Hook is the integration as deliveries go to it: a hook whose Chat
// settings make the fan-out write the chat's message for it.
func (r *IntegrationRecord) Hook() (*Hook, error) {
	svc, ok := chat.ParseService(r.Service)
	if !ok {
		return nil, fmt.Errorf("integration %d has unknown service %q", r.ID, r.Service)
	}
	s := &chat.Settings{
		Service: svc, Group: r.Kind == KindGroup, Username: r.Username, Channel: r.Channel, Channels: r.Channels,
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
	h := &Hook{ID: r.DeliveryID(), Name: svc.Title(), URL: r.Webhook, EnableSSLVerification: true, Chat: s, Triggers: s.Triggers}
	if !r.Kind.own(h, r.Path) {
		return nil, fmt.Errorf("integration %d has unknown owner kind %q", r.ID, r.Kind)
	}
	return h, nil
}
