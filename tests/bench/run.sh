#!/bin/sh
# tests/bench/run.sh - side-by-side benchmark: Prosody 0.12 and onaird.
#
#   sh tests/bench/run.sh [--quick] [--keep]
#
# Builds onair-bench with gcc (independent of the core's CMake build), starts
# Debian's Prosody with a private configuration in a temporary folder
# (loopback only, its own port, internal_hashed SCRAM-SHA-256 accounts,
# internal storage, a self-signed certificate), pinned to core 1 with the
# tool on core 0, creates the benchmark accounts by in-band registration,
# then measures idle memory (plaintext and TLS), login rate (plaintext and
# TLS), message throughput (closed loop) and message latency at half of that
# peak.  Every measurement starts on a freshly started server.  The same is
# done against build/release/onaird when it exists (accounts made with
# `onairctl account bulk-add`), else that part is skipped with a note.
# Prints a table of medians (3 runs; 1 with --quick) and onaird/Prosody
# ratios.  Servers are killed on exit; every step has a time bound.
#   --quick  small sizes, one run each: about 2-3 minutes
#   --keep   keep the work folder (configs, logs, results.jsonl)
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
        echo "run.sh: unknown argument $a (try --help)" >&2
        exit 2
        ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROSODY_PORT=15222
ONAIRD_PORT=15322

if [ "$QUICK" = 1 ]; then
    RUNS=1
    USERS=1000      # accounts created; idle connections
    IDLE_HOLD=1
    LOGIN_USERS=200 # accounts the login runs cycle through
    LOGIN_S=4       # seconds of logins per run
    PAIRS=20
    MSGS_S=4
    BUDGET=230      # seconds; later steps are skipped past it
else
    RUNS=3
    USERS=10000
    IDLE_HOLD=5
    LOGIN_USERS=1000
    LOGIN_S=10
    PAIRS=50
    MSGS_S=10
    BUDGET=1320
fi
CONC=100 # connections negotiating at once
# Idle figures are read after the connections have been idle longer than
# onaird's c2s.idle_release_s (default 10 s, kept here), when an idle stream
# has given back its parser: that is the state a server holding thousands of
# quiet viewers is in.  Prosody gets the same wait.
SETTLE=12
WINDOW=16

SCRIPT=run.sh
PROSODY_TLS=1 # STARTTLS for the TLS runs
PROSODY_MUC=0
ONAIRD_ROOMS=0
# shellcheck source=tests/bench/lib.sh
. "$ROOT/tests/bench/lib.sh"
bench_prepare

# Self-signed ECDSA P-256 certificate, used by both servers.
mkdir -p "$WORK/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
    -keyout "$WORK/certs/$DOMAIN.key" -out "$WORK/certs/$DOMAIN.crt" >/dev/null 2>&1 ||
    die "openssl could not make a certificate"

# ---- servers ----------------------------------------------------------------------------

# write_prosody_config (with PROSODY_TLS=1, PROSODY_MUC=0), start_prosody,
# create_prosody_users, write_onaird_config (ONAIRD_ROOMS=0: no chat rooms, no
# HTTP): lib.sh's

start_onaird() {
    run_server "$WORK/onaird.out" "$ONAIRD" -c "$WORK/onaird.conf" || return 1
}

create_onaird_users() {
    t0=$(date +%s)
    if ! printf '%s\n' "$PASSWORD" | timeout -k 5 900 "$ONAIRCTL" -c "$WORK/onaird.conf" \
        account bulk-add "$PREFIX" "$USERS" >>"$WORK/onaird.out" 2>&1; then
        return 1
    fi
    note "  accounts: $USERS added with onairctl in $(($(date +%s) - t0)) s"
}

# ---- the measurements -------------------------------------------------------------------

