#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png: the browser tests of the web page
# (integration/ui_test.go and integration/ui_integrations_test.go) drive
# headless Chromium against a real Caddy, Redis, app and receivers, and with
# WEBHOOKS_UI_SCREENSHOTS set they save what they see. Fails when Chromium
# is missing (the tests would skip) or when a screenshot was not rewritten.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v chromium >/dev/null || command -v chromium-browser >/dev/null || {
	echo "screenshots: chromium is not installed (Debian/Ubuntu: sudo apt-get install chromium)" >&2
	exit 1
}

shots=(hooks-failing add-form signing-token recent-events event-details phone integrations integration-slack)
stamp=$(mktemp -t screenshots.XXXXXX)
trap 'rm -f "$stamp"' EXIT
sleep 1 # file times have a one-second grain on some file systems

WEBHOOKS_UI_SCREENSHOTS=1 go test -count=1 -run '^(TestWebhooksPageInBrowser|TestChatIntegrationsPageInBrowser)$' ./integration/

stale=()
for s in "${shots[@]}"; do
	[[ docs/screenshots/$s.png -nt $stamp ]] || stale+=("$s.png")
done
if ((${#stale[@]})); then
	echo "screenshots: not rewritten: ${stale[*]}" >&2
	exit 1
fi
echo "screenshots: ${#shots[@]} written in docs/screenshots"
