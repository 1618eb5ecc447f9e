package api

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
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

// validateHookFeatures checks the signing token (GitLab's whsec_ form of
// a 32-byte key) and the custom webhook template's length (GitLab's 4096
// characters). As GitLab, a template is saved without being rendered: a
// broken one shows as an internal error on each attempt.
func validateHookFeatures(r *redisstore.HookRecord) string {
	if r.Signing.Current != "" {
		if _, err := gitlab.ParseSigningToken(r.Signing.Current); err != nil {
			return "Signing token must be whsec_ followed by the base64 encoding of a 32-byte key"
		}
	}
	if utf8.RuneCountInString(r.CustomWebhookTemplate) > gitlab.MaxCustomWebhookTemplate {
		return fmt.Sprintf("Custom webhook template is too long (maximum is %d characters)", gitlab.MaxCustomWebhookTemplate)
	}
	return ""
}
