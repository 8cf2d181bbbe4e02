#!/bin/sh
# tests/bench/muc.sh - side-by-side chat room benchmark (XEP-0045): Prosody 0.12
# and onaird.
#
#   sh tests/bench/muc.sh [--quick] [--keep] [--procs K]
#
# Builds onair-bench with gcc, starts Debian's Prosody with a private
# configuration (a MUC component on conference.localhost, presence broadcast
# to moderators only, no room locking, no rate limits) pinned to core 1 with
# the tool on core 0, creates the accounts by in-band registration, then
# measures on a freshly started server each time:
#   1. muc-join: seating N occupants in one room at once (seat time, joins/s,
#      per-join latency, presences per client, server KiB per occupant);
#      Prosody's N is bounded (it slows down with the room: about 30 s for
#      1,000, minutes beyond), onaird's is 5,000;
#   2. muc-fanout closed loop: 100 occupants, 20 senders, each sending its
#      next message when its own echo is back: deliveries/s;
#   3. muc-fanout paced: 3,000 occupants (Prosody: its bounded N) and
#      2 msgs/s: delivery latency below saturation, timed by 100 occupants
#      spread over the room (the others are read after the window).
# The same against build/release/onaird (built when missing): accounts with
# `onairctl account bulk-add`, and before each measurement a public live
# booked over the HTTP API (POST /api/v1/session, /api/v1/reservations,
# /reconfirm), whose room <id>@live.localhost is the one measured.  When
# onaird has no rooms yet, that part stops with a note; Prosody's still
# reports.  Prints a table of medians (3 runs; 1 with --quick) with
# onaird/Prosody ratios.  Servers are stopped on exit; every step is bounded.
#   --quick    smaller Prosody rooms, shorter runs, one run each: 1-2 minutes
#   --keep     keep the work folder (configs, logs, results.jsonl)
#   --procs K  split the occupants over K generator processes (default 1)
set -eu

QUICK=0
KEEP=0
PROCS=1
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    --keep) KEEP=1 ;;
    --procs)
        [ $# -ge 2 ] || { echo "muc.sh: --procs needs a number" >&2; exit 2; }
        PROCS=$2
        shift
        ;;
    -h | --help)
        sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "muc.sh: unknown argument $1 (try --help)" >&2
        exit 2
        ;;
    esac
    shift
done
case $PROCS in '' | *[!0-9]*) echo "muc.sh: --procs needs a number" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROSODY_PORT=16222
ONAIRD_PORT=16322
ONAIRD_HTTP_PORT=16380
CHANNELS=24 # one per onaird start: each measurement books its own live

ONAIRD_JOIN_N=5000 # target: 5,000 seated in under 1 s
ONAIRD_LAT_N=3000  # target: p99 under 20 ms at 3,000 occupants
FAN_N=100          # closed-loop fan-out room
FAN_S=20           # its senders
LAT_RATE=2         # msgs/s of the latency run, all senders together
LAT_S=2            # senders of the latency run
LAT_SAMPLE=100     # occupants of the latency run that time on arrival (see README)
if [ "$QUICK" = 1 ]; then
    RUNS=1
    PROSODY_N=500 # Prosody's rooms (join and latency runs): bounded, see above
    JOIN_CAP=60   # seconds a seating may take
    FAN_SECS=4
    LAT_SECS=5
    BUDGET=200
else
    RUNS=3
    PROSODY_N=1000
    JOIN_CAP=120
    FAN_SECS=10
    LAT_SECS=10
    BUDGET=900
fi
SETTLE=2
CONC=100 # logins negotiating at once in the setup

SCRIPT=muc.sh
# shellcheck source=tests/bench/lib.sh
. "$ROOT/tests/bench/lib.sh"
bench_prepare

# ---- the measurements -------------------------------------------------------------------

# The first run's failure to open the room ends the server's part: without
# rooms every later run would fail the same way.
NO_ROOM=""
room_check() {
    if [ "$(jget seated)$(jget occupants)" = "" ] || [ "$(jget occupants)" = 0 ]; then
        NO_ROOM="the room $ROOM took no occupant$(first_err)"
        return 1
    fi
    return 0
}

