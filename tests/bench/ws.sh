#!/bin/sh
# tests/bench/ws.sh - XMPP over WebSocket (RFC 7395) next to TCP: onaird, and
# Debian's Prosody with mod_websocket side by side.
#
#   sh tests/bench/ws.sh [--quick] [--keep] [--no-prosody] [--only STEP]
#
# Builds onair-bench (its WebSocket transport frames with libwslay), pins the
# server to core 1 and the tool to core 0, and measures on a freshly started
# server each time:
#   1. memory per idle session: N = 2,000 sessions over TCP, then N over
#      WebSocket (each on its own fresh server), read 12 s after the last is
#      up (past onaird's c2s.idle_release_s of 10 s; Prosody gets the same
#      wait): KiB per session and the WebSocket / TCP ratio;
#   2. memory per session in a chat room: N clients of one transport log in
#      and join a room (muc-join): KiB per session from before the first
#      login to 12 s after the last seat;
#   3. a mixed room: 2,000 WebSocket and 1,000 TCP occupants (spread over the
#      room), 2 senders paced at 20 msgs/s for 10 s, timed by 150 occupants
#      (100 WebSocket, 50 TCP; the others are read after the window):
#      delivery latency p50/p99/max per transport, losses.
# onaird: build/release (built when missing), accounts with onairctl, a live
# booked over the HTTP API for each room (as muc.sh does); WebSocket at
# ws://127.0.0.1:17380/xmpp-websocket, plaintext like its c2s (require_tls =
# false: SCRAM over ws:// on loopback).  Prosody: its c2s and mod_websocket
# on its own HTTP port, a MUC component as in muc.sh; its rooms are bounded
# (it seats slowly: see README).  Prints a table of medians (3 runs; 1 with
# --quick) with the targets.  Servers are stopped on exit; every step is bounded.
#   --quick       one run of each figure, a 5 s fan-out: about 4 minutes
#   --keep        keep the work folder (configs, logs, results.jsonl)
#   --no-prosody  onaird only
#   --only STEP   one step: idle, room or mix (as numbered above)
set -eu

QUICK=0
KEEP=0
WITH_PROSODY=1
ONLY=""
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    --keep) KEEP=1 ;;
    --no-prosody) WITH_PROSODY=0 ;;
    --only)
        case ${2:-} in idle | room | mix) ONLY=$2 ;; *) echo "ws.sh: --only idle, room or mix" >&2; exit 2 ;; esac
        shift
        ;;
    -h | --help)
        sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "ws.sh: unknown argument $1 (try --help)" >&2
        exit 2
        ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROSODY_PORT=17222
PROSODY_HTTP_PORT=17280
ONAIRD_PORT=17322
ONAIRD_HTTP_PORT=17380
WS_PATH=/xmpp-websocket
CHANNELS=30 # one per booked live: steps 2 and 3, 3 runs each, each tried up to 3 times

MEM_N=2000    # idle sessions per transport (step 1)
JOIN_N=2000   # onaird's room per transport (step 2)
MIX_WS=2000   # the mixed room (step 3): WebSocket occupants
MIX_TCP=1000  # ... and TCP occupants
MIX_RATE=20   # msgs/s, all senders together
MIX_SENDERS=2
MIX_SAMPLE=150 # timing occupants, split by transport: 100 WebSocket, 50 TCP
RCVBUF=262144  # room for the 200 messages a paused occupant is sent (see README)
P_JOIN_N=500   # Prosody's rooms: bounded (about 4.5 s to seat 500, 35 s for 1,000)
P_MIX_WS=200
P_MIX_TCP=100
P_MIX_SAMPLE=60
SETTLE=12 # past c2s.idle_release_s (10 s)
CONC=100  # logins negotiating at once
if [ "$QUICK" = 1 ]; then
    RUNS=1
    MIX_SECS=5
    BUDGET=420
else
    RUNS=3
    MIX_SECS=10
    BUDGET=1080
fi

SCRIPT=ws.sh
# shellcheck source=tests/bench/lib.sh
. "$ROOT/tests/bench/lib.sh"
bench_prepare

# ---- the measurements -------------------------------------------------------------------

