package redisstore

import (
	"fmt"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Hook is the record as the hook deliveries go to, validated by GitLab's
// rules (webhook.Hook.Validate): a hook that breaks them comes with a
// *webhook.InvalidError, a bad branch filter included.
func (r *HookRecord) Hook() (*webhook.Hook, error) {
	h := &webhook.Hook{
		ID: r.ID, Name: r.Name, URL: r.URL, URLVariables: r.URLVariables, Token: r.Token,
		EnableSSLVerification: r.EnableSSLVerification, CustomHeaders: r.CustomHeaders,
		Signing: r.Signing, CustomWebhookTemplate: r.CustomWebhookTemplate,
	}
	if !r.Kind.own(h, r.Path) {
		return nil, fmt.Errorf("hook %d has unknown owner kind %q", r.ID, r.Kind)
	}
	for _, t := range r.Triggers {
		tr, ok := gitlab.ParseTrigger(t)
		if !ok {
			return nil, fmt.Errorf("hook %d has unknown trigger %q", r.ID, t)
		}
		h.Triggers.Add(tr)
	}
	var v webhook.Invalid
	bf, err := gitlab.NewBranchFilter(r.BranchFilterStrategy, r.PushEventsBranchFilter)
	if err != nil {
		v.Add(webhook.BadBranchFilter, err)
	}
	h.BranchFilter = bf
	h.Check(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return h, nil
}
