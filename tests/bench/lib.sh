# tests/bench/lib.sh - the harness shared by run.sh and muc.sh (sourced, not run).
#
# The sourcing script sets, before `. lib.sh`:
#   SCRIPT   its name, for messages          ROOT    the repository
#   WORK     its temporary work folder        START   its start time (date +%s)
#   BUDGET   seconds; later steps are skipped  KEEP    1 keeps WORK on exit
#   PORT, DOMAIN, PREFIX, PASSWORD (accounts' password, written to $WORK/password)
# and then calls bench_prepare, which bounds the whole script (BUDGET plus 4
# minutes), installs what is missing, builds onair-bench into $BENCH and sets
# PIN_SERVER / PIN_TOOL (server on core 1, tool on core 0).  Servers are
# started with run_server; stop_server and the exit trap end them.

SERVER_PID=""
WATCHDOG=""
LAST_JSON=""
RETRY=0

note() { printf '%s\n' "$*"; }
die() {
    printf '%s: %s\n' "$SCRIPT" "$*" >&2
    exit 1
}
elapsed() { echo $(($(date +%s) - START)); }
over_budget() { [ "$(elapsed)" -ge "$BUDGET" ]; }

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        i=0
        while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.2
            i=$((i + 1))
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

cleanup() {
    stop_server
    if [ -n "$WATCHDOG" ]; then kill "$WATCHDOG" 2>/dev/null || true; fi
    if [ "$KEEP" = 1 ]; then
        note "work folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}

# bench_prepare: the exit trap, the watchdog, prerequisites, the tool, pinning.
bench_prepare() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM HUP

    # Hard bound of the whole script: the budget plus time for the last step.
    SCRIPT_PID=$$
    (
        trap 'kill "$sp" 2>/dev/null; exit 0' TERM
        sleep $((BUDGET + 240)) &
        sp=$!
        wait "$sp" && kill -TERM "$SCRIPT_PID" 2>/dev/null
    ) >/dev/null 2>&1 &
    WATCHDOG=$!

    need_setup=0
    for t in gcc pkg-config openssl taskset timeout curl; do
        command -v $t >/dev/null 2>&1 || need_setup=1
    done
    pkg-config --exists libuv openssl libgsasl expat 2>/dev/null || need_setup=1
    [ -f /usr/include/wslay/wslay.h ] || need_setup=1 # libwslay-dev (no pkg-config file)
    if [ $need_setup = 1 ]; then
        note "installing build dependencies (tests/setup.sh)"
        sh "$ROOT/tests/setup.sh" >/dev/null
        command -v curl >/dev/null 2>&1 || apt-get install -y -qq curl >/dev/null
    fi
    if ! command -v prosody >/dev/null 2>&1; then
        note "installing prosody"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prosody >/dev/null
        # Debian starts it as a service on install; this benchmark runs its own.
        (service prosody stop || true) >/dev/null 2>&1
    fi

    BENCH="$WORK/onair-bench"
    # shellcheck disable=SC2046
    gcc -std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Wshadow -Werror -Wno-unused-parameter \
        "$ROOT"/tests/bench/*.c $(pkg-config --cflags --libs libuv openssl libgsasl expat) -lwslay -lm \
        -o "$BENCH" || die "building onair-bench failed"

    if [ "$(nproc)" -ge 2 ]; then
        PIN_SERVER="taskset -c 1"
        PIN_TOOL="taskset -c 0"
    else
        PIN_SERVER=""
        PIN_TOOL=""
        note "note: fewer than 2 cores, server and tool are not pinned"
    fi
    printf '%s\n' "$PASSWORD" >"$WORK/password"
}

# run_server LOG CMD...: starts a server on the server core with the hard
# limit of open files, output appended to LOG; sets SERVER_PID and waits
# until it answers on $PORT (returns 1 with the log's tail if it does not).
run_server() {
    log=$1
    shift
    (
        # shellcheck disable=SC3045 # dash and bash both have -H and -n
        ulimit -n "$(ulimit -H -n)" 2>/dev/null || true
        # shellcheck disable=SC2086
        exec $PIN_SERVER "$@"
    ) >>"$log" 2>&1 &
    SERVER_PID=$!
    wait_ready || {
        tail -n 20 "$log" >&2 2>/dev/null || true
        return 1
    }
}

# ---- running the tool ---------------------------------------------------------------

# bench LABEL MODE ARGS...: runs the tool on core 0, bounded; keeps the JSON.
bench() {
    label=$1
    shift
    out="$WORK/last.out"
    set +e
    # shellcheck disable=SC2086
    $PIN_TOOL timeout -k 5 900 "$BENCH" "$@" --port "$PORT" --domain "$DOMAIN" --prefix "$PREFIX" \
        --password-file "$WORK/password" --label "$label" ${SERVER_PID:+--server-pid "$SERVER_PID"} \
        >"$out" 2>&1
    rc=$?
    set -e
    { echo "## $label: onair-bench $*"; cat "$out"; } >>"$WORK/bench.log"
    LAST_JSON=$(grep '^{' "$out" | tail -n 1 || true)
    [ -n "$LAST_JSON" ] && printf '%s\n' "$LAST_JSON" >>"$WORK/results.jsonl"
    return $rc
}
jget() { printf '%s\n' "$LAST_JSON" | sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" | tr -d '"'; }
first_err() {
    e=$(printf '%s\n' "$LAST_JSON" | sed -n 's/.*"first_error":"\([^"]*\)".*/\1/p')
    [ -n "$e" ] && printf '; first failure: %s' "$e"
    [ -n "$LAST_JSON" ] || printf '; no result (see bench.log)'
    return 0
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {
    if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
# busy_pct: percent of all CPUs busy over two seconds (other work on the
# machine distorts every figure; the servers are stopped when this runs).
busy_pct() {
    a=$(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5+$6}' /proc/stat)
    sleep 2
    b=$(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5+$6}' /proc/stat)
    echo "$a $b" | awk '{t=$3-$1; i=$4-$2; if (t <= 0) print 0; else printf "%.0f\n", 100*(t-i)/t}'
}
check_quiet() {
    busy=$(busy_pct)
    if [ "$busy" -gt 5 ]; then
        note "  WARNING: the machine is already $busy% busy without the benchmark; figures will be low"
    else
        note "  machine idle before this part ($busy% busy)"
    fi
}
# contended: true when other processes used more than 10% of a core during
# the last run (its figures are then repeated, at most twice per run).
contended() {
    printf '%s\n' "$(jget other_cpu_pct)" | awk '{ exit !($1 > 10) }'
}
# retry_run: after a run; true (and a note) if it should be run again.
retry_run() {
    if contended && [ "$RETRY" -lt 2 ] && ! over_budget; then
        RETRY=$((RETRY + 1))
        note "    (other processes used $(jget other_cpu_pct)% of a core: repeating the run)"
        return 0
    fi
    RETRY=0
    printf '%s\n' "$(jget other_cpu_pct)" >>"$WORK/other" # kept runs
    return 1
}
# record SERVER KEY VALUE
record() { printf '%s %s %s\n' "$1" "$2" "$3" >>"$WORK/medians"; }

# Waits until the server answers on $PORT, and checks that the listener is
# ours (another program could take the port while our server is stopped).
wait_ready() {
    i=0
    while [ $i -lt 60 ]; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            return 1
        fi
        if "$BENCH" probe --port "$PORT" --domain "$DOMAIN" --timeout 1 --quiet >/dev/null 2>&1; then
            if command -v ss >/dev/null 2>&1 &&
                ! ss -ltnpH "sport = :$PORT" 2>/dev/null | grep -q "pid=$SERVER_PID,"; then
                note "  port $PORT answers, but not from our server (pid $SERVER_PID)" >&2
                return 1
            fi
            return 0
        fi
        sleep 0.5
        i=$((i + 1))
    done
    return 1
}

port_free() {
    ! "$BENCH" probe --port "$1" --timeout 1 --quiet >/dev/null 2>&1
}
