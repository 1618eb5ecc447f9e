package delivery

import (
	"context"
	"strings"
	"time"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// DefaultHealthPolicy is the rule of GitLab's webhooks documentation
// ("Auto-disabled webhooks"): the 4th consecutive failure disables a hook
// for 1 minute, doubling per further failure up to 24 hours; a 4xx at that
// point (or any 410 Gone) disables it until a person re-enables it.
var DefaultHealthPolicy = redisstore.HealthPolicy{Threshold: 4, Base: time.Minute, Max: 24 * time.Hour}

// HealthFor is the auto-disabling rule of hook: its own mode, when it
// has one.
func (c *Config) HealthFor(h *webhook.Hook) redisstore.HealthPolicy {
	p := c.Health
	if a := h.AutoDisable; a != nil {
		p.Mode, p.PermanentAfter = a.Mode, a.PermanentAfter
	}
	return p
}

// AlertStatus values, as GitLab's API returns them.
const (
	AlertExecutable          = "executable"
	AlertTemporarilyDisabled = "temporarily_disabled"
	AlertDisabled            = "disabled"
)

// HookHealth is a hook's state as GitLab's API shows it.
type HookHealth struct {
	AlertStatus   string
	DisabledUntil *time.Time
	Failures      int
}

// HookHealth reads a hook's state; the state is shared by every process
// through Redis.
func (d *Deliverer) HookHealth(ctx context.Context, hookID int64) (HookHealth, error) {
	h, err := d.store.Health.HookHealth(ctx, hookID)
	if err != nil {
		return HookHealth{}, err
	}
	out := HookHealth{AlertStatus: AlertExecutable, Failures: h.Fails}
	switch {
	case h.Disabled:
		out.AlertStatus = AlertDisabled
	case h.DisabledUntil.After(time.Now()):
		out.AlertStatus = AlertTemporarilyDisabled
		until := h.DisabledUntil
		out.DisabledUntil = &until
	}
	return out, nil
}

// ResetHealth re-enables a hook: after a successful test request, or when a
// person re-enables it. Deliveries waiting for it go out when due.
func (d *Deliverer) ResetHealth(ctx context.Context, hookID int64) error {
	was, err := d.store.Health.ResetHealth(ctx, hookID, time.Now())
	if err != nil {
		return err
	}
	d.disabled.forget(hookID)
	if h, ok := d.hooks().Get(hookID); ok && was && d.alerts != nil && !h.Operator {
		d.alerts.HookEnabled(h, "re-enabled")
	}
	return nil
}

// topLevel is the top-level namespace a hook's calls are counted against.
func topLevel(h *webhook.Hook) string {
	p := h.Project
	if p == "" {
		p = h.Group
	}
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}
