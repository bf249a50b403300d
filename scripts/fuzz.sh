#!/bin/sh
# fuzz.sh [SECONDS]: builds the libFuzzer targets (fuzz/) with clang under
# AddressSanitizer and UndefinedBehaviorSanitizer in build-fuzz, then runs
# each target for SECONDS seconds (default 20) from its seed corpus in
# fuzz/corpus/<target>. Exits non-zero if any target crashes, leaks or
# trips a sanitizer; the reproducer is left in build-fuzz/fuzz/.
set -eu

secs=${1:-20}
case $secs in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
targets="form cookie path json user_fields webauthn_client_data webauthn_att_obj mfa_policy rule cidr policy_settings scim_filter jwt oidc_request"

cd "$root"
if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" \
	    -Db_sanitize=address,undefined -Db_lundef=false \
	    -Dfuzz=true -Dtests=false \
	    -Dc_args=-fsanitize=fuzzer-no-link
fi
ninja -C "$build" $(for t in $targets; do printf 'fuzz/fuzz_%s ' "$t"; done)

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

failed=""
for t in $targets; do
	work=$build/fuzz/corpus-$t
	mkdir -p "$work"
	echo "== fuzz_$t for ${secs}s"
	# New inputs go to the build directory; the seeds stay untouched.
	if ! "$build/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=8192 \
	    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$build/fuzz/crash-$t-" \
	    "$work" "$root/fuzz/corpus/$t" >"$build/fuzz/fuzz_$t.log" 2>&1
	then
		tail -n 40 "$build/fuzz/fuzz_$t.log" >&2
		failed="$failed $t"
	else
		grep -E '^stat::number_of_executed_units|^Done' \
		    "$build/fuzz/fuzz_$t.log" || true
	fi
done

if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed" >&2
	exit 1
fi
echo "fuzz: all targets ran ${secs}s without a crash"
