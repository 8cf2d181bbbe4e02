#!/bin/sh
# Quick start: installs what is missing, builds onair, and starts onaird on a
# demo configuration in ./demo (LMDB store, self-signed certificate made on
# first start, a demo account whose credentials are printed).  Ctrl-C stops it.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

sh tests/setup.sh
cmake -S "$ROOT" -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target onaird onairctl transcript web onair-cast onair-watch

DEMO="$ROOT/demo"
mkdir -p "$DEMO"
if [ ! -f "$DEMO/onaird.conf" ]; then
    cat > "$DEMO/onaird.conf" <<'CONF'
# onaird demo configuration (every key: specs/config.md)
server = {
  domain = "localhost";
  guest_domain = "guest.localhost";
  data_dir = "data";
  log_level = "info";
};
tls = { certificate = "certs/onair.crt"; key = "certs/onair.key"; generate = true; };
c2s = { listen = ["127.0.0.1", "::1"]; port = 5222; direct_tls_port = 5223; };
# The web pages on http://localhost:5280; their chat (XMPP over WebSocket)
# comes from this machine only, so it counts as encrypted (loopback_is_secure).
http = { listen = ["127.0.0.1", "::1"]; port = 5280; loopback_is_secure = true; };
reservation = { timezone = "UTC"; page_url = "http://localhost:5280/live/"; };
# transcript: each live's chat goes to its broadcaster when the room closes
# (specs/transcript.md).
plugins = { load = ["transcript"]; };
channels = (
  { id = "main"; name = "Main stage"; capacity = 200; bandwidth_kbps = 2500; price_per_hour = 3000; },
  { id = "side"; name = "Side room"; capacity = 20; bandwidth_kbps = 800; price_per_hour = 1000; }
);
CONF
fi
if [ ! -f "$DEMO/demo-password" ]; then
    (umask 077; openssl rand -base64 12 | tr -d '/+=\n' > "$DEMO/demo-password")
fi
PASSWORD=$(cat "$DEMO/demo-password")
if ! build/release/onairctl -c "$DEMO/onaird.conf" account list 2>/dev/null | grep -qx demo; then
    printf '%s\n' "$PASSWORD" | build/release/onairctl -c "$DEMO/onaird.conf" account add demo >/dev/null
    build/release/onairctl -c "$DEMO/onaird.conf" account email demo demo@localhost >/dev/null
fi
cat <<INFO

  onair demo server
  -----------------
  account:   demo@localhost
  password:  $PASSWORD
  guests:    any client, SASL ANONYMOUS on guest.localhost
  connect:   127.0.0.1 port 5222 (STARTTLS) or 5223 (direct TLS);
             the certificate is self-signed ($DEMO/certs/onair.crt)
  WebSocket: ws://127.0.0.1:5280/xmpp-websocket (subprotocol xmpp, RFC 7395)
  manage:    build/release/onairctl -c $DEMO/onaird.conf account add alice
  book:      ad-hoc commands on localhost (book, reconfirm, my-channel, ...),
             or the HTTP API below (specs/reservation.md)
  web pages: http://localhost:5280/ (the schedule; a live's page is /live/ID),
             http://localhost:5280/book and /channel (log in as demo)
  HTTP API:  http://127.0.0.1:5280 (specs/http-api.md), e.g.
             curl -d '{"user":"demo","password":"..."}' -H 'Content-Type: application/json' \
                  http://127.0.0.1:5280/api/v1/session
  transcript: sent to the broadcaster when a live's room closes; later:
             GET /api/v1/reservations/<id>/transcript (specs/transcript.md)

INFO
exec build/release/onaird -c "$DEMO/onaird.conf"
