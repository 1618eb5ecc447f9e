// Package caddywebhooks is caddy-webhooks: GitLab-compatible webhooks for any
// web app behind Caddy. Importing it registers the Caddy modules and the
// Caddyfile directives; build Caddy with it using xcaddy or cmd/caddy.
package caddywebhooks

import (
	_ "github.com/grt-continuation/caddy-webhooks/caddyfile"
	_ "github.com/grt-continuation/caddy-webhooks/module"
)
