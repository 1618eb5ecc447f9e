#!/usr/bin/env sh
# Builds Caddy with this plugin using xcaddy (go install
# github.com/caddyserver/xcaddy/cmd/xcaddy@latest), for adding other plugins:
#   ./xcaddy.sh [--with other/plugin ...]
# Without xcaddy, `go build -o caddy ./cmd/caddy` builds the same Caddy.
set -eu
cd "$(dirname "$0")"
: "${CADDY_VERSION:=v2.11.9}"
export CADDY_VERSION
exec xcaddy build "$CADDY_VERSION" --output ./caddy --with "$(go list -m)=." "$@"
