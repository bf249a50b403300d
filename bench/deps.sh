#!/bin/sh
# bench/deps.sh: installs what `make bench` needs beyond the build
# dependencies (scripts/install-deps.sh run): wrk, curl and Debian's
# python3 (for sqlite3 seeding). Checks with dpkg-query first, so a machine
# that has them gets no apt-get call. Runs as root, or through sudo.
set -eu

missing=""
for p in wrk curl python3; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "bench/deps.sh: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
	as_root=""
elif command -v sudo >/dev/null 2>&1; then
	if [ -t 0 ]; then as_root="sudo"; else as_root="sudo -n"; fi
else
	echo "bench/deps.sh: not root and no sudo; as root, run:" >&2
	echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is wanted
$as_root env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends $missing
