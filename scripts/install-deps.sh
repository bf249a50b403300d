#!/bin/sh
# install-deps.sh: installs the Debian packages Gatehouse needs.
#
#   scripts/install-deps.sh run    build and run (make, make run)
#   scripts/install-deps.sh test   everything, including the test tools
#
# Idempotent: each package is checked with dpkg-query and only the missing
# ones are installed, so a machine that has them all gets no apt-get call
# and (almost) no output. Runs as root, or through sudo when available.
set -eu

RUN_PKGS="meson ninja-build pkg-config gcc libmicrohttpd-dev libjansson-dev
libsqlite3-dev libssl-dev libargon2-dev libcrypt-dev libpwquality-dev
cracklib-runtime libcmocka-dev libp11-kit-dev liboath-dev libqrencode-dev
libfido2-dev libcbor-dev libhiredis-dev libcurl4-openssl-dev"
TEST_PKGS="python3 python3-pytest python3-requests openssl clang
libclang-rt-14-dev sqlite3 softhsm2 oathtool chromium nodejs npm redis-server
python3-jwcrypto apache2 libapache2-mod-auth-openidc"

usage() {
	echo "usage: $0 run|test" >&2
	exit 2
}

[ $# -eq 1 ] || usage
case "$1" in
run) pkgs=$RUN_PKGS ;;
test) pkgs="$RUN_PKGS $TEST_PKGS" ;;
*) usage ;;
esac

missing=""
for p in $pkgs; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	"install ok installed") ;;
	# NodeSource's nodejs provides (and conflicts with) Debian's npm:
	# installing npm then would remove it.
	*) if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then :
	   else missing="$missing $p"; fi ;;
	esac
done

if [ -z "$missing" ]; then
	exit 0
fi

echo "install-deps: missing Debian packages:$missing"

if [ "$(id -u)" -eq 0 ]; then
	as_root=""
elif command -v sudo >/dev/null 2>&1; then
	# Without a terminal (CI) sudo must not wait for a password.
	if [ -t 0 ]; then as_root="sudo"; else as_root="sudo -n"; fi
else
	echo "install-deps: not root and no sudo; as root, run:" >&2
	echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi

# shellcheck disable=SC2086 # word splitting of the package list is wanted
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086
$as_root env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends $missing
echo "install-deps: installed:$missing"