# suite NAME: runs every measurement against server NAME (start_NAME).
suite() {
    name=$1
    cache="$WORK/scram-$name.cache" # SCRAM salted passwords of this server's accounts

    for sec in plain tls; do
        tlsflag=""
        [ $sec = tls ] && tlsflag="--tls"
        vals=""
        ups=""
        r=1
        while [ $r -le $RUNS ]; do
            if over_budget; then
                note "  idle $sec: skipped, over the time budget"
                break
            fi
            if ! "start_$name"; then
                note "  $name did not start: run skipped"
                stop_server
                r=$((r + 1))
                continue
            fi
            # shellcheck disable=SC2086
            if bench "$name/idle-$sec/$r" idle -n "$USERS" -c $CONC $tlsflag --hold $IDLE_HOLD \
                --settle $SETTLE --scram-cache "$cache" --setup-timeout 600; then :; fi
            stop_server
            note "  idle $sec run $r: $(jget up)/$USERS up, $(jget kib_per_conn) KiB per connection (RSS $(jget rss_before_kib) -> $(jget rss_after_kib) KiB)$(first_err)"
            vals="$vals $(jget kib_per_conn)"
            ups="$ups $(jget up)"
            r=$((r + 1))
        done
        record "$name" "idle_${sec}_kib" "$(echo "$vals" | median)"
        record "$name" "idle_${sec}_up" "$(echo "$ups" | median)"
    done

    for sec in plain tls; do
        tlsflag=""
        [ $sec = tls ] && tlsflag="--tls"
        rates=""
        p99s=""
        cpus=""
        scpus=""
        pers=""
        r=1
        while [ $r -le $RUNS ]; do
            if over_budget; then
                note "  login $sec: skipped, over the time budget"
                break
            fi
            if ! "start_$name"; then
                note "  $name did not start: run skipped"
                stop_server
                r=$((r + 1))
                continue
            fi
            # shellcheck disable=SC2086
            if bench "$name/login-$sec/$r" login -n 100000000 --duration $LOGIN_S --users $LOGIN_USERS \
                --warmup -c $CONC $tlsflag --scram-cache "$cache"; then :; fi
            stop_server
            note "  login $sec run $r: $(jget logins_per_s) logins/s, p50 $(jget p50_ms) ms, p99 $(jget p99_ms) ms, $(jget failures) failed; CPU: server $(jget server_cpu_pct)%, tool $(jget tool_cpu_pct)%, other $(jget other_cpu_pct)%$(first_err)"
            retry_run && continue
            rates="$rates $(jget logins_per_s)"
            p99s="$p99s $(jget p99_ms)"
            cpus="$cpus $(jget tool_cpu_pct)"
            scpus="$scpus $(jget server_cpu_pct)"
            pers="$pers $(jget per_server_cpu_s)"
            r=$((r + 1))
        done
        record "$name" "login_${sec}_rate" "$(echo "$rates" | median)"
        record "$name" "login_${sec}_p99" "$(echo "$p99s" | median)"
        record "$name" "login_${sec}_cpu" "$(echo "$cpus" | median)"
        record "$name" "login_${sec}_scpu" "$(echo "$scpus" | median)"
        record "$name" "login_${sec}_per" "$(echo "$pers" | median)"
    done

    rates=""
    p99s=""
    cpus=""
    scpus=""
    pers=""
    r=1
    while [ $r -le $RUNS ]; do
        if over_budget; then
            note "  msgs peak: skipped, over the time budget"
            break
        fi
        if ! "start_$name"; then
            note "  $name did not start: run skipped"
            stop_server
            r=$((r + 1))
            continue
        fi
        if bench "$name/msgs-peak/$r" msgs --pairs $PAIRS --window $WINDOW --duration $MSGS_S \
            --scram-cache "$cache"; then :; fi
        stop_server
        note "  msgs peak run $r: $(jget msgs_per_s) msgs/s, p50 $(jget p50_ms) ms, p99 $(jget p99_ms) ms, lost $(jget lost); CPU: server $(jget server_cpu_pct)%, tool $(jget tool_cpu_pct)%, other $(jget other_cpu_pct)%$(first_err)"
        retry_run && continue
        rates="$rates $(jget msgs_per_s)"
        p99s="$p99s $(jget p99_ms)"
        cpus="$cpus $(jget tool_cpu_pct)"
        scpus="$scpus $(jget server_cpu_pct)"
        pers="$pers $(jget per_server_cpu_s)"
        r=$((r + 1))
    done
    peak=$(echo "$rates" | median)
    record "$name" msgs_peak_rate "$peak"
    record "$name" msgs_peak_p99 "$(echo "$p99s" | median)"
    record "$name" msgs_peak_cpu "$(echo "$cpus" | median)"
    record "$name" msgs_peak_scpu "$(echo "$scpus" | median)"
    record "$name" msgs_peak_per "$(echo "$pers" | median)"

    half=$(echo "$peak" | awk '{ printf "%d", $1 / 2 }')
    rates=""
    p99s=""
    scpus=""
    r=1
    while [ "$half" -gt 0 ] && [ $r -le $RUNS ]; do
        if over_budget; then
            note "  msgs at half peak: skipped, over the time budget"
            break
        fi
        if ! "start_$name"; then
            note "  $name did not start: run skipped"
            stop_server
            r=$((r + 1))
            continue
        fi
        if bench "$name/msgs-half/$r" msgs --pairs $PAIRS --window 1000 --rate "$half" \
            --duration $MSGS_S --scram-cache "$cache"; then :; fi
        stop_server
        note "  msgs at $half/s run $r: $(jget msgs_per_s) msgs/s, p50 $(jget p50_ms) ms, p99 $(jget p99_ms) ms, max $(jget max_ms) ms, lost $(jget lost); CPU: server $(jget server_cpu_pct)%, other $(jget other_cpu_pct)%$(first_err)"
        retry_run && continue
        rates="$rates $(jget msgs_per_s)"
        p99s="$p99s $(jget p99_ms)"
        scpus="$scpus $(jget server_cpu_pct)"
        r=$((r + 1))
    done
    record "$name" msgs_half_rate "$(echo "$rates" | median)"
    record "$name" msgs_half_p99 "$(echo "$p99s" | median)"
    record "$name" msgs_half_scpu "$(echo "$scpus" | median)"
}

