# tests/bench/lib.sh - the harness shared by run.sh, muc.sh and ws.sh (sourced,
# not run).
#
# The sourcing script sets, before `. lib.sh`:
#   SCRIPT   its name, for messages          ROOT    the repository
#   BUDGET   seconds; later steps are skipped  KEEP    1 keeps WORK on exit
# and PORT (the server's c2s port) before starting a server; lib.sh makes
#   WORK     the temporary work folder        START   the start time (date +%s)
#   DOMAIN, PREFIX (accounts PREFIX1..), PASSWORD (theirs, written to $WORK/password)
# The script then calls bench_prepare, which bounds the whole script (BUDGET plus 4
# minutes), installs what is missing, builds onair-bench into $BENCH and sets
# PIN_SERVER / PIN_TOOL (server on core 1, tool on core 0).  Servers are
# started with run_server; stop_server and the exit trap end them.  The chat
# room scripts (muc.sh, ws.sh) also use the Prosody and onaird helpers at the
# end (configurations, accounts, booking a live over onaird's HTTP API).

WORK=$(mktemp -d "${TMPDIR:-/tmp}/onair-${SCRIPT%.sh}bench.XXXXXX")
START=$(date +%s)
PASSWORD="bench-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
PREFIX=bench
DOMAIN=localhost

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
# note_busiest: after the table, the most other load any kept run had.
note_busiest() {
    other=$(grep -v '^$' "$WORK/other" 2>/dev/null | sort -g | tail -n 1)
    if [ -n "$other" ]; then
        note "busiest kept run: other processes used $other% of a core$(echo "$other" |
            awk '$1 > 10 { printf " - those figures are distorted" }')"
    fi
}

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

# ---- Prosody and onaird --------------------------------------------------------------
#
# The sourcing script also sets PROSODY_PORT, ONAIRD_PORT, ONAIRD_HTTP_PORT and
# CHANNELS (onaird channels: one booked per onaird start) for the chat room
# helpers, and chooses Prosody's parts: PROSODY_TLS=1 (STARTTLS with the
# certificate in $WORK/certs: run.sh), PROSODY_MUC=0 (no MUC component: run.sh),
# PROSODY_HTTP_PORT (mod_websocket on that HTTP port: ws.sh); ONAIRD_HTTP_EXTRA
# adds settings to onaird's http group (ws.sh).

PROSODY_ROOM="bench@conference.$DOMAIN"
PROSODY_TLS=${PROSODY_TLS:-0}
PROSODY_MUC=${PROSODY_MUC:-1}
PROSODY_HTTP_PORT=${PROSODY_HTTP_PORT:-}
ONAIRD_HTTP_EXTRA=${ONAIRD_HTTP_EXTRA:-}

