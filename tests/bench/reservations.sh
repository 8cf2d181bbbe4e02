#!/bin/sh
# tests/bench/reservations.sh - the reservation benchmark over the JSON HTTP
# API of build/release/onaird (specs/http-api.md):
#
#   sh tests/bench/reservations.sh [--quick] [--keep]
#
# 1. books CHANNELS x PER_CHANNEL distinct slots (100 x 1000 = 100,000 stored
#    reservations) through POST /api/v1/reservations from 16 keep-alive
#    connections: sustained bookings per second, latency, and then a count of
#    what the store holds (no lost or double booking);
# 2. races: 8 connections post the same slot at once, 200 times: every round
#    must have exactly one 201;
# 3. availability of a day across the 100 channels with the 100,000
#    reservations stored: GET /api/v1/availability one request at a time,
#    latency p50/p99 (the target is under 5 ms).
# onaird is pinned to core 1 and the tool (onair-http-bench, libcurl multi)
# to core 0.  Results: a table on stdout, JSON lines in the work folder.
#   --quick  10 channels x 200 bookings, 50 races, 200 availability requests
#   --keep   keep the work folder
set -eu

QUICK=0
KEEP=0
for a in "$@"; do
    case $a in
    --quick) QUICK=1 ;;
    --keep) KEEP=1 ;;
    -h | --help)
        sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "reservations.sh: unknown argument $a (try --help)" >&2
        exit 2
        ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/onair-resbench.XXXXXX")
if [ "$QUICK" = 1 ]; then
    CHANNELS=10 PER_CHANNEL=200 ROUNDS=50 AVAIL=200
else
    CHANNELS=100 PER_CHANNEL=1000 ROUNDS=200 AVAIL=1000
fi
CONC=16
RACERS=8
SLOT=1800
HTTP_PORT=15380
C2S_PORT=15322
PID=""

note() { printf '%s\n' "$*" >&2; }
die() {
    note "reservations.sh: $*"
    exit 1
}
cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    if [ "$KEEP" = 1 ]; then note "work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- prerequisites ------------------------------------------------------------
if ! pkg-config --exists libcurl jansson 2>/dev/null || ! command -v taskset >/dev/null 2>&1; then
    note "installing libcurl4-openssl-dev (the load tool's HTTP client)"
    sh "$ROOT/tests/setup.sh" >/dev/null
    apt-get install -y -qq --no-install-recommends libcurl4-openssl-dev >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends libcurl4-openssl-dev >/dev/null; }
fi
ONAIRD="$ROOT/build/release/onaird"
ONAIRCTL="$ROOT/build/release/onairctl"
if [ ! -x "$ONAIRD" ] || [ ! -x "$ONAIRCTL" ]; then
    note "building onaird (build/release)"
    (cmake -S "$ROOT" -B "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
        cmake --build "$ROOT/build/release" -j 2 --target onaird onairctl >/dev/null) || die "build failed"
fi
TOOL="$WORK/onair-http-bench"
# shellcheck disable=SC2046
gcc -std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror "$ROOT/tests/bench/http/http_bench.c" \
    $(pkg-config --cflags --libs libcurl jansson) -o "$TOOL" || die "building onair-http-bench failed"

PIN_SERVER="taskset -c 1"
PIN_TOOL="taskset -c 0"
[ "$(nproc)" -ge 2 ] || { PIN_SERVER=""; PIN_TOOL=""; }

