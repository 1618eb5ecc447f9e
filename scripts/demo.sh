#!/usr/bin/env bash
# Runs the caddy-webhooks demo on loopback: Redis, a fake forge (examples/app)
# and an issue tracker that knows nothing of webhooks (examples/tracker) behind
# Caddy with the plugin, and a GitLab-style receiver (examples/receiver).
# It makes one push and opens one issue through Caddy and waits for the
# receiver to get both hooks (the issue's from a capture rule).
#
#   ./scripts/demo.sh          keep running until Ctrl-C
#   ./scripts/demo.sh --smoke  check the first delivery and exit (CI)
#
# Env: WEBHOOKS_REDIS_URL (use this Redis instead of starting one),
# DEMO_HOOK_TOKEN, DEMO_API_TOKEN, DEMO_CADDY_PORT, DEMO_APP_PORT, DEMO_TRACKER_PORT,
# DEMO_RECEIVER_PORT, DEMO_ADMIN_PORT.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/.demo

SMOKE=0
for arg in "$@"; do
	case $arg in
	--smoke) SMOKE=1 ;;
	-h | --help)
		sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "demo: unknown argument: $arg (try --help)" >&2
		exit 2
		;;
	esac
done

# Colour only on a terminal, so CI logs stay plain.
B='' G='' N=''
if [[ -t 1 ]]; then B=$'\033[1m' G=$'\033[32m' N=$'\033[0m'; fi
say() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
die() {
	printf 'demo: error: %s\n' "$*" >&2
	exit 1
}

# port_in_use succeeds when something accepts connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for runs "$@" up to $1 times, 0.5 s apart, until it succeeds.
wait_for() {
	local tries=$1
	shift
	local i
	for ((i = 0; i < tries; i++)); do
		if "$@"; then return 0; fi
		sleep 0.5
	done
	return 1
}