# wait_ws HTTP_PORT: the WebSocket endpoint answers (bounded).
wait_ws() {
    i=0
    while [ $i -lt 40 ]; do
        "$BENCH" probe --port "$1" --ws "$WS_PATH" --domain "$DOMAIN" --timeout 1 --quiet >/dev/null 2>&1 && return 0
        sleep 0.25
        i=$((i + 1))
    done
    note "  no WebSocket endpoint at 127.0.0.1:$1$WS_PATH"
    return 1
}

# runs NAME STEP HOW KEY... -- ARGS...: RUNS runs of the tool (ARGS; @ROOM@
# becomes the room of the run) each on a freshly started server (start_NAME
# HOW: "book" books a live on onaird), repeated when other processes used
# more than 10% of a core (at most twice); the median of each KEY of the
# JSON line is recorded as NAME STEP_KEY.  A run that failed or noted a
# failure ends the step (STEP_FAILED says why).  Memory figures are not
# repeated for load (RETRY_LOADED=0): other processes do not change them.
STEP_FAILED=""
RETRY_LOADED=1
runs() {
    r_name=$1
    r_step=$2
    r_how=$3
    shift 3
    r_keys=""
    while [ "$1" != "--" ]; do
        r_keys="$r_keys $1"
        shift
    done
    shift
    for k in $r_keys; do eval "v_$k=''"; done
    STEP_FAILED=""
    r=1
    while [ "$r" -le "$RUNS" ]; do
        if over_budget; then
            note "  $r_step: skipped, over the time budget"
            break
        fi
        if ! "start_$r_name" "$r_how" || ! wait_ws "$WS_HTTP"; then
            STEP_FAILED="$r_name did not start (or its live could not be booked)"
            note "  $STEP_FAILED: $r_step skipped"
            stop_server
            break
        fi
        n=$#
        for a in "$@"; do
            [ "$a" = "@ROOM@" ] && a=$ROOM
            set -- "$@" "$a"
        done
        shift "$n"
        if bench "$r_name/$r_step/$r" "$@"; then :; fi
        stop_server
        line="  $r_step run $r:"
        for k in $r_keys; do line="$line $k $(jget "$k"),"; done
        note "$line CPU: server $(jget server_cpu_pct)%, tool $(jget tool_cpu_pct)%, other $(jget other_cpu_pct)%$(first_err)"
        if [ "$(jget exit)" != 0 ] || [ -n "$(jget first_error)" ]; then
            STEP_FAILED="$r_step failed$(first_err)"
            break
        fi
        [ "$RETRY_LOADED" = 1 ] && retry_run && continue
        for k in $r_keys; do eval "v_$k=\"\$v_$k \$(jget $k)\""; done
        r=$((r + 1))
    done
    [ -n "$STEP_FAILED" ] && note "  $STEP_FAILED"
    for k in $r_keys; do
        vals=""
        eval "vals=\$v_$k"
        record "$r_name" "${r_step}_$k" "$(echo "$vals" | median)"
    done
}

# step NAME: whether the step runs (--only)
step() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# suite NAME C2S HTTP JOIN_N MIX_WS MIX_TCP SAMPLE
suite() {
    name=$1
    c2s=$2
    WS_HTTP=$3
    join_n=$4
    mix_ws=$5
    mix_tcp=$6
    sample=$7
    cache="$WORK/scram-$name.cache"
    # bench() gives --port $PORT (c2s): the WebSocket runs name the HTTP port
    PORT=$c2s
    tcp=""
    ws="--ws $WS_PATH --ws-port $WS_HTTP"
    common="-c $CONC --scram-cache $cache --setup-timeout 600"

    # 1. idle sessions
    RETRY_LOADED=0
    if step idle; then
        # shellcheck disable=SC2086
        runs "$name" idle_tcp nobook kib_per_conn up -- idle -n "$MEM_N" $tcp $common --settle $SETTLE --hold 1
        # shellcheck disable=SC2086
        runs "$name" idle_ws nobook kib_per_conn up -- idle -n "$MEM_N" $ws $common --settle $SETTLE --hold 1
        record "$name" mem_n "$MEM_N"
    fi

    # 2. sessions in a room
    if step room; then
        # shellcheck disable=SC2086
        runs "$name" join_tcp book kib_per_session seat_s seated -- muc-join -n "$join_n" $tcp $common \
            --room @ROOM@ --settle $SETTLE --duration 120
        # shellcheck disable=SC2086
        runs "$name" join_ws book kib_per_session seat_s seated -- muc-join -n "$join_n" $ws $common \
            --room @ROOM@ --settle $SETTLE --duration 120
        record "$name" join_n "$join_n"
    fi

    # 3. the mixed room
    RETRY_LOADED=1
    step mix || return 0
    mix_n=$((mix_ws + mix_tcp))
    # shellcheck disable=SC2086
    runs "$name" mix book ws_p50_ms ws_p99_ms ws_max_ms tcp_p50_ms tcp_p99_ms tcp_max_ms lost occupants \
        ws_occupants tcp_occupants ws_timed_receivers tcp_timed_receivers server_cpu_pct -- \
        muc-fanout -n "$mix_n" --ws "$WS_PATH" --ws-port "$WS_HTTP" --ws-share "$mix_ws" \
        --senders $MIX_SENDERS --rate $MIX_RATE --duration "$MIX_SECS" --sample "$sample" --rcvbuf $RCVBUF \
        --room @ROOM@ $common
    record "$name" mix_n "$mix_n"
    return 0
}

