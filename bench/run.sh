#!/usr/bin/env bash
# bench/run.sh: the Gatehouse benchmark harness (issue 7), run by `make bench`.
#
# Measures, on this machine and in this one run, Gatehouse against the
# ceilings it is compared to (a bare libmicrohttpd server; cores / the time
# of one argon2id hash; oidc-provider from npm, installed into bench/peer/
# from its lock file and started by bench/peer/provider.mjs, for the OIDC
# scenarios), and prints one table. Nothing is compared across
# machines. Raw results (wrk outputs, timings, server logs, the table) go to
# bench/results/<UTC timestamp>/.
#
# Everything listens on 127.0.0.1 only and uses a fresh temporary data
# directory; every process started here is stopped on exit.
#
# Environment (defaults in brackets):
#   GATEHOUSE_BIN      the binary to measure [build-bench/gatehouse]
#   BENCH_DURATION     wrk duration per scenario [10s]
#   BENCH_WARMUP       unrecorded wrk warm-up per scenario [2s]
#   BENCH_THREADS      wrk threads [2]
#   BENCH_CONNECTIONS  wrk connections [32]
#   BENCH_USERS        users seeded into the first organisation [10000]
#   BENCH_ORGS         organisations in the large variant [1000]
#   BENCH_COLD_RUNS    cold starts; the median is reported [7]
#   BENCH_REV          set by `make bench BENCH_REV=...`: recorded only
#   GATEHOUSE_ARGON2_T_COST / _M_KIB / _PARALLELISM  passed to the server
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
GH_BIN=${GATEHOUSE_BIN:-$ROOT/build-bench/gatehouse}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
USERS=${BENCH_USERS:-10000}
ORGS=${BENCH_ORGS:-1000}
COLD_RUNS=${BENCH_COLD_RUNS:-7}
PY=/usr/bin/python3
NCPU=$(nproc)
ORG=acme
PASSWORD='Bench-Secret-9!xq'
# Read by wrk/signin.lua.
export BENCH_USERS=$USERS BENCH_PASSWORD=$PASSWORD

export GATEHOUSE_ARGON2_T_COST=${GATEHOUSE_ARGON2_T_COST:-2}
export GATEHOUSE_ARGON2_M_KIB=${GATEHOUSE_ARGON2_M_KIB:-19456}
export GATEHOUSE_ARGON2_PARALLELISM=${GATEHOUSE_ARGON2_PARALLELISM:-1}
# The benchmark must not read a configuration meant for something else.
unset GATEHOUSE_CONFIG GATEHOUSE_LISTEN GATEHOUSE_DATA_DIR
# The load comes from one address: the brute-force guard would answer most
# of it with 429. It is measured as what it is, a limit, not as throughput.
export GATEHOUSE_SIGNIN_RATE_IP_PER_MIN=0 GATEHOUSE_SIGNIN_RATE_ORG_PER_MIN=0
export GATEHOUSE_LOCKOUT_FAILURES=0

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in wrk gcc pkg-config curl node npm "$PY"; do
	command -v "$tool" >/dev/null || die "$tool is missing (make bench installs it)"
done
[ -x "$GH_BIN" ] || die "$GH_BIN is not built (make bench builds it)"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$HERE/results/$STAMP
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
M=$OUT/measurements.txt	# key=value, read by table.py
: >"$M"

# ---- process bookkeeping: everything started here is stopped on exit --------

PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

record() { printf '%s=%s\n' "$1" "$2" >>"$M"; }

# count_sessions: sessions in the bench org (its database is encrypted, so
# through the binary and its keys).
count_sessions() {
	"$GH_BIN" db sql --data-dir "$DATA" --org "$ORG" \
		"SELECT count(*) AS n FROM sessions" |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["n"])'
}

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_200 PORT PATH: polls until the answer is 200 (10 s at most).
wait_200() {
	local _
	for _ in $(seq 1 1000); do
		if curl -sf -o /dev/null "http://127.0.0.1:$1$2"; then return 0; fi
		sleep 0.01
	done
	return 1
}

