#!/usr/bin/env bash
# Runs the caddy-webhooks benchmark suite on this machine, on loopback only:
# builds Caddy with the plugin, starts a private redis-server, the upstream
# app and the receivers, and compares each scenario with a baseline measured
# in the same run (A/B rounds, medians). Results are printed as a Markdown
# table; see BENCHMARKS.md.
#
#   ./scripts/bench.sh                 the full suite (~25 min on 2 cores; -mem-dur 2m saves 8)
#   ./scripts/bench.sh --smoke         every scenario at a tiny size (CI)
#   ./scripts/bench.sh -only 1,2 -rounds 5 -pprof /tmp/prof   (any flag of bench/cmd/webhooks-bench)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
	else
		echo "bench: redis-server is missing (Debian/Ubuntu: sudo apt-get install redis-server)" >&2
		exit 1
	fi
fi

args=()
for a in "$@"; do
	case $a in
	--smoke) args+=(-smoke) ;;
	-h | --help)
		sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) args+=("$a") ;;
	esac
done

mkdir -p bin
go build -o bin/caddy ./cmd/caddy
go build -o bin/webhooks-bench ./bench/cmd/webhooks-bench
exec bin/webhooks-bench -caddy bin/caddy ${args[@]+"${args[@]}"}