: >"$WORK/medians"
note "onair WebSocket benchmark ($([ "$QUICK" = 1 ] && echo quick || echo full): $RUNS run(s) per figure)"
note "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); kernel $(uname -r)"
note "server pinned to core 1, tool to core 0; work folder $WORK"

# Prosody
if [ "$WITH_PROSODY" = 1 ]; then
    PROSODY_VERSION=$(dpkg-query -W -f='${Version}' prosody 2>/dev/null || echo '?')
    note ""
    note "== Prosody $PROSODY_VERSION: c2s 127.0.0.1:$PROSODY_PORT, mod_websocket ws://127.0.0.1:$PROSODY_HTTP_PORT$WS_PATH (rooms bounded)"
    PORT=$PROSODY_PORT
    port_free "$PORT" || die "port $PORT is in use"
    port_free "$PROSODY_HTTP_PORT" || die "port $PROSODY_HTTP_PORT is in use"
    check_quiet
    write_prosody_config
    start_prosody || die "prosody did not start"
    create_prosody_users "$MEM_N"
    stop_server
    suite prosody "$PROSODY_PORT" "$PROSODY_HTTP_PORT" "$P_JOIN_N" "$P_MIX_WS" "$P_MIX_TCP" "$P_MIX_SAMPLE"
fi

# onaird
if onaird_part; then
    note "== onaird ($ONAIRD): c2s 127.0.0.1:$ONAIRD_PORT, ws://127.0.0.1:$ONAIRD_HTTP_PORT$WS_PATH"
    PORT=$ONAIRD_PORT
    port_free "$PORT" || die "port $PORT is in use"
    port_free "$ONAIRD_HTTP_PORT" || die "port $ONAIRD_HTTP_PORT is in use"
    ONAIRD_HTTP_EXTRA=" max_connections = 100000; xmpp_websocket_path = \"$WS_PATH\";"
    write_onaird_config
    O_USERS=$((MIX_WS + MIX_TCP))
    [ "$MEM_N" -gt "$O_USERS" ] && O_USERS=$MEM_N
    [ "$JOIN_N" -gt "$O_USERS" ] && O_USERS=$JOIN_N
    if ! check=$("$ONAIRD" -c "$WORK/onaird.conf" --check 2>&1); then
        ONAIRD_NOTE="onaird refuses the configuration ($(printf '%s' "$check" | head -n 1 | sed "s|$WORK/||")): skipped"
    elif ! create_onaird_users "$O_USERS"; then
        ONAIRD_NOTE="onairctl account bulk-add failed: onaird skipped"
    else
        check_quiet
        suite onaird "$ONAIRD_PORT" "$ONAIRD_HTTP_PORT" "$JOIN_N" "$MIX_WS" "$MIX_TCP" "$MIX_SAMPLE"
    fi
    [ -n "$ONAIRD_NOTE" ] && note "  $ONAIRD_NOTE"
fi

# ---- the table ------------------------------------------------------------------------------