PIDS=()
NAMES=()
# cleanup stops what we started: TERM first, KILL whatever is left after 5 s.
cleanup() {
	local pid tries
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		for ((tries = 0; tries < 50; tries++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 130' INT
trap 'exit 143' TERM

# started NAME PID records a background process for cleanup and liveness checks.
started() {
	NAMES+=("$1")
	PIDS+=("$2")
}

# alive NAME fails (and shows the log) if that process has exited.
alive() {
	local i
	for i in "${!NAMES[@]}"; do
		if [[ ${NAMES[$i]} == "$1" ]]; then
			kill -0 "${PIDS[$i]}" 2>/dev/null && return 0
			echo "demo: $1 exited; last lines of .demo/$1.log:" >&2
			tail -n 20 "$DEMO/$1.log" >&2 || true
			return 1
		fi
	done
	return 1
}

command -v go >/dev/null || die "go is not installed (https://go.dev/dl/)"
command -v curl >/dev/null || die "curl is not installed (apt-get install curl)"

export DEMO_HOOK_TOKEN=${DEMO_HOOK_TOKEN:-demo-secret-token}
# The API token signs in to the web page and the API; a fixed demo key
# encrypts hook secrets at rest. Never reuse either outside the demo.
export DEMO_API_TOKEN=${DEMO_API_TOKEN:-demo-api-token-0123456789}
export WEBHOOKS_ENCRYPTION_KEY=${WEBHOOKS_ENCRYPTION_KEY:-ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q=}
export DEMO_CADDY_PORT=${DEMO_CADDY_PORT:-18080}
export DEMO_APP_PORT=${DEMO_APP_PORT:-13000}
export DEMO_TRACKER_PORT=${DEMO_TRACKER_PORT:-13001}
export DEMO_RECEIVER_PORT=${DEMO_RECEIVER_PORT:-19000}
export DEMO_ADMIN_PORT=${DEMO_ADMIN_PORT:-2119}
for var in DEMO_CADDY_PORT DEMO_APP_PORT DEMO_TRACKER_PORT DEMO_RECEIVER_PORT DEMO_ADMIN_PORT; do
	if port_in_use "${!var}"; then
		die "port ${!var} ($var) is already in use on 127.0.0.1; set $var to another port"
	fi
done

say "Building into ./bin"
mkdir -p bin
go build -o bin/caddy ./cmd/caddy || die "could not build ./cmd/caddy (the plugin)"
go build -o bin/demo-app ./examples/app || die "could not build ./examples/app"
go build -o bin/demo-receiver ./examples/receiver || die "could not build ./examples/receiver"
go build -o bin/demo-tracker ./examples/tracker/cmd/tracker || die "could not build ./examples/tracker"

# A fresh .demo each run, so old queued deliveries cannot satisfy the checks.
rm -rf "$DEMO"
mkdir -p "$DEMO/redis"
# Keep Caddy's autosave and storage inside .demo rather than in $HOME.
export XDG_CONFIG_HOME=$DEMO/caddy-config XDG_DATA_HOME=$DEMO/caddy-data

if [[ -n ${WEBHOOKS_REDIS_URL:-} ]]; then
	say "Using Redis from WEBHOOKS_REDIS_URL"
else
	if ! command -v redis-server >/dev/null; then
		if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
			say "Installing redis-server with apt-get"
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
		fi
	fi
	command -v redis-server >/dev/null || die "redis-server not found. Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) or set WEBHOOKS_REDIS_URL=redis://127.0.0.1:6379/0 to use a running Redis."

	REDIS_PORT=
	for ((p = 16379; p < 16479; p++)); do
		if ! port_in_use "$p"; then
			REDIS_PORT=$p
			break
		fi
	done
	[[ -n $REDIS_PORT ]] || die "no free port for Redis in 16379-16478"

	say "Starting redis-server on 127.0.0.1:$REDIS_PORT"
	redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DEMO/redis" \
		--save "" --appendonly yes --daemonize no >"$DEMO/redis.log" 2>&1 &
	started redis $!
	if command -v redis-cli >/dev/null; then
		redis_up() { alive redis || die "redis-server exited"; [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
	else
		redis_up() { alive redis || die "redis-server exited"; port_in_use "$REDIS_PORT"; }
	fi
	wait_for 20 redis_up || die "Redis did not answer on port $REDIS_PORT within 10 s"
	export WEBHOOKS_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
fi

say "Starting the receiver on 127.0.0.1:$DEMO_RECEIVER_PORT (its output follows)"
# Process substitution keeps $! the receiver's own PID, not tee's.
bin/demo-receiver -listen "127.0.0.1:$DEMO_RECEIVER_PORT" -token "$DEMO_HOOK_TOKEN" \
	-log "$DEMO/deliveries.jsonl" > >(tee "$DEMO/receiver.log") 2>&1 &
started receiver $!

say "Starting the demo app on 127.0.0.1:$DEMO_APP_PORT"
bin/demo-app -listen "127.0.0.1:$DEMO_APP_PORT" >"$DEMO/app.log" 2>&1 &
started app $!

say "Starting the tracker (no webhook code at all) on 127.0.0.1:$DEMO_TRACKER_PORT"
bin/demo-tracker -listen "127.0.0.1:$DEMO_TRACKER_PORT" >"$DEMO/tracker.log" 2>&1 &
started tracker $!

receiver_up() { alive receiver || die "receiver exited"; port_in_use "$DEMO_RECEIVER_PORT"; }
app_up() { alive app || die "demo app exited"; port_in_use "$DEMO_APP_PORT"; }
wait_for 20 receiver_up || die "receiver did not listen on port $DEMO_RECEIVER_PORT within 10 s"
wait_for 20 app_up || die "demo app did not listen on port $DEMO_APP_PORT within 10 s"
tracker_up() { alive tracker || die "tracker exited"; port_in_use "$DEMO_TRACKER_PORT"; }
wait_for 20 tracker_up || die "tracker did not listen on port $DEMO_TRACKER_PORT within 10 s"

say "Starting Caddy on 127.0.0.1:$DEMO_CADDY_PORT (log: .demo/caddy.log)"
bin/caddy run --config examples/demo.Caddyfile --adapter caddyfile >"$DEMO/caddy.log" 2>&1 &
started caddy $!

CADDY=http://127.0.0.1:$DEMO_CADDY_PORT
# A dead process ends the wait at once instead of after the timeout.
caddy_up() { alive caddy || die "Caddy exited"; curl -fs -o /dev/null --max-time 2 "$CADDY/"; }
wait_for 60 caddy_up || die "Caddy did not answer on $CADDY within 30 s (see .demo/caddy.log)"

PUSH_URL="$CADDY/push?project=acme/platform/api&branch=main"
MEMBER_URL="$CADDY/groups/acme/members?user=alice"

say "Pushing to acme/platform/api through Caddy"
echo "\$ curl -sS -X POST '$PUSH_URL'"
echo "Response headers seen by the client (no X-Webhook-* expected):"
curl -sS -X POST --max-time 10 -D "$DEMO/push.headers" -o "$DEMO/push.body" "$PUSH_URL"
tr -d '\r' <"$DEMO/push.headers" | sed 's/^/  /'
if grep -qi '^X-Webhook-' "$DEMO/push.headers"; then
	echo "demo: WARNING: X-Webhook-* headers reached the client; the plugin should strip them" >&2
	[[ $SMOKE -eq 0 ]] || die "smoke: X-Webhook-* headers were not stripped"
fi

say "Waiting up to 20 s for the receiver to get the hook"
delivered() { alive receiver || die "receiver exited"; [[ -s $DEMO/deliveries.jsonl ]]; }
if ! wait_for 40 delivered; then
	echo "demo: last lines of .demo/caddy.log:" >&2
	tail -n 20 "$DEMO/caddy.log" >&2 || true
	die "no delivery reached the receiver within 20 s"
fi
# Let the receiver finish printing its block before we talk again.
sleep 0.3
first=$(head -n 1 "$DEMO/deliveries.jsonl")
problem=
if ! grep -q '"event":"Push Hook"' <<<"$first"; then
	problem="the first delivery is not a \"Push Hook\": ${first:0:300}"
elif ! grep -q '"token_ok":true' <<<"$first"; then
	problem="the first delivery did not carry the right X-Gitlab-Token (the receiver answered 401)"
fi
if [[ -n $problem ]]; then
	[[ $SMOKE -eq 0 ]] || die "smoke: $problem"
	echo "demo: WARNING: $problem" >&2
else
	printf '\n%s✔ Delivered:%s the receiver got a Push Hook with a valid token (see .demo/deliveries.jsonl)\n' "$G" "$N"
fi

ISSUES_URL="$CADDY/api/projects/acme/web/issues"
say "Opening an issue in the tracker through Caddy (a capture rule makes it an Issue Hook)"
echo "\$ curl -sS -X POST '$ISSUES_URL' -d '{\"title\":\"Login fails\",\"author\":\"alice\"}'"
issue=$(curl -sS --max-time 10 -X POST -H 'Content-Type: application/json' \
	-d '{"title":"Login fails","author":"alice"}' "$ISSUES_URL") || die "the tracker did not answer"
echo "  the tracker's own answer: ${issue:0:200}"
issue_delivered() { alive receiver || die "receiver exited"; grep -q '"event":"Issue Hook"' "$DEMO/deliveries.jsonl"; }
if wait_for 40 issue_delivered; then
	sleep 0.3
	printf '\n%s✔ Delivered:%s the receiver got an Issue Hook made by a capture rule from the tracker'"'"'s JSON\n' "$G" "$N"
else
	[[ $SMOKE -eq 0 ]] || die "smoke: no Issue Hook from the capture rule within 20 s (see .demo/caddy.log)"
	echo "demo: WARNING: no Issue Hook from the capture rule within 20 s" >&2
fi

say "Listing the hooks of the group acme through GitLab's API"
echo "\$ curl -sS -H 'Authorization: Bearer $DEMO_API_TOKEN' '$CADDY/api/v4/groups/acme/hooks'"
hooks=$(curl -sS --max-time 10 -H "Authorization: Bearer $DEMO_API_TOKEN" "$CADDY/api/v4/groups/acme/hooks") || die "the hooks API did not answer"
echo "  ${hooks:0:300}"
if ! grep -q "127.0.0.1:$DEMO_RECEIVER_PORT/hook" <<<"$hooks"; then
	[[ $SMOKE -eq 0 ]] || die "smoke: the hooks API did not list the demo hook: ${hooks:0:300}"
fi
page=$(curl -fsS --max-time 10 "$CADDY/-/webhooks/") || die "the webhooks page did not answer"
grep -q 'Webhooks' <<<"$page" || die "the webhooks page is not the Settings > Webhooks page"
if [[ $SMOKE -eq 1 ]]; then
	echo "smoke: OK"
	exit 0
fi

say "Demo running. Try more events from another terminal:"
cat <<EOF
  curl -sS -X POST '$PUSH_URL'
  curl -sS -X POST '$CADDY/push?project=acme/platform/api&branch=feature/login'
  curl -sS -X POST '$MEMBER_URL'
  curl -sS $CADDY/            # not an event: nothing is delivered
  curl -sS -X POST '$ISSUES_URL' -H 'Content-Type: application/json' -d '{"title":"Another","author":"bob"}'
  curl -sS -X POST '$CADDY/api/projects/acme/web/merge_requests' -H 'Content-Type: application/json' \
    -d '{"title":"Fix login","source_branch":"fix-login","author":"bob"}'

Settings > Webhooks: open $CADDY/-/webhooks/ in a browser, sign in with the
token "$DEMO_API_TOKEN" and the project acme/platform/api (or the group acme).

Deliveries are printed here and appended to .demo/deliveries.jsonl.
Logs: .demo/caddy.log, .demo/app.log, .demo/tracker.log, .demo/redis.log. Press Ctrl-C to stop.
EOF

# Stay up until Ctrl-C, or leave if one of the processes dies.
while true; do
	for name in "${NAMES[@]}"; do
		alive "$name" || die "$name stopped unexpectedly"
	done
	sleep 1
done
