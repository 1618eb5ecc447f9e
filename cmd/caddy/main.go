// Command caddy is Caddy with the standard modules and caddy-webhooks, for a
// plain `go build ./cmd/caddy` (no xcaddy needed).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/grt-continuation/caddy-webhooks"
)

func main() {
	caddycmd.Main()
}
