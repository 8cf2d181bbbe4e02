#!/bin/sh
# Installs what is missing, builds onair twice (release, and ASan+UBSan) and
# runs the whole test suite against each build.  Exit status 0 = all passed.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

sh tests/setup.sh --test
# Node.js 20 from the setup when the system's is older (tests/setup.sh).
NODE_PREFIX=${ONAIR_NODE_PREFIX:-/opt/onair/node}
[ -x "$NODE_PREFIX/bin/node" ] && PATH="$NODE_PREFIX/bin:$PATH" && export PATH

JOBS=$(nproc 2>/dev/null || echo 2)
build() { # dir, extra cmake args...
    dir=$1; shift
    cmake -S "$ROOT" -B "$dir" -DONAIR_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS"
}

echo "== release build"
build build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== sanitizer build (ASan + UBSan)"
build build/asan -DCMAKE_BUILD_TYPE=Debug -DONAIR_SANITIZE=ON

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== tests (release)"
ctest --test-dir build/release --output-on-failure
echo "== tests (ASan + UBSan)"
ctest --test-dir build/asan --output-on-failure
echo "== all tests passed"
