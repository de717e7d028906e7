#!/bin/sh
# Install the Debian packages Tinyvex needs to build and test, when any is
# missing.  Uses apt-get (as root, or through sudo).
set -eu
pkgs="build-essential meson ninja-build pkg-config clang libclang-rt-dev
libsqlite3-dev libevent-dev libmsgpack-dev libcjson-dev libwslay-dev libzip-dev
libssl-dev python3 python3-websockets sqlite3 mandoc valgrind chromium nodejs
node-typescript"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q || true
# shellcheck disable=SC2086
$sudo apt-get install -y -q $missing
