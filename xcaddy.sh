#!/usr/bin/env sh
# Builds Caddy with this plugin from this checkout using xcaddy, for adding
# other plugins:
#   ./xcaddy.sh [--with other/plugin ...] [--output file]
# Only Go is needed: the pinned xcaddy runs through `go run`. Caddy's version
# is the one go.mod requires (CADDY_VERSION overrides it). Without xcaddy,
# `go build -o caddy ./cmd/caddy` builds the same Caddy.
set -eu
cd "$(dirname "$0")"
xcaddy=github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5
mod=$(go list -m)
: "${CADDY_VERSION:=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)}"
export CADDY_VERSION
# xcaddy runs `go get` on every --with module; without a version that asks the
# module proxy for the latest release, which a checkout need not have (and
# which is not this checkout). For an exact version, go falls back to the
# replacement below when the proxy has no such version. The replacement has
# no version so that it holds for any version the build selects, e.g. when
# another plugin requires a published one.
exec go run "$xcaddy" build "$CADDY_VERSION" --output ./caddy \
	--with "$mod@v0.0.0" --replace "$mod=." "$@"