# suite NAME JOIN_N LAT_N
suite() {
    name=$1
    join_n=$2
    lat_n=$3
    cache="$WORK/scram-$name.cache"
    NO_ROOM=""

    # 1. seating
    seats=""
    secs=""
    jps=""
    p50s=""
    p99s=""
    pres=""
    kibs=""
    scpus=""
    tcpus=""
    r=1
    while [ $r -le $RUNS ] && [ -z "$NO_ROOM" ]; do
        if over_budget; then
            note "  muc-join: skipped, over the time budget"
            break
        fi
        if ! "start_$name"; then
            note "  $name did not start: run skipped"
            stop_server
            NO_ROOM="$name did not start or its live could not be booked"
            break
        fi
        # shellcheck disable=SC2086
        if bench "$name/muc-join/$r" muc-join -n "$join_n" -c $CONC --room "$ROOM" --duration $JOIN_CAP \
            --settle $SETTLE --procs "$PROCS" --scram-cache "$cache" --setup-timeout 600; then :; fi
        stop_server
        if ! room_check; then
            note "  muc-join run $r: $NO_ROOM"
            break
        fi
        note "  muc-join run $r: $(jget seated)/$(jget joins) seated in $(jget seat_s) s = $(jget joins_per_s) joins/s, p50 $(jget p50_ms) ms, p99 $(jget p99_ms) ms, $(jget presences_per_client) presences per client, $(jget kib_per_occupant) KiB per occupant; CPU: server $(jget server_cpu_pct)%, tool $(jget tool_cpu_pct)%, other $(jget other_cpu_pct)%$(first_err)"
        retry_run && continue
        seats="$seats $(jget seated)"
        secs="$secs $(jget seat_s)"
        jps="$jps $(jget joins_per_s)"
        p50s="$p50s $(jget p50_ms)"
        p99s="$p99s $(jget p99_ms)"
        pres="$pres $(jget presences_per_client)"
        kibs="$kibs $(jget kib_per_occupant)"
        scpus="$scpus $(jget server_cpu_pct)"
        tcpus="$tcpus $(jget tool_cpu_pct)"
        r=$((r + 1))
    done
    record "$name" join_n "$join_n"
    record "$name" join_seated "$(echo "$seats" | median)"
    record "$name" join_s "$(echo "$secs" | median)"
    record "$name" join_rate "$(echo "$jps" | median)"
    record "$name" join_p50 "$(echo "$p50s" | median)"
    record "$name" join_p99 "$(echo "$p99s" | median)"
    record "$name" join_pres "$(echo "$pres" | median)"
    record "$name" join_kib "$(echo "$kibs" | median)"
    record "$name" join_scpu "$(echo "$scpus" | median)"
    record "$name" join_tcpu "$(echo "$tcpus" | median)"

    # 2. fan-out, closed loop
    rates=""
    p99s=""
    pers=""
    scpus=""
    tcpus=""
    r=1
    while [ $r -le $RUNS ] && [ -z "$NO_ROOM" ]; do
        if over_budget; then
            note "  muc-fanout closed loop: skipped, over the time budget"
            break
        fi
        if ! "start_$name"; then
            note "  $name did not start: run skipped"
            stop_server
            break
        fi
        if bench "$name/muc-fanout-peak/$r" muc-fanout -n $FAN_N --senders $FAN_S -c $CONC --room "$ROOM" \
            --duration $FAN_SECS --procs "$PROCS" --scram-cache "$cache"; then :; fi
        stop_server
        if ! room_check; then
            note "  muc-fanout run $r: $NO_ROOM"
            break
        fi
        note "  muc-fanout $FAN_N occupants, $FAN_S senders, closed loop, run $r: $(jget deliveries_per_s) deliveries/s ($(jget msgs_per_s) msgs/s), p50 $(jget p50_ms) ms, p99 $(jget p99_ms) ms, lost $(jget lost); CPU: server $(jget server_cpu_pct)%, tool $(jget tool_cpu_pct)%, other $(jget other_cpu_pct)%$(first_err)"
        retry_run && continue
        rates="$rates $(jget deliveries_per_s)"
        p99s="$p99s $(jget p99_ms)"
        pers="$pers $(jget per_server_cpu_s)"
        scpus="$scpus $(jget server_cpu_pct)"
        tcpus="$tcpus $(jget tool_cpu_pct)"
        r=$((r + 1))
    done
    record "$name" fan_rate "$(echo "$rates" | median)"
    record "$name" fan_p99 "$(echo "$p99s" | median)"
    record "$name" fan_per "$(echo "$pers" | median)"
    record "$name" fan_scpu "$(echo "$scpus" | median)"
    record "$name" fan_tcpu "$(echo "$tcpus" | median)"

    # 3. fan-out, paced: latency
    p50s=""
    p99s=""
    maxs=""
    occs=""
    r=1
    while [ $r -le $RUNS ] && [ -z "$NO_ROOM" ]; do
        if over_budget; then
            note "  muc-fanout paced: skipped, over the time budget"
            break
        fi
        if ! "start_$name"; then
            note "  $name did not start: run skipped"
            stop_server
            break
        fi
        if bench "$name/muc-fanout-paced/$r" muc-fanout -n "$lat_n" --senders $LAT_S --rate $LAT_RATE \
            --sample $LAT_SAMPLE -c $CONC --room "$ROOM" --duration $LAT_SECS --procs "$PROCS" \
            --scram-cache "$cache" --setup-timeout 600; then :; fi
        stop_server
        if ! room_check; then
            note "  muc-fanout paced run $r: $NO_ROOM"
            break
        fi
        note "  muc-fanout $(jget occupants) occupants at $LAT_RATE msgs/s, run $r: $(jget received) deliveries, p50 $(jget p50_ms) ms, p99 $(jget p99_ms) ms, max $(jget max_ms) ms, lost $(jget lost) (setup $(jget setup_s) s); CPU: server $(jget server_cpu_pct)%, other $(jget other_cpu_pct)%$(first_err)"
        retry_run && continue
        p50s="$p50s $(jget p50_ms)"
        p99s="$p99s $(jget p99_ms)"
        maxs="$maxs $(jget max_ms)"
        occs="$occs $(jget occupants)"
        r=$((r + 1))
    done
    record "$name" lat_n "$(echo "$occs" | median)"
    record "$name" lat_p50 "$(echo "$p50s" | median)"
    record "$name" lat_p99 "$(echo "$p99s" | median)"
    record "$name" lat_max "$(echo "$maxs" | median)"
}