# start_server NAME DATA_DIR PORT: Gatehouse in the background; sets SRV_PID.
start_server() {
	"$GH_BIN" serve --data-dir "$2" --listen "127.0.0.1:$3" \
		>"$OUT/server-$1.log" 2>&1 &
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	wait_200 "$3" /readyz || die "gatehouse ($1) did not become ready; see $OUT/server-$1.log"
}

# stop PID: SIGTERM and wait.
stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# status_kb PID FIELD: VmRSS or VmHWM in kB.
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# sample_rss PID FILE: VmRSS every 0.2 s into FILE until killed.
sample_rss() {
	while kill -0 "$1" 2>/dev/null; do
		status_kb "$1" VmRSS >>"$2" 2>/dev/null || true
		sleep 0.2
	done
}

# run_wrk KEY PID URL [LUA] [wrk args...]: a warm-up, then the measured run.
# Records KEY_{rps,p50_us,p99_us,errors,requests,rss_kb} (rss: the peak
# VmRSS sampled during the measured run).
run_wrk() {
	local key=$1 pid=$2 url=$3 extra=$4
	shift 4
	local lua=$WORK/$key.lua samples=$WORK/$key.rss sampler line
	cat "$HERE/wrk/report.lua" >"$lua"
	if [ -n "$extra" ]; then cat "$HERE/wrk/$extra" >>"$lua"; fi
	kill -0 "$pid" 2>/dev/null || die "$key: the server (pid $pid) has exited; see $OUT/server-*.log"
	wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" --timeout 10s -s "$lua" "$@" "$url" \
		>"$OUT/$key.warmup.txt" 2>&1 || die "$key: wrk warm-up failed; see $OUT/$key.warmup.txt"
	: >"$samples"
	sample_rss "$pid" "$samples" &
	sampler=$!
	PIDS+=("$sampler")
	log "wrk $key: $url (${DURATION})"
	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency --timeout 10s -s "$lua" "$@" "$url" \
		>"$OUT/$key.wrk.txt" 2>&1 || true
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	line=$(grep '^BENCH ' "$OUT/$key.wrk.txt") || die "wrk $key failed; see $OUT/$key.wrk.txt"
	# shellcheck disable=SC2034 # seconds is set by the eval, unused
	local requests rps p50_us p99_us status_errors socket_errors seconds
	eval "${line#BENCH }"
	record "${key}_requests" "$requests"
	record "${key}_rps" "$rps"
	record "${key}_p50_us" "$p50_us"
	record "${key}_p99_us" "$p99_us"
	record "${key}_errors" "$((status_errors + socket_errors))"
	record "${key}_rss_kb" "$(sort -n "$samples" | tail -1)"
	cp "$samples" "$OUT/$key.rss-samples.txt"
}

# sign_in PORT: prints a fresh gh_session cookie value for the admin.
sign_in() {
	curl -sf -D - -o /dev/null -H 'Content-Type: application/json' \
		-d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" \
		"http://127.0.0.1:$1/o/$ORG/api/v1/session" |
		tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: gh_session=\([^;]*\).*/\1/p' | head -1
}

# jwt_alg TOKEN: the alg of a JWT's header.
jwt_alg() {
	"$PY" -c 'import base64, json, sys
h = sys.argv[1].split(".")[0]
print(json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["alg"])' "$1"
}

# peer_install: oidc-provider (the OIDC peer) from bench/peer's lock file,
# unless node_modules already holds the locked version.
PEER_DIR=$HERE/peer
peer_install() {
	local want have
	want=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["packages"]["node_modules/oidc-provider"]["version"])' \
		"$PEER_DIR/package-lock.json")
	have=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
		"$PEER_DIR/node_modules/oidc-provider/package.json" 2>/dev/null || true)
	if [ "$want" != "$have" ]; then
		log "installing the OIDC peer: oidc-provider $want (npm ci --prefix bench/peer)"
		npm ci --prefix "$PEER_DIR" --no-audit --no-fund --loglevel=error >&2 ||
			die "npm ci --prefix bench/peer failed"
	fi
}

