#!/bin/sh
# tests/bench/media.sh - the live stream's relay benchmark (specs/media.md).
#
#   sh tests/bench/media.sh [--viewers "100 1000 2000"] [--ws-viewers "0 500"] [--seconds 10]
#                           [--kbps 2000] [--suite AES_CM_128_HMAC_SHA1_80|AEAD_AES_128_GCM]
#                           [--fanout-seconds 6] [--keep]
#
# Builds onaird, onairctl and onair-media-bench in release mode (build/release,
# or $ONAIR_BUILD_DIR; only what changed), starts onaird with a private
# configuration pinned to core 1, creates the broadcaster's account, and for
# each viewer count N (with M WebSocket viewers: --ws-viewers is a list
# matched with --viewers, or one number for every run; default 0): books a
# public live over the HTTP API, negotiates the broadcaster's Jingle session
# and N viewer sessions and asks M media WebSocket tokens
# (tests/bench/media_run.py, with the tests' Jingle client), then
# onair-media-bench, pinned to core 0, measures the bare cost of libsrtp2
# protect + sendmsg (and + sendmmsg in batches of 1024) on this machine and
# the delay of a paced fan-out of the same stream to N sockets without a
# server (the physical limit of the relay's delay; --fanout-seconds, 0: none),
# connects the M WebSocket viewers, sends an H.264 stream of --kbps (25
# access units a second, a keyframe every 2 s, FU-A packets of 1,200 bytes)
# as SRTP for --seconds, and receives it on N UDP sockets, unprotecting
# each viewer's copy with its own key (loss, gaps and the delay from send to
# the kernel's receipt stamp), and on the M WebSockets (access units, missing ones, and the
# delay from the send of a unit's last packet to the receipt of its
# message).  The server's CPU time over the stream gives relayed packets per
# second per core.  --suite is the SRTP viewers' crypto suite (and the bare
# cost's); the broadcaster is on AES-CM.  Prints one JSON line per N and a table; results.jsonl in
# the work folder (kept with --keep).  Every step is bounded; the server is
# stopped on exit.
set -eu

VIEWERS="100 1000 2000"
WS_VIEWERS=0
SECS=10
KBPS=2000
SUITE=AES_CM_128_HMAC_SHA1_80
FANOUT=6
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
    --viewers) VIEWERS=$2; shift ;;
    --ws-viewers) WS_VIEWERS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --kbps) KBPS=$2; shift ;;
    --suite) SUITE=$2; shift ;;
    --fanout-seconds) FANOUT=$2; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "media.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

set -- $VIEWERS
NRUNS=$#
set -- $WS_VIEWERS
if [ $# -ne 1 ] && [ $# -ne "$NRUNS" ]; then
    echo "media.sh: --ws-viewers has $# numbers for $NRUNS runs of --viewers (give one, or one per run)" >&2
    exit 2
fi
for n in $VIEWERS $WS_VIEWERS; do
    case $n in
    *[!0-9]*) echo "media.sh: viewer counts are whole numbers, not $n" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${ONAIR_BUILD_DIR:-$ROOT/build/release}
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DONAIR_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target onaird onairctl onair-media-bench >/dev/null
TOOL=$BUILD/tests/bench/onair-media-bench
WORK=$(mktemp -d "${TMPDIR:-/tmp}/onair-mediabench.XXXXXX")
PID=""
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        i=0
        while kill -0 "$PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$PID" 2>/dev/null || true
    fi
    [ "$KEEP" = 1 ] && echo "media.sh: work folder kept: $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