note ""
note "== WebSocket and TCP: median of $RUNS run(s)"
awk -v rate="$MIX_RATE" '
    { v[$1 "," $2] = $3 }
    function fmt(x) { return (x == "-" || x + 0 >= 1000 || x == int(x)) ? x : sprintf("%.3g", x) }
    function val(s, k) { return ((s "," k) in v && v[s "," k] != "-") ? fmt(v[s "," k]) : "-" }
    function raw(s, k) { return ((s "," k) in v) ? v[s "," k] : "-" }
    function ratio(s, a, b) { x = raw(s, a); y = raw(s, b); return (x == "-" || y == "-" || x + 0 == 0) ? "-" : sprintf("%.2f", y / x) }
    function row(label, k, target) {
        printf "%-50s %11s %11s   %s\n", label, val("prosody", k), val("onaird", k), target
    }
    function rrow(label, a, b, target) {
        printf "%-50s %11s %11s   %s\n", label, ratio("prosody", a, b), ratio("onaird", a, b), target
    }
    function diff(s, a, b) { x = raw(s, a); y = raw(s, b); return (x == "-" || y == "-") ? "-" : sprintf("%+.2f", y - x) }
    function drow(label, a, b, target) {
        printf "%-50s %11s %11s   %s\n", label, diff("prosody", a, b), diff("onaird", a, b), target
    }
    function pair(s, a, b) { x = val(s, a); y = val(s, b); return (x == "-" && y == "-") ? "-" : x " + " y }
    END {
        printf "%-50s %11s %11s   %s\n", "metric", "Prosody", "onaird", "target (onaird)"
        row("idle sessions per transport", "mem_n", "2000")
        row("idle: server KiB per session, TCP", "idle_tcp_kib_per_conn", "")
        row("idle: server KiB per session, WebSocket", "idle_ws_kib_per_conn", "")
        drow("idle: WebSocket - TCP, KiB", "idle_tcp_kib_per_conn", "idle_ws_kib_per_conn", "")
        rrow("idle: WebSocket / TCP", "idle_tcp_kib_per_conn", "idle_ws_kib_per_conn", "<= 1.20")
        row("room: sessions per transport (Prosody bounded)", "join_n", "2000")
        row("room: KiB per session (login, join), TCP", "join_tcp_kib_per_session", "")
        row("room: KiB per session (login, join), WebSocket", "join_ws_kib_per_session", "")
        drow("room: WebSocket - TCP, KiB", "join_tcp_kib_per_session", "join_ws_kib_per_session", "")
        rrow("room: WebSocket / TCP", "join_tcp_kib_per_session", "join_ws_kib_per_session", "<= 1.20")
        row("room: seat time s, TCP", "join_tcp_seat_s", "")
        row("room: seat time s, WebSocket", "join_ws_seat_s", "")
        printf "%-50s %11s %11s   %s\n", "mixed room: occupants WebSocket + TCP", pair("prosody", "mix_ws_occupants", "mix_tcp_occupants"), pair("onaird", "mix_ws_occupants", "mix_tcp_occupants"), "2000 + 1000"
        row("mixed room: occupants in all", "mix_occupants", "3000")
        printf "%-50s %11s %11s   %s\n", "mixed: timing occupants WebSocket + TCP", pair("prosody", "mix_ws_timed_receivers", "mix_tcp_timed_receivers"), pair("onaird", "mix_ws_timed_receivers", "mix_tcp_timed_receivers"), ""
        row("mixed at " rate " msgs/s: WebSocket p50 ms", "mix_ws_p50_ms", "")
        row("mixed at " rate " msgs/s: WebSocket p99 ms", "mix_ws_p99_ms", "< 50")
        row("mixed at " rate " msgs/s: WebSocket max ms", "mix_ws_max_ms", "")
        row("mixed at " rate " msgs/s: TCP p50 ms", "mix_tcp_p50_ms", "")
        row("mixed at " rate " msgs/s: TCP p99 ms", "mix_tcp_p99_ms", "")
        row("mixed at " rate " msgs/s: TCP max ms", "mix_tcp_max_ms", "")
        row("mixed: lost deliveries", "mix_lost", "0")
        row("mixed: server CPU %", "mix_server_cpu_pct", "")
    }' "$WORK/medians"
[ -n "$ONAIRD_NOTE" ] && note "($ONAIRD_NOTE)"
note_busiest
note ""
note "done in $(elapsed) s; every run's JSON line: results.jsonl in the work folder (--keep)"