# touch_orgs PORT SLUG...: one unauthenticated /me per organisation (401),
# which opens its tenant database, over one keep-alive connection.
touch_orgs() {
	local port=$1
	shift
	"$PY" - "$port" "$@" <<'EOF'
import http.client, sys
port, slugs = int(sys.argv[1]), sys.argv[2:]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
bad = 0
for s in slugs:
    c.request("GET", f"/o/{s}/api/v1/me")
    r = c.getresponse()
    r.read()
    if r.status != 401:
        bad += 1
if bad:
    sys.exit(f"touch_orgs: {bad} organisations did not answer 401")
EOF
}

# ---- build the helpers --------------------------------------------------------

log "results: $OUT"
CFLAGS=(-O2 -Wall -Wextra -Werror)
# shellcheck disable=SC2046 # pkg-config output is a word list
gcc "${CFLAGS[@]}" -o "$WORK/bare_mhd" "$HERE/bare_mhd.c" $(pkg-config --cflags --libs libmicrohttpd)
# shellcheck disable=SC2046
gcc "${CFLAGS[@]}" -pthread -o "$WORK/argon2_time" "$HERE/argon2_time.c" $(pkg-config --cflags --libs libargon2)
gcc "${CFLAGS[@]}" -o "$WORK/coldstart" "$HERE/coldstart.c"
# The kms as the server links it: its static libraries from the bench build.
GH_BUILD=$(dirname "$GH_BIN")
# shellcheck disable=SC2046
gcc "${CFLAGS[@]}" -D_GNU_SOURCE -I"$ROOT/src" -o "$WORK/kms_speed" "$HERE/kms_speed.c" \
	"$GH_BUILD/src/kms/libgh_kms.a" "$GH_BUILD/src/core/libgh_core.a" \
	$(pkg-config --cflags --libs libcrypto sqlite3 jansson) -ldl -lpthread

{
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(uname -srm), $NCPU cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "binary: $GH_BIN ($("$GH_BIN" --version 2>&1 | head -1))"
	if [ -n "${BENCH_REV:-}" ]; then
		echo "git: $(git -C "$ROOT" rev-parse --short "$BENCH_REV" 2>/dev/null || echo "$BENCH_REV") (BENCH_REV=$BENCH_REV, a clean export)"
	else
		echo "git: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown) (working tree)"
	fi
	echo "wrk: -t$THREADS -c$CONNS -d$DURATION (warm-up $WARMUP), $(wrk --version 2>&1 | head -1)"
	echo "libmicrohttpd: $(pkg-config --modversion libmicrohttpd), libargon2: $(pkg-config --modversion libargon2)"
} >"$OUT/environment.txt"
record ncpu "$NCPU"
# Other work on the machine skews every figure: the table shows this.
record loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
record duration "$DURATION"
record wrk_args "-t$THREADS -c$CONNS -d$DURATION"

# ---- seed: 1 organisation with USERS users --------------------------------------

DATA=$WORK/data
log "seeding: gatehouse init, then $USERS users (one db sql insert, bypassing the API)"
GATEHOUSE_ADMIN_PASSWORD=$PASSWORD "$GH_BIN" init --data-dir "$DATA" --org "$ORG" \
	--admin admin --org-name "Acme Bench" >"$OUT/init.log" 2>&1 ||
	die "gatehouse init failed; see $OUT/init.log"
# The last line seed_users prints is the template's hash.
ADMIN_HASH=$("$PY" "$HERE/seed_users.py" "$GH_BIN" "$DATA" "$ORG" "$USERS" admin |
	tee -a "$OUT/init.log" | tail -1)