: >"$WORK/medians"
note "onair benchmark ($([ "$QUICK" = 1 ] && echo quick || echo full): $RUNS run(s) per figure, $USERS accounts)"
note "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); kernel $(uname -r)"
note "server pinned to core 1, tool to core 0; work folder $WORK"

# Prosody
PROSODY_VERSION=$(dpkg-query -W -f='${Version}' prosody 2>/dev/null || echo '?')
note ""
note "== Prosody $PROSODY_VERSION on 127.0.0.1:$PROSODY_PORT"
PORT=$PROSODY_PORT
port_free "$PORT" || die "port $PORT is in use"
check_quiet
write_prosody_config
start_prosody || die "prosody did not start"
create_prosody_users "$USERS" 50 900
stop_server
suite prosody

# onaird
if onaird_part; then
    note "== onaird ($ONAIRD) on 127.0.0.1:$ONAIRD_PORT"
    PORT=$ONAIRD_PORT
    port_free "$PORT" || die "port $PORT is in use"
    check_quiet
    write_onaird_config
    if ! start_onaird; then
        ONAIRD_NOTE="onaird did not start (see its log): skipped"
    elif ! create_onaird_users; then
        ONAIRD_NOTE="onairctl account bulk-add failed: onaird skipped"
    fi
    stop_server
    if [ -z "$ONAIRD_NOTE" ]; then
        suite onaird
    else
        note "  $ONAIRD_NOTE"
        tail -n 5 "$WORK/onaird.out" 2>/dev/null | sed 's/^/  | /'
    fi
fi

# ---- the table ------------------------------------------------------------------------------

note ""
note "== comparison: median of $RUNS run(s); ratio = onaird / Prosody"
awk -v runs="$RUNS" -v users="$USERS" '
    { v[$1 "," $2] = $3 }
    function val(s, k) { return ((s "," k) in v) ? v[s "," k] : "-" }
    function ratio(a, b) { return (a == "-" || b == "-" || a + 0 == 0) ? "-" : sprintf("%.2f", b / a) }
    function row(label, k, target) {
        p = val("prosody", k); o = val("onaird", k)
        printf "%-40s %12s %12s %8s   %s\n", label, p, o, ratio(p, o), target
    }
    END {
        printf "%-40s %12s %12s %8s   %s\n", "metric", "Prosody", "onaird", "ratio", "target (onaird)"
        row("idle plaintext: KiB per connection", "idle_plain_kib", "<= 8")
        row("idle plaintext: connections up", "idle_plain_up", "of " users)
        row("idle TLS: KiB per connection", "idle_tls_kib", "<= 24")
        row("idle TLS: connections up", "idle_tls_up", "of " users "; target 10000 held")
        row("login plaintext: logins/s", "login_plain_rate", ">= 10000 (SCRAM-SHA-256)")
        row("login plaintext: p99 ms", "login_plain_p99", "")
        row("login plaintext: server CPU %", "login_plain_scpu", "")
        row("login plaintext: tool CPU %", "login_plain_cpu", "(>85: tool-bound)")
        row("login plaintext: per server CPU-second", "login_plain_per", ">= 10000")
        row("login TLS: logins/s", "login_tls_rate", "")
        row("login TLS: p99 ms", "login_tls_p99", "")
        row("login TLS: server CPU %", "login_tls_scpu", "")
        row("login TLS: tool CPU %", "login_tls_cpu", "(>85: tool-bound)")
        row("login TLS: per server CPU-second", "login_tls_per", "")
        row("msgs closed loop: delivered msgs/s", "msgs_peak_rate", ">= 150000")
        row("msgs closed loop: p99 ms", "msgs_peak_p99", "")
        row("msgs closed loop: server CPU %", "msgs_peak_scpu", "")
        row("msgs closed loop: tool CPU %", "msgs_peak_cpu", "(>85: tool-bound)")
        row("msgs closed loop: per server CPU-second", "msgs_peak_per", ">= 150000")
        row("msgs at half that rate: msgs/s", "msgs_half_rate", "")
        row("msgs at half that rate: p99 ms", "msgs_half_p99", "< 10")
        row("msgs at half that rate: server CPU %", "msgs_half_scpu", "")
    }' "$WORK/medians"
[ -n "$ONAIRD_NOTE" ] && note "($ONAIRD_NOTE)"
other=$(grep -v '^$' "$WORK/other" 2>/dev/null | sort -g | tail -n 1)
if [ -n "$other" ]; then
    note "busiest kept login/msgs run: other processes used $other% of a core$(echo "$other" |
        awk '$1 > 10 { printf " - those figures are distorted" }')"
fi
note ""
note "done in $(elapsed) s; every run's JSON line: results.jsonl in the work folder (--keep)"
