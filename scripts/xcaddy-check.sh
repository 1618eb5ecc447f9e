#!/usr/bin/env bash
# Builds Caddy through ./xcaddy.sh with one other plugin, as README.md shows,
# and checks that the result lists this plugin's modules and the other one's,
# and that it holds this checkout rather than a published version.
# scripts/test.sh runs it in the background, beside the Go tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# The module proxy may serve exact versions only (no version list), so the
# other plugin is named with one.
plugin=github.com/mholt/caddy-ratelimit@v0.1.0
want=(webhooks admin.api.webhooks http.handlers.webhooks_api
	http.handlers.webhooks_capture http.handlers.webhooks_ingest http.handlers.webhooks_ui
	http.handlers.rate_limit)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$SECONDS
# About 3 minutes on 2 idle cores; the bound keeps a stuck download from
# holding CI.
timeout --kill-after=30s 20m ./xcaddy.sh --with "$plugin" --output "$out/caddy"
echo "xcaddy-check: built in $((SECONDS - start))s"

modules=$("$out/caddy" list-modules)
fail=0
for id in "${want[@]}"; do
	if ! grep -qx "$id" <<<"$modules"; then
		echo "xcaddy-check: $id is missing from list-modules" >&2
		fail=1
	fi
done
# Go's build info names the replacement ("dep <module> v0.0.0" then
# "=> <dir>"); a build that fell back to a published version has no "=>" line.
mod=$(go list -m)
if ! "$out/caddy" build-info | awk -v mod="$mod" -v dir="$PWD" '
	$1 == "dep" { ours = $2 == mod }
	ours && $1 == "=>" && $2 == dir { found = 1 }
	END { exit !found }'; then
	echo "xcaddy-check: the build does not use this checkout ($PWD):" >&2
	"$out/caddy" build-info | grep -A1 "$mod" >&2 || true
	fail=1
fi
((fail == 0)) && echo "xcaddy-check: ok (${want[*]})"
exit "$fail"
