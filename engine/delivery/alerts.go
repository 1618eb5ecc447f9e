package delivery

import (
	"context"
	"time"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Alerts hear what operators want to know of deliveries (engine/alerts):
// a hook disabled or back, deliveries given up on. They must not block:
// they are called as outcomes are settled.
type Alerts interface {
	// HookDisabled: an attempt disabled the hook, for a while or until it
	// is re-enabled.
	HookDisabled(h *webhook.Hook, st redisstore.Settled, lastStatus string)
	// HookEnabled: the hook is back, how: "delivered" (a success after a
	// disable) or "re-enabled" (a successful test, a person).
	HookEnabled(h *webhook.Hook, how string)
	// DeadLettered: a delivery of the hook was given up on; kind is the
	// dead_letters_total reason (client_error, gone, exhausted, …).
	DeadLettered(h *webhook.Hook, dv *webhook.Delivery, kind string)
}

// SetAlerts gives the deliverer the operator's alerts.
func (d *Deliverer) SetAlerts(a Alerts) { d.alerts = a }

// alert tells the alerts what settling an attempt of hook found. The
// operator's own alert endpoints raise no alert: it would go to them.
func (d *Deliverer) alert(hook *webhook.Hook, dv *webhook.Delivery, out redisstore.Outcome, st redisstore.Settled) {
	if d.alerts == nil || hook.Operator {
		return
	}
	switch st.Event {
	case redisstore.HealthDisabled:
		d.alerts.HookDisabled(hook, st, out.Status)
	case redisstore.HealthRecovered:
		d.alerts.HookEnabled(hook, "delivered")
	}
	if !out.Success && !out.Retry {
		d.alerts.DeadLettered(hook, dv, deadReason(out))
	}
}

// SendAlert sends an alert straight to an operator's endpoint, outside
// the queue (when Redis is the problem), under the current settings.
func (d *Deliverer) SendAlert(ctx context.Context, h *webhook.Hook, id string, body []byte) Result {
	cfg := d.cfg.Load()
	req := Request{Hook: h, EventID: id, Chain: id, Trigger: "alert", Body: body, At: time.Now()}
	res := d.sender.Send(ctx, &cfg.Send, &req)
	d.logResult("alert", &req, &res)
	return res
}
