package gitlab

import (
	"net/http"
	"strings"
)

// Delivery header names.
const (
	HeaderEvent          = "X-Gitlab-Event"
	HeaderToken          = "X-Gitlab-Token"
	HeaderInstance       = "X-Gitlab-Instance"
	HeaderWebhookUUID    = "X-Gitlab-Webhook-UUID"
	HeaderEventUUID      = "X-Gitlab-Event-UUID"
	HeaderIdempotencyKey = "Idempotency-Key"
)

// DeliveryHeaders are the values GitLab sends with every webhook request.
type DeliveryHeaders struct {
	Trigger   Trigger
	UserAgent string
	// Instance is X-Gitlab-Instance, the instance's base URL; omitted if empty.
	Instance string
	// Token is the hook's secret, X-Gitlab-Token; omitted if empty.
	Token string
	// WebhookUUID is new for every attempt.
	WebhookUUID string
	// EventUUID is the recursion-detection chain ID.
	EventUUID string
	// IdempotencyKey is stable per (event, hook).
	IdempotencyKey string
	// Custom are the hook's custom headers; they never override the above.
	Custom map[string]string
}

// Apply writes the headers into h: custom headers first, then GitLab's own,
// so a custom header can never replace a delivery header. GitLab's names are
// written in GitLab's exact case ("X-Gitlab-Webhook-UUID", not Go's
// canonical "X-Gitlab-Webhook-Uuid") for receivers that compare raw names.
func (d *DeliveryHeaders) Apply(h http.Header) {
	for k, v := range d.Custom {
		h.Set(k, v)
	}
	set(h, "Content-Type", "application/json")
	set(h, "User-Agent", d.UserAgent)
	set(h, HeaderEvent, d.Trigger.EventHeader())
	set(h, HeaderInstance, d.Instance)
	set(h, HeaderToken, d.Token)
	set(h, HeaderWebhookUUID, d.WebhookUUID)
	set(h, HeaderEventUUID, d.EventUUID)
	set(h, HeaderIdempotencyKey, d.IdempotencyKey)
}

// set replaces any spelling of k with exactly k; an empty v removes it.
func set(h http.Header, k, v string) {
	h.Del(k)
	for name := range h {
		if strings.EqualFold(name, k) {
			delete(h, name)
		}
	}
	if v != "" {
		h[k] = []string{v}
	}
}
