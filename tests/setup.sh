#!/bin/sh
# Installs every Debian package onair needs to build, run and test (as root,
# on Debian 12), and the web pages' npm packages (clients/web, `npm ci`).
# Safe to run again: it installs only what is missing.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)

PACKAGES="build-essential cmake pkg-config git ca-certificates openssl
libuv1-dev libexpat1-dev libssl-dev liblmdb-dev lmdb-utils libmsgpack-dev
libgsasl-dev libidn-dev libconfig-dev libcmocka-dev libstrophe-dev uthash-dev
libjemalloc-dev libwebsockets-dev libwebsockets-evlib-uv libjansson-dev libcurl4-openssl-dev tzdata
nodejs"
# chromium: the browser tests (tests/browser) drive Debian's chromium.
TEST_PACKAGES="python3 python3-slixmpp python3-pytest python3-pytest-timeout python3-aiosmtpd procps chromium"

want="$PACKAGES"
[ "${1:-}" = "--test" ] && want="$PACKAGES $TEST_PACKAGES"

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm: its own package on Debian, part of some nodejs builds.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
# expat without the CVE-2023-52425 fix (Debian's 2.5.0-1+deb12u1 and older):
# take the security update.
if [ -f /usr/include/expat.h ] && ! grep -q XML_SetReparseDeferralEnabled /usr/include/expat.h; then
    missing="$missing libexpat1-dev libexpat1"
fi
if [ -n "$missing" ]; then
    echo "onair setup: installing$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# Debian starts prosody as a service on install; the tests start their own.
if command -v prosodyctl >/dev/null 2>&1 && pgrep -x prosody >/dev/null 2>&1; then
    (service prosody stop || pkill -x prosody || true) >/dev/null 2>&1
fi

# The web pages' npm packages, from clients/web/package-lock.json: the XMPP
# library whose browser bundle the build serves, and for the tests
# playwright-core.  Installed again only when the lock file changed (or the
# tests need the development packages too).
WEB="$ROOT/clients/web"
kind=prod
[ "${1:-}" = "--test" ] && kind=all
lock=$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)
stamp="$WEB/node_modules/.onair-installed"
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$have" != "all $lock" ] && [ "$have" != "$kind $lock" ]; then
    echo "onair setup: npm ci in clients/web ($kind)"
    omit=""
    [ "$kind" = prod ] && omit="--omit=dev"
    (cd "$WEB" && npm ci --no-audit --no-fund --ignore-scripts $omit >/dev/null)
    echo "$kind $lock" > "$stamp"
fi
exit 0