[ -n "$ADMIN_HASH" ] || die "seeding users failed; see $OUT/init.log"
# $argon2id$v=19$m=19456,t=2,p=1$salt$tag: the cost every seeded user's sign-in pays.
# shellcheck disable=SC2016 # the $ are literal
A_M=$(sed -n 's/.*\$m=\([0-9]*\),t=.*/\1/p' <<<"$ADMIN_HASH")
A_T=$(sed -n 's/.*,t=\([0-9]*\),p=.*/\1/p' <<<"$ADMIN_HASH")
A_P=$(sed -n 's/.*,p=\([0-9]*\)\$.*/\1/p' <<<"$ADMIN_HASH")
if [ -z "$A_M" ] || [ -z "$A_T" ] || [ -z "$A_P" ]; then
	die "cannot read the argon2id parameters"
fi
record argon2_params "m=$A_M,t=$A_T,p=$A_P"

# time_argon2 LABEL: 20 timed argon2id runs at the seeded hash's parameters.
time_argon2() {
	local med min mean _rate
	read -r med min mean _rate < <("$WORK/argon2_time" "$A_T" "$A_M" "$A_P" 20)
	echo "$1: argon2id m=$A_M t=$A_T p=$A_P: median $med ms, min $min ms, mean $mean ms (20 runs, 1 thread)" \
		>>"$OUT/argon2.txt"
	echo "$med"
}

# ---- the ceiling (bare libmicrohttpd) and Gatehouse, 1 organisation ----------------
#
# Both servers stay up (the idle one costs nothing) so that the ceiling is
# measured twice, before and after Gatehouse's runs; the table uses the
# better of the two, which guards the ratios against a busy moment on a
# shared machine. Likewise argon2id is timed just before and just after the
# sign-in run, and the faster median gives the hash-bound limit.

PORT_BARE=$(free_port)
"$WORK/bare_mhd" "$PORT_BARE" >"$OUT/bare_mhd.log" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")
wait_200 "$PORT_BARE" /healthz || die "bare_mhd did not start"
run_wrk ceiling1 "$BARE_PID" "http://127.0.0.1:$PORT_BARE/healthz" ""

PORT=$(free_port)
start_server org1 "$DATA" "$PORT"
GH_PID=$SRV_PID
touch_orgs "$PORT" "$ORG"
sleep 1
record idle1_rss_kb "$(status_kb "$GH_PID" VmRSS)"

run_wrk healthz "$GH_PID" "http://127.0.0.1:$PORT/healthz" ""

COOKIE=$(sign_in "$PORT")
[ -n "$COOKIE" ] || die "sign-in failed; see $OUT/server-org1.log"
curl -sf -o /dev/null -H "Cookie: gh_session=$COOKIE" "http://127.0.0.1:$PORT/o/$ORG/api/v1/me" ||
	die "GET /me with the session cookie failed"
run_wrk me1 "$GH_PID" "http://127.0.0.1:$PORT/o/$ORG/api/v1/me" "" -H "Cookie: gh_session=$COOKIE"

run_wrk ceiling2 "$BARE_PID" "http://127.0.0.1:$PORT_BARE/healthz" ""
record bare_rss_kb "$(status_kb "$BARE_PID" VmRSS)"
stop "$BARE_PID"

log "argon2id at m=$A_M t=$A_T p=$A_P: timing 20 runs before and 20 after the sign-in run"
: >"$OUT/argon2.txt"
A_BEFORE=$(time_argon2 before)
SESSIONS_BEFORE=$(count_sessions)
run_wrk signin "$GH_PID" "http://127.0.0.1:$PORT/o/$ORG/api/v1/session" signin.lua
SESSIONS_AFTER=$(count_sessions)
A_AFTER=$(time_argon2 after)
# What the cores really hash at once: one hash per core, together (they
# share caches and memory bandwidth). Shown beside the hash bound.
read -r A_PAR_MED _ _ A_PAR_RATE < <("$WORK/argon2_time" "$A_T" "$A_M" "$A_P" 10 "$NCPU")
echo "$NCPU at once: argon2id m=$A_M t=$A_T p=$A_P: median $A_PAR_MED ms, $A_PAR_RATE hashes/s together (10 runs per thread)" \
	>>"$OUT/argon2.txt"