: >"$WORK/medians"
note "onair chat room benchmark ($([ "$QUICK" = 1 ] && echo quick || echo full): $RUNS run(s) per figure, $PROCS generator process(es))"
note "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); kernel $(uname -r)"
note "server pinned to core 1, tool to core 0; work folder $WORK"

# onaird first: its part takes a minute or two, Prosody's most of the budget
if onaird_part; then
    note "== onaird ($ONAIRD) on 127.0.0.1:$ONAIRD_PORT, HTTP API on 127.0.0.1:$ONAIRD_HTTP_PORT"
    PORT=$ONAIRD_PORT
    port_free "$PORT" || die "port $PORT is in use"
    write_onaird_config
    O_USERS=$ONAIRD_JOIN_N
    [ "$ONAIRD_LAT_N" -gt "$O_USERS" ] && O_USERS=$ONAIRD_LAT_N
    [ "$FAN_N" -gt "$O_USERS" ] && O_USERS=$FAN_N
    if ! check=$("$ONAIRD" -c "$WORK/onaird.conf" --check 2>&1); then
        ONAIRD_NOTE="onaird does not take the chat room settings yet ($(printf '%s' "$check" | head -n 1 | sed "s|$WORK/||")): its rooms are not there; skipped"
    elif ! create_onaird_users "$O_USERS"; then
        ONAIRD_NOTE="onairctl account bulk-add failed: onaird skipped"
    else
        check_quiet
        suite onaird "$ONAIRD_JOIN_N" "$ONAIRD_LAT_N"
        [ -n "$NO_ROOM" ] && ONAIRD_NOTE="onaird: $NO_ROOM (are its chat rooms there yet?)"
    fi
    [ -n "$ONAIRD_NOTE" ] && note "  $ONAIRD_NOTE"