write_prosody_config() {
    mkdir -p "$WORK/prosody-data"
    p_mods='"roster", "saslauth", "register"'
    p_http="{ }"
    [ "$PROSODY_TLS" = 1 ] && p_mods="$p_mods, \"tls\""
    if [ -n "$PROSODY_HTTP_PORT" ]; then
        p_http="{ $PROSODY_HTTP_PORT }"
        p_mods="$p_mods, \"websocket\""
    fi
    cat >"$WORK/prosody.cfg.lua" <<EOC
-- Private Prosody configuration of tests/bench/$SCRIPT (loopback only).
run_as_root = true -- the benchmark runs as root; no privilege switch
pidfile = "$WORK/prosody.pid"
data_path = "$WORK/prosody-data"
plugin_paths = { }
log = { { levels = { min = "warn" }, to = "file", filename = "$WORK/prosody.log" } }
interfaces = { "127.0.0.1" }
c2s_ports = { $PROSODY_PORT }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
-- XMPP over WebSocket (mod_websocket, RFC 7395) when the script asks for it:
-- ws://127.0.0.1:PORT/xmpp-websocket, plaintext like c2s
http_interfaces = { "127.0.0.1" }
http_ports = $p_http
https_ports = { }
modules_enabled = { $p_mods }
-- "limits" (c2s/s2s read rate limits) is named so that it cannot be loaded
modules_disabled = { "s2s", "s2s_auth_certs", "offline", "limits" }
c2s_require_encryption = false -- plaintext runs (STARTTLS stays offered with tls)
allow_registration = true -- accounts are created by in-band registration
authentication = "internal_hashed"
password_hash = "SHA-256" -- offer SCRAM-SHA-256 (0.12 defaults to SHA-1)
storage = "internal"
network_settings = { tcp_backlog = 1024 }
EOC
    if [ "$PROSODY_TLS" = 1 ]; then
        cat >>"$WORK/prosody.cfg.lua" <<EOC
certificates = "$WORK/certs"
ssl = { certificate = "$WORK/certs/$DOMAIN.crt", key = "$WORK/certs/$DOMAIN.key" }
EOC
    fi
    echo "VirtualHost \"$DOMAIN\"" >>"$WORK/prosody.cfg.lua"
    [ "$PROSODY_MUC" = 1 ] || return 0
    cat >>"$WORK/prosody.cfg.lua" <<EOC

-- The chat rooms.  A room is made by its first occupant (the tool's occupant
-- 0, before the measurement), who becomes its owner (a moderator); rooms
-- are not locked until configured.  Presence is broadcast for moderators
-- only (0.12: the default of the room's muc#roomconfig_presencebroadcast),
-- so a joining occupant gets its own presence and the owner's.  History
-- keeps Prosody's default of 20 messages (joins ask for none).  Prosody
-- 0.12 has no MUC rate limit of its own; mod_limits is not loaded.
Component "conference.$DOMAIN" "muc"
    muc_room_locking = false
    muc_room_default_presence_broadcast = { moderator = true }
    muc_room_default_history_length = 20
    muc_tombstones = false
EOC
}

start_prosody() {
    ROOM=$PROSODY_ROOM # muc.sh, ws.sh
    run_server "$WORK/prosody.out" prosody -F --config "$WORK/prosody.cfg.lua" || {
        tail -n 20 "$WORK/prosody.log" >&2 2>/dev/null || true
        return 1
    }
}

# create_prosody_users N [C [TIMEOUT]]: N accounts by in-band registration,
# C streams at once (20), within TIMEOUT seconds (600).
create_prosody_users() {
    bench "prosody/register" register -n "$1" -c "${2:-20}" --setup-timeout "${3:-600}" ||
        die "registering $1 accounts on prosody failed: $(jget first_error)"
    note "  accounts: $(jget registered) created, $(jget exists) existed in $(jget elapsed_s) s"
}

ONAIRD="$ROOT/build/release/onaird"
ONAIRCTL="$ROOT/build/release/onairctl"
CHANNEL_NEXT=1

# build_onaird: builds build/release when onaird or onairctl is missing;
# false (and a note) when they are still missing.
build_onaird() {
    if [ ! -x "$ONAIRD" ] || [ ! -x "$ONAIRCTL" ]; then
        note "== building onaird (build/release)"
        (cmake -S "$ROOT" -B "$ROOT/build/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
            cmake --build "$ROOT/build/release" -j 2 --target onaird onairctl >/dev/null) ||
            note "   the build failed"
    fi
    [ -x "$ONAIRD" ] && [ -x "$ONAIRCTL" ]
}

# write_onaird_config: onaird's private configuration; with ONAIRD_ROOMS=0
# (run.sh) no HTTP listener and no channels, else the chat room settings of
# muc.sh and ws.sh.
ONAIRD_ROOMS=${ONAIRD_ROOMS:-1}
write_onaird_config() {
    mkdir -p "$WORK/onaird-data" "$WORK/certs"
    {
        cat <<EOC
# Private onaird configuration of tests/bench/$SCRIPT (loopback only).
server = {
  domain = "$DOMAIN";
  guest_domain = "";
  data_dir = "$WORK/onaird-data";
  admin_socket = "$WORK/onaird-admin.sock";
  log_level = "warn";
};
tls = { certificate = "$WORK/certs/$DOMAIN.crt"; key = "$WORK/certs/$DOMAIN.key"; generate = true; };
c2s = {
  listen = ["127.0.0.1"];
  port = $ONAIRD_PORT;
  direct_tls_port = 0;
  require_tls = false;
  max_connections = 100000;
};
EOC
        if [ "$ONAIRD_ROOMS" != 1 ]; then
            echo "http = { port = 0; };"
            return 0
        fi
        cat <<EOC
http = { listen = ["127.0.0.1"]; port = $ONAIRD_HTTP_PORT;$ONAIRD_HTTP_EXTRA };
# One-minute slots, no reconfirmation deadline before the start, and rooms
# open an hour before the start: a live booked for the next minute and
# reconfirmed has its room open at once.
reservation = { timezone = "UTC"; slot_s = 60; };
schedule = { reconfirm_before_s = 0; room_open_before_s = 3600; };
# Presence broadcast is restricted beyond 100 occupants.
muc = { presence_broadcast_limit = 100; rate_per_s = 1000000; rate_burst = 1000000; };
# One channel per measurement (each books a fresh live on the next one).
channels = (
EOC
        i=1
        while [ $i -le "$CHANNELS" ]; do
            sep=","
            [ $i -eq "$CHANNELS" ] && sep=""
            printf '  { id = "mb%02d"; name = "MUC benchmark %d"; capacity = 10000; bandwidth_kbps = 2000; price_per_hour = 0; }%s\n' \
                $i $i "$sep"
            i=$((i + 1))
        done
        echo ");"
    } >"$WORK/onaird.conf"
}

# api METHOD PATH [BODY]: one request to onaird's HTTP API, bounded; sets
# API_STATUS (000 when there was no answer) and API_BODY.
API_TOKEN=""
api() {
    : >"$WORK/api.out"
    set +e
    if [ -n "$API_TOKEN" ]; then
        API_STATUS=$(curl -s --max-time 10 -X "$1" -o "$WORK/api.out" -w '%{http_code}' \
            -H 'Content-Type: application/json' -H "Authorization: Bearer $API_TOKEN" \
            --data "${3:-}" "http://127.0.0.1:$ONAIRD_HTTP_PORT$2")
    else
        API_STATUS=$(curl -s --max-time 10 -X "$1" -o "$WORK/api.out" -w '%{http_code}' \
            -H 'Content-Type: application/json' --data "${3:-}" "http://127.0.0.1:$ONAIRD_HTTP_PORT$2")
    fi
    set -e
    API_BODY=$(cat "$WORK/api.out")
    printf '%s %s -> %s %s\n' "$1" "$2" "$API_STATUS" "$API_BODY" >>"$WORK/api.log"
}
jfield() { printf '%s\n' "$API_BODY" | sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n 1; }

# book_live: a public live on the next channel from the next minute for 30
# minutes, reconfirmed at once; sets ROOM to its chat room.
book_live() {
    [ "$CHANNEL_NEXT" -le "$CHANNELS" ] || { BOOK_ERR="no channel left"; return 1; }
    ch=$(printf 'mb%02d' "$CHANNEL_NEXT")
    CHANNEL_NEXT=$((CHANNEL_NEXT + 1))
    API_TOKEN=""
    api POST /api/v1/session "{\"user\": \"booker\", \"password\": \"$PASSWORD\"}"
    tok=$(jfield token)
    if [ "$API_STATUS" != 201 ] || [ -z "$tok" ]; then
        BOOK_ERR="login as booker: HTTP $API_STATUS"
        return 1
    fi
    API_TOKEN=$tok
    now=$(date +%s)
    s=$(((now / 60 + 1) * 60))
    [ $((s - now)) -ge 5 ] || s=$((s + 60))
    st=$(date -u -d "@$s" +%Y-%m-%dT%H:%M:%SZ)
    en=$(date -u -d "@$((s + 1800))" +%Y-%m-%dT%H:%M:%SZ)
    api POST /api/v1/reservations "{\"channel\": \"$ch\", \"start\": \"$st\", \"end\": \"$en\", \"level\": \"public\", \"title\": \"MUC benchmark\", \"broadcast_password\": \"cast-secret\"}"
    id=$(jfield id)
    if [ "$API_STATUS" != 201 ] || [ -z "$id" ]; then
        BOOK_ERR="booking: HTTP $API_STATUS $(printf '%s' "$API_BODY" | cut -c1-200)"
        return 1
    fi
    api POST "/api/v1/reservations/$id/reconfirm" ""
    if [ "$API_STATUS" != 200 ]; then
        BOOK_ERR="reconfirming $id: HTTP $API_STATUS $(printf '%s' "$API_BODY" | cut -c1-200)"
        return 1
    fi
    room=$(jfield room_jid)
    ROOM=${room:-$id@live.$DOMAIN}
    printf '%s %s %s %s\n' "$ch" "$id" "$st" "$ROOM" >>"$WORK/bookings"
}

# onaird_part: builds onaird when missing; false (ONAIRD_NOTE says why,
# noted) when it cannot run or the time budget is spent.
onaird_part() {
    ONAIRD_NOTE=""
    note ""
    if ! build_onaird; then
        ONAIRD_NOTE="onaird not built ($ONAIRD missing): skipped"
    elif over_budget; then
        ONAIRD_NOTE="onaird skipped: over the time budget"
    else
        return 0
    fi
    note "== $ONAIRD_NOTE"
    return 1
}

# start_onaird [book]: a fresh onaird; with "book", a live booked on it (ROOM).
start_onaird() {
    run_server "$WORK/onaird.out" "$ONAIRD" -c "$WORK/onaird.conf" || return 1
    [ "${1:-book}" = book ] || return 0
    if ! book_live; then
        note "  booking the live over the HTTP API failed: $BOOK_ERR"
        return 1
    fi
}

create_onaird_users() {
    t0=$(date +%s)
    printf '%s\n' "$PASSWORD" | timeout -k 5 900 "$ONAIRCTL" -c "$WORK/onaird.conf" \
        account bulk-add "$PREFIX" "$1" >>"$WORK/onaird.out" 2>&1 || return 1
    printf '%s\n' "$PASSWORD" | timeout -k 5 60 "$ONAIRCTL" -c "$WORK/onaird.conf" \
        account add booker >>"$WORK/onaird.out" 2>&1 || return 1
    note "  accounts: $1 added with onairctl in $(($(date +%s) - t0)) s, and booker (who books the lives)"
}