record argon2_parallel_ms "$A_PAR_MED"
record argon2_parallel_rate "$A_PAR_RATE"
record argon2_ms_before "$A_BEFORE"
record argon2_ms_after "$A_AFTER"
record signin_sessions_created "$((SESSIONS_AFTER - SESSIONS_BEFORE))"
record load_hwm_kb "$(status_kb "$GH_PID" VmHWM)"

# ---- OpenID Connect: Gatehouse, then the oidc-provider (npm) peer --------------------
#
# Same server (1 organisation): discovery, then a confidential client's
# client_credentials issuance (JWT access tokens, ES256) and introspection
# of one such token, client_secret_basic on every request.

run_wrk discovery "$GH_PID" "http://127.0.0.1:$PORT/o/$ORG/.well-known/openid-configuration" ""
read -r CID SECRET TOKEN < <("$PY" "$HERE/oidc_client.py" "$PORT" "$ORG" "$PASSWORD") ||
	die "OIDC client setup failed; see $OUT/server-org1.log"
[ -n "$TOKEN" ] || die "OIDC client setup printed no access token"
record oidc_alg "$(jwt_alg "$TOKEN")"
BASIC=$(printf '%s:%s' "$CID" "$SECRET" | base64 -w0)
export BENCH_FORM="grant_type=client_credentials"
run_wrk cc "$GH_PID" "http://127.0.0.1:$PORT/o/$ORG/oidc/token" oidc_form.lua \
	-H "Authorization: Basic $BASIC"
export BENCH_FORM="token=$TOKEN"
run_wrk introspect "$GH_PID" "http://127.0.0.1:$PORT/o/$ORG/oidc/introspect" oidc_form.lua \
	-H "Authorization: Basic $BASIC"
curl -sf "http://127.0.0.1:$PORT/metrics" >"$OUT/metrics-org1.txt" || true
stop "$GH_PID"

peer_install
PEER_PORT=$(free_port)
PEER_ID=bench-peer
PEER_SECRET=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')
node "$PEER_DIR/provider.mjs" "$PEER_PORT" "$PEER_ID" "$PEER_SECRET" >"$OUT/peer.log" 2>&1 &
PEER_PID=$!
PIDS+=("$PEER_PID")
wait_200 "$PEER_PORT" /.well-known/openid-configuration ||
	die "oidc-provider did not start; see $OUT/peer.log"