# ---- the server ------------------------------------------------------------------
mkdir -p "$WORK/data"
{
    echo "server = { domain = \"localhost\"; guest_domain = \"\"; data_dir = \"$WORK/data\"; log_level = \"warn\"; };"
    echo "tls = { certificate = \"$WORK/certs/c.crt\"; key = \"$WORK/certs/c.key\"; generate = true; };"
    echo "c2s = { listen = [\"127.0.0.1\"]; port = $C2S_PORT; direct_tls_port = 0; };"
    echo "http = { listen = [\"127.0.0.1\"]; port = $HTTP_PORT; max_connections = 1000; };"
    echo "reservation = { timezone = \"UTC\"; slot_s = $SLOT; max_advance_days = 3660; };"
    echo "schedule = { reconfirm_before_s = 3600; };"
    echo "channels = ("
    i=1
    while [ $i -le $CHANNELS ]; do
        sep=","
        [ $i -eq $CHANNELS ] && sep=""
        printf '  { id = "ch%03d"; name = "Channel %d"; capacity = 100; bandwidth_kbps = 2000; price_per_hour = 3000; }%s\n' $i $i "$sep"
        i=$((i + 1))
    done
    echo ");"
} >"$WORK/onaird.conf"
PASSWORD="bench-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$PASSWORD" >"$WORK/password"
printf '%s\n' "$PASSWORD" | "$ONAIRCTL" -c "$WORK/onaird.conf" account add booker >/dev/null ||
    die "creating the account failed"
(exec $PIN_SERVER "$ONAIRD" -c "$WORK/onaird.conf") >"$WORK/onaird.out" 2>&1 &
PID=$!
i=0
until "$ONAIRCTL" -c "$WORK/onaird.conf" health >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -le 100 ] || { tail -n 20 "$WORK/onaird.out" >&2; die "onaird did not start"; }
    kill -0 "$PID" 2>/dev/null || { tail -n 20 "$WORK/onaird.out" >&2; die "onaird exited"; }
    sleep 0.1
done

# Bookings start two days from now at midnight UTC; each channel's follow each other.
NOW=$(date +%s)
START=$(((NOW / 86400 + 2) * 86400))
tool() {
    $PIN_TOOL timeout -k 5 1200 "$TOOL" --port $HTTP_PORT --user booker --password-file "$WORK/password" "$@" |
        tee -a "$WORK/results.jsonl"
}
jget() { printf '%s' "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" | tr -d '"'; }

note "== booking $CHANNELS x $PER_CHANNEL slots over $CONC connections"
BOOK=$(tool book --channels $CHANNELS --per-channel $PER_CHANNEL --start $START --slot $SLOT --concurrency $CONC) ||
    die "bookings failed: $BOOK"
STORED=$("$ONAIRCTL" -c "$WORK/onaird.conf" reservation list | wc -l)
note "== racing $RACERS connections for one slot, $ROUNDS times"
RACE_START=$((START + PER_CHANNEL * SLOT + 86400))
RACE=$(tool book-same --channels $CHANNELS --start $RACE_START --slot $SLOT --rounds $ROUNDS --concurrency $RACERS) ||
    true
DAY=$(date -u -d "@$((START + 5 * 86400))" +%Y-%m-%d)
note "== availability of $DAY, one request at a time"
AV=$(tool availability --date "$DAY" --count $AVAIL --concurrency 1) || die "availability failed: $AV"

printf '\n%-48s %14s %s\n' "figure" "onaird" "target"
printf '%-48s %14s %s\n' "bookings/s sustained ($CONC connections)" "$(jget "$BOOK" per_s | cut -d. -f1)" ">= 1000"
printf '%-48s %14s\n' "booking latency p50 / p99 ms" "$(jget "$BOOK" p50_ms | cut -c1-5) / $(jget "$BOOK" p99_ms | cut -c1-5)"
printf '%-48s %14s %s\n' "bookings answered 201 / failed" "$(jget "$BOOK" ok) / $(jget "$BOOK" failed)" "all / 0"
printf '%-48s %14s %s\n' "reservations in the store afterwards" "$STORED" "$((CHANNELS * PER_CHANNEL))"
printf '%-48s %14s %s\n' "races with exactly one winner" "$(jget "$RACE" rounds_with_one_winner) of $ROUNDS" "all"
printf '%-48s %14s %s\n' "availability ($CHANNELS channels) p50 ms" "$(jget "$AV" p50_ms | cut -c1-5)" "< 5"
printf '%-48s %14s %s\n' "availability p99 ms" "$(jget "$AV" p99_ms | cut -c1-5)" "< 5"
printf '%-48s %14s\n' "onaird RSS after (KiB)" "$(awk '/VmRSS/ {print $2}' /proc/$PID/status)"
