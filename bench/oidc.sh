#!/usr/bin/env bash
# bench/oidc.sh: OpenID Connect throughput on this machine (issue 6):
# token issuance (client_credentials, JWT access tokens signed with ES256)
# and introspection of such a token, with wrk. Prints one line per
# scenario: requests/s, p50 and p99 latency, errors.
#
# A fresh data directory and server on 127.0.0.1, with the sign-in rate
# limits off (the token endpoint shares their budget); everything started
# here is stopped on exit.
#
# Environment: GATEHOUSE_BIN [build/gatehouse], BENCH_DURATION [10s],
# BENCH_THREADS [2], BENCH_CONNECTIONS [32].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
GH_BIN=${GATEHOUSE_BIN:-$ROOT/build/gatehouse}
DURATION=${BENCH_DURATION:-10s}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
PASSWORD='Bench-Secret-9!xq'
PY=/usr/bin/python3

for tool in wrk curl "$PY"; do
	command -v "$tool" >/dev/null || { echo "oidc.sh: $tool is missing" >&2; exit 1; }
done
[ -x "$GH_BIN" ] || { echo "oidc.sh: $GH_BIN is not built" >&2; exit 1; }

WORK=$(mktemp -d /tmp/gatehouse-bench-oidc.XXXXXX)
PID=""
cleanup() {
	if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
GATEHOUSE_ADMIN_PASSWORD=$PASSWORD "$GH_BIN" init --data-dir "$WORK/data" \
	--org acme --admin admin >"$WORK/init.log" 2>&1
GATEHOUSE_SIGNIN_RATE_IP_PER_MIN=0 GATEHOUSE_SIGNIN_RATE_ORG_PER_MIN=0 \
	"$GH_BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" \
	>"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
	curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break
	sleep 0.1
done

# A confidential client with client_credentials, its secret and a token.
read -r CID SECRET TOKEN < <("$PY" "$HERE/oidc_client.py" "$PORT" acme "$PASSWORD")
BASIC=$(printf '%s:%s' "$CID" "$SECRET" | base64 -w0)

run() { # NAME PATH FORM
	local lua="$WORK/$1.lua"
	cat "$HERE/wrk/report.lua" "$HERE/wrk/oidc_form.lua" >"$lua"
	BENCH_FORM=$3 wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
		--timeout 10s -s "$lua" -H "Authorization: Basic $BASIC" \
		"http://127.0.0.1:$PORT/o/acme$2" >"$WORK/$1.txt" 2>&1 || true
	local line
	line=$(grep '^BENCH ' "$WORK/$1.txt") || { cat "$WORK/$1.txt" >&2; exit 1; }
	# shellcheck disable=SC2034 # requests and seconds are set by the eval, unused
	local requests seconds rps p50_us p99_us status_errors socket_errors
	eval "${line#BENCH }"
	printf '%-44s %10s req/s  p50 %6.2f ms  p99 %6.2f ms  errors %s\n' \
		"$1" "$rps" "$(echo "$p50_us / 1000" | bc -l)" \
		"$(echo "$p99_us / 1000" | bc -l)" "$((status_errors + socket_errors))"
}

echo "wrk -t$THREADS -c$CONNS -d$DURATION, $(nproc) cores"
run "token (client_credentials, JWT ES256)" /oidc/token "grant_type=client_credentials"
run "introspection (JWT access token)" /oidc/introspect "token=$TOKEN"
