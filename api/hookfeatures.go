package api

import (
	"fmt"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// DefaultSigningTokenOverlap is how long a replaced signing token keeps
// signing beside the new one, so receivers can switch without refusing a
// delivery.
const DefaultSigningTokenOverlap = 24 * time.Hour

// signingOverlap is SigningTokenOverlap with its default.
func (o *Options) signingOverlap() time.Duration {
	switch {
	case o.SigningTokenOverlap == 0:
		return DefaultSigningTokenOverlap
	case o.SigningTokenOverlap < 0:
		return 0
	}
	return o.SigningTokenOverlap
}

// featureMessages are GitLab's 422 words for a bad signing token (its
// whsec_ form of a 32-byte key) and an over-long custom webhook template
// (4096 characters), and ours for the extensions: a bad egress proxy URL,
// TLS material that does not parse or match. As GitLab, a template is
// saved without being rendered: a broken one shows as an internal error
// on each attempt.
func featureMessages(inv *webhook.InvalidError) []string {
	var msgs []string
	if inv.Has(webhook.BadSigningToken) {
		msgs = append(msgs, "Signing token must be whsec_ followed by the base64 encoding of a 32-byte key")
	}
	if inv.Has(webhook.BadPolicy) {
		msgs = append(msgs, "Retry schedule or auto-disable is out of bounds")
	}
	if inv.Has(webhook.BadTemplate) {
		msgs = append(msgs, fmt.Sprintf("Custom webhook template is too long (maximum is %d characters)", gitlab.MaxCustomWebhookTemplate))
	}
	if inv.Has(webhook.BadEgressProxy) {
		msgs = append(msgs, "Egress proxy must be an http, https or socks5 URL with a host, and no path or query")
	}
	if inv.Has(webhook.BadClientTLS) {
		msgs = append(msgs, "Client certificate, client key and CA must be PEM: a certificate with its matching key, and CA certificates")
	}
	return msgs
}