set -- $(/usr/bin/python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
C2S=$1 TLS=$2 HTTP=$3
cat >"$WORK/onaird.conf" <<CONF
server = { domain = "localhost"; guest_domain = "guest.localhost"; data_dir = "data"; log_level = "warn"; };
tls = { certificate = "certs/onair.crt"; key = "certs/onair.key"; generate = true; };
c2s = { listen = ["127.0.0.1"]; port = $C2S; direct_tls_port = $TLS; };
http = { listen = ["127.0.0.1"]; port = $HTTP; };
reservation = { slot_s = 60; max_advance_days = 30; };
schedule = { reconfirm_before_s = 0; ingest_open_before_s = 86400; room_open_before_s = 0; notice_before_s = 0; close_warning_before_s = 0; };
media = { listen = "127.0.0.1"; port = 0; socket_buffer_bytes = 16777216; ingest_timeout_s = 60; };
# capacity: the SRTP and WebSocket viewers of a run count together
channels = ( { id = "bench"; name = "Benchmark"; capacity = 100000; bandwidth_kbps = 100000; price_per_hour = 0; } );
CONF
taskset -c 1 "$BUILD/onaird" -c "$WORK/onaird.conf" 2>"$WORK/onaird.log" &
PID=$!
i=0
until /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $HTTP), 0.2)" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "media.sh: onaird did not start:" >&2; cat "$WORK/onaird.log" >&2; exit 1; }
    sleep 0.1
done
echo bench-pass | "$BUILD/onairctl" -c "$WORK/onaird.conf" account add caster >/dev/null
echo "media.sh: onaird $PID on core 1, tool on core 0, $KBPS kbps for $SECS s; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
slot=0
for N in $VIEWERS; do
    set -- $WS_VIEWERS
    [ $# -eq 1 ] || shift $slot
    M=$1
    [ $((N + M)) -le 100000 ] || { echo "media.sh: $N + $M viewers exceed the bench channel's capacity" >&2; exit 2; }
    timeout $((SECS * 3 + 360)) /usr/bin/python3 "$ROOT/tests/bench/media_run.py" --c2s "$C2S" --http "$HTTP" \
        --pid "$PID" --ctl "$BUILD/onairctl -c $WORK/onaird.conf" --tool "$TOOL" --tool-cpu 0 \
        --viewers "$N" --ws-viewers "$M" --seconds "$SECS" --kbps "$KBPS" --suite "$SUITE" --fanout-seconds "$FANOUT" --slot "$slot" |
        tee -a "$WORK/results.jsonl"
    slot=$((slot + 1))
done
/usr/bin/python3 - "$WORK/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'viewers':>8} {'sent':>6} {'lost':>6} {'p50 us':>7} {'p99 us':>7} {'max us':>7} {'tool p99':>8} {'bare fan-out p99':>16} {'srv cpu s':>9} "
      f"{'relayed pps':>11} {'pps/core':>9} {'bare 1 key':>10} {'1 key mmsg':>10} {'bare N keys':>11} {'N keys mmsg':>11} "
      f"{'ws':>5} {'ws ok':>5} {'ws units':>8} {'ws lost':>7} {'ws p50 us':>9} {'ws p99 us':>9} {'ws max us':>9}")
for r in rows:
    print(f"{r['viewers']:>8} {r['sent']:>6} {r['lost']:>6} {r['lat_p50_us']:>7.0f} {r['lat_p99_us']:>7.0f} "
          f"{r['lat_max_us']:>7} {r['tool_lat_p99_us']:>8.0f} {r['fanout_p99_us']:>16.0f} {r['server_stream_cpu_s']:>9.2f} {r['server_pps']:>11} {r['server_pps_per_core'] or 0:>9} "
          f"{r['bare_protect_sendmsg_pps']:>10.0f} {r['bare_protect_sendmmsg_pps']:>10.0f} "
          f"{r['bare_n_keys_sendmsg_pps']:>11.0f} {r['bare_n_keys_sendmmsg_pps']:>11.0f} "
          f"{r['ws_viewers']:>5} {r['ws_viewers_ok']:>5} {r['ws_units']:>8} {r['ws_lost']:>7} "
          f"{r['ws_lat_p50_us']:>9.0f} {r['ws_lat_p99_us']:>9.0f} {r['ws_lat_max_us']:>9}")
PY