record peer_version "$(node -p 'require(process.argv[1]).version' "$PEER_DIR/node_modules/oidc-provider/package.json")"
BASIC=$(printf '%s:%s' "$PEER_ID" "$PEER_SECRET" | base64 -w0)
# oidc-provider refuses to introspect JWT access tokens: its introspection
# is measured on an opaque token (provider.mjs's second resource server).
PEER_TOKEN=$(curl -sf -H "Authorization: Basic $BASIC" \
	-d grant_type=client_credentials -d resource=urn:gatehouse-bench:opaque \
	"http://127.0.0.1:$PEER_PORT/token" |
	"$PY" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
	die "oidc-provider issued no token; see $OUT/peer.log"
PEER_JWT=$(curl -sf -H "Authorization: Basic $BASIC" -d grant_type=client_credentials \
	"http://127.0.0.1:$PEER_PORT/token" |
	"$PY" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
	die "oidc-provider issued no JWT; see $OUT/peer.log"
record peer_alg "$(jwt_alg "$PEER_JWT")"
export BENCH_FORM="grant_type=client_credentials"
run_wrk peer_cc "$PEER_PID" "http://127.0.0.1:$PEER_PORT/token" oidc_form.lua \
	-H "Authorization: Basic $BASIC"
export BENCH_FORM="token=$PEER_TOKEN"
run_wrk peer_introspect "$PEER_PID" "http://127.0.0.1:$PEER_PORT/token/introspection" oidc_form.lua \
	-H "Authorization: Basic $BASIC"
unset BENCH_FORM
stop "$PEER_PID"

# ---- cold start ---------------------------------------------------------------------

log "cold start: $COLD_RUNS starts to the first 200 on /readyz"
: >"$OUT/coldstart.txt"
for _ in $(seq 1 "$COLD_RUNS"); do
	PORT=$(free_port)
	"$WORK/coldstart" "$PORT" /readyz "$GH_BIN" serve --data-dir "$DATA" \
		--listen "127.0.0.1:$PORT" >>"$OUT/coldstart.txt" ||
		die "cold start failed"
done
record cold_ms "$(sort -n "$OUT/coldstart.txt" | tr '\n' ' ')"

# ---- 100 organisations: idle RSS ------------------------------------------------------

# gatehouse org create, two at a time (each is a short process).
create_orgs() { # FROM TO
	seq -f 'bench%04g' "$1" "$2" |
		xargs -P 2 -I{} "$GH_BIN" org create {} --data-dir "$DATA" --name "Bench {}" \
			>>"$OUT/orgs.log" 2>&1 || die "org create failed; see $OUT/orgs.log"
}
slugs() { # TO
	echo "$ORG"
	seq -f 'bench%04g' 2 "$1"
}

log "seeding: organisations 2..100 (gatehouse org create)"
create_orgs 2 100
PORT=$(free_port)
start_server org100 "$DATA" "$PORT"
# shellcheck disable=SC2046
touch_orgs "$PORT" $(slugs 100)
sleep 1
record idle100_rss_kb "$(status_kb "$SRV_PID" VmRSS)"
stop "$SRV_PID"

# ---- 1,000 organisations: /me latency ----------------------------------------------------

log "seeding: organisations 101..$ORGS (gatehouse org create)"
create_orgs 101 "$ORGS"
record orgs "$("$GH_BIN" org list --data-dir "$DATA" --json 2>/dev/null |
	"$PY" -c 'import json, sys; print(len(json.load(sys.stdin)))')"
PORT=$(free_port)
start_server org1000 "$DATA" "$PORT"
# shellcheck disable=SC2046
touch_orgs "$PORT" $(slugs "$ORGS")
record idle1000_rss_kb "$(status_kb "$SRV_PID" VmRSS)"
COOKIE=$(sign_in "$PORT")
[ -n "$COOKIE" ] || die "sign-in failed (1,000 organisations)"
run_wrk me1000 "$SRV_PID" "http://127.0.0.1:$PORT/o/$ORG/api/v1/me" "" -H "Cookie: gh_session=$COOKIE"
stop "$SRV_PID"

# ---- field encryption vs openssl speed ---------------------------------------------------

for size in 64 4096; do
	log "field encryption, $size B values (kms) and openssl speed"
	kdir=$(mktemp -d "$WORK/kms.XXXXXX")
	read -r enc dec < <("$WORK/kms_speed" "$kdir" "$size" 3)
	record "kms${size}_enc_ops" "$enc"
	record "kms${size}_dec_ops" "$dec"
	# openssl speed prints bytes/s in thousands on its last line.
	ossl=$(openssl speed -seconds 3 -bytes "$size" -evp aes-256-gcm 2>/dev/null |
		awk 'tolower($1) ~ /^aes-256-gcm/ {v=$2} END {sub(/k$/, "", v); print v}')
	record "openssl${size}_kbps" "$ossl"
done

record loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the table -----------------------------------------------------------------------------

"$PY" "$HERE/table.py" "$M" | tee "$OUT/table.md"
log "raw results: $OUT"
