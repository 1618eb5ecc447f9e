#!/usr/bin/env bash
# Runs every test of caddy-webhooks: go vet, the unit and Redis-backed tests,
# the in-process Caddy integration tests (all with the race detector), a
# smoke run of the demo and of the benchmarks, and a Caddy built through
# ./xcaddy.sh (scripts/xcaddy-check.sh, beside the tests). Tests start their
# own redis-server on free loopback ports; this script installs redis-server
# (and curl, and chromium for the browser test) with apt-get when they are
# missing and it runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "==> installing ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	else
		echo "test: missing ${need[*]}; install them (Debian/Ubuntu: sudo apt-get install ${need[*]})" >&2
		exit 1
	fi
fi
# The browser test of the web page (integration/ui_test.go) skips without
# chromium; install it whenever we can, without failing the run if we cannot.
if ! command -v chromium >/dev/null && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
	echo "==> installing chromium (for the browser test)"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ||
		echo "test: could not install chromium; the browser test will be skipped" >&2
fi
command -v go >/dev/null || { echo "test: go is not installed" >&2; exit 1; }

# The xcaddy build (README's third way to get the plugin) takes minutes of
# compiling, so it runs beside the tests, niced so that the timing-sensitive
# tests keep their CPU, in its own session so that an early exit can stop it.
xcaddy_log=$(mktemp -t xcaddy-check.XXXXXX)
echo "==> xcaddy build and check, in the background (log: $xcaddy_log)"
setsid --wait nice -n 10 ./scripts/xcaddy-check.sh >"$xcaddy_log" 2>&1 &
xcaddy_pid=$!
trap 'kill -- -"$xcaddy_pid" 2>/dev/null || true' EXIT

echo "==> gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n $unformatted ]]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
echo "==> go vet"
go vet ./...
echo "==> go test -race"
go test -race -count=1 -timeout 30m ./...
echo "==> demo smoke run"
# The demo listens on fixed ports (those README.md shows), so a demo of
# another run on this machine would take them (or, Caddy binding with
# SO_REUSEPORT, share them). As root, it runs in a network namespace of its
# own, whose loopback only it uses.
if [[ $(id -u) -eq 0 ]] && command -v unshare >/dev/null && command -v ip >/dev/null &&
	unshare --net true 2>/dev/null; then
	unshare --net bash -c 'ip link set lo up && exec ./scripts/demo.sh --smoke'
else
	./scripts/demo.sh --smoke
fi
echo "==> benchmark smoke run"
./scripts/bench.sh --smoke # every scenario at a tiny size, so the suite never rots
echo "==> xcaddy build and check"
if ! wait "$xcaddy_pid"; then
	cat "$xcaddy_log" >&2
	echo "test: the xcaddy build or its check failed (log above)" >&2
	exit 1
fi
trap - EXIT
tail -n 2 "$xcaddy_log"