fi

# Prosody
PROSODY_VERSION=$(dpkg-query -W -f='${Version}' prosody 2>/dev/null || echo '?')
note ""
note "== Prosody $PROSODY_VERSION on 127.0.0.1:$PROSODY_PORT, room $PROSODY_ROOM (bounded: $PROSODY_N occupants)"
PORT=$PROSODY_PORT
port_free "$PORT" || die "port $PORT is in use"
check_quiet
write_prosody_config
start_prosody || die "prosody did not start"
P_USERS=$PROSODY_N
[ "$FAN_N" -gt "$P_USERS" ] && P_USERS=$FAN_N
create_prosody_users "$P_USERS"
stop_server
NO_ROOM=""
suite prosody "$PROSODY_N" "$PROSODY_N"
[ -n "$NO_ROOM" ] && note "  Prosody: $NO_ROOM"

# ---- the table ------------------------------------------------------------------------------

note ""
note "== comparison: median of $RUNS run(s); ratio = onaird / Prosody"
awk -v fan_n="$FAN_N" -v fan_s="$FAN_S" -v rate="$LAT_RATE" '
    { v[$1 "," $2] = $3 }
    function val(s, k) { return ((s "," k) in v) ? v[s "," k] : "-" }
    function ratio(a, b) { return (a == "-" || b == "-" || a + 0 == 0) ? "-" : sprintf("%.2f", b / a) }
    function row(label, k, target) {
        p = val("prosody", k); o = val("onaird", k)
        printf "%-46s %11s %11s %7s   %s\n", label, p, o, ratio(p, o), target
    }
    END {
        printf "%-46s %11s %11s %7s   %s\n", "metric", "Prosody", "onaird", "ratio", "target (onaird, one core)"
        row("join: room size (Prosody bounded)", "join_n", "5000")
        row("join: occupants seated", "join_seated", "")
        row("join: seat time s (all at once)", "join_s", "< 1 (5000, restricted presence)")
        row("join: joins/s", "join_rate", "")
        row("join: per-join latency p50 ms", "join_p50", "")
        row("join: per-join latency p99 ms", "join_p99", "")
        row("join: presences received per client", "join_pres", "(presence mode)")
        row("join: server KiB per occupant", "join_kib", "")
        row("join: server CPU %", "join_scpu", "")
        row("join: tool CPU %", "join_tcpu", "(>85: tool-bound)")
        row("fanout " fan_n " occ, " fan_s " senders: deliveries/s", "fan_rate", ">= 300000")
        row("fanout closed loop: p99 ms", "fan_p99", "")
        row("fanout closed loop: per server CPU-second", "fan_per", "")
        row("fanout closed loop: server CPU %", "fan_scpu", "")
        row("fanout closed loop: tool CPU %", "fan_tcpu", "(>85: tool-bound)")
        row("fanout at " rate " msgs/s: occupants", "lat_n", "3000")
        row("fanout at " rate " msgs/s: p50 ms", "lat_p50", "")
        row("fanout at " rate " msgs/s: p99 ms", "lat_p99", "< 20")
        row("fanout at " rate " msgs/s: max ms", "lat_max", "")
    }' "$WORK/medians"
note "(Prosody: presence to moderators only; onaird: muc.presence_broadcast_limit = 100)"
[ -n "$ONAIRD_NOTE" ] && note "($ONAIRD_NOTE)"
note_busiest
note ""
note "done in $(elapsed) s; every run's JSON line: results.jsonl in the work folder (--keep)"
