"""The Jingle side of the live stream benchmark (tests/bench/media.sh).

Against a running onaird: books and reconfirms a public live over HTTP,
negotiates the broadcaster's session and N viewer sessions (one guest with
N sessions, each its own UDP port and key) with the tests' Jingle client
(tests/integration/jingle.py), asks the media endpoint for M tokens of the
media WebSocket (the same guest: any client gets one for a public live),
then runs onair-media-bench with those ports, keys and tokens while the XMPP
streams stay up, and prints one JSON line: the tool's figures plus the
server's CPU time over the run (from /proc/<pid>/stat) and its media
counters (onairctl health).

    python3 media_run.py --c2s PORT --http PORT --pid PID --ctl "onairctl -c FILE" \
        --tool PATH --viewers N [--ws-viewers M] [--seconds S] [--kbps K] [--owner USER --password PW]
"""
import argparse
import asyncio
import json
import os
import pathlib
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import types

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import clients  # noqa: E402
import jingle  # noqa: E402
from jingle import Offer  # noqa: E402
from media_ws import media_token  # noqa: E402
from webapi import login, request  # noqa: E402


BATCH = 200  # Jingle sessions or tokens asked at once


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def cpu_ticks(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def health(ctl):
    out = {}
    for line in subprocess.run(shlex.split(ctl) + ["health"], capture_output=True, text=True,
                               timeout=10).stdout.splitlines():
        k, sep, v = line.partition(": ")
        if sep and v.isdigit():
            out[k] = int(v)
    return out


async def main(a):
    srv = types.SimpleNamespace(host="127.0.0.1", port=a.c2s, http_port=a.http, domain="localhost",
                                guest_domain="guest.localhost", groups={})
    tok = login(srv, a.owner, a.password)
    start = (int(time.time()) // 60 + 1) * 60 + 120 + a.slot * 3600
    body = {"channel": "bench", "start": iso(start), "end": iso(start + 3600), "level": "public",
            "title": "Benchmark live", "broadcast_password": "cast-secret"}
    r = request(srv, "POST", "/api/v1/reservations", body, token=tok)
    assert r.status == 201, r
    rid = r.json["reservation"]["id"]
    r = request(srv, "POST", f"/api/v1/reservations/{rid}/reconfirm", token=tok)
    assert r.status == 200, r
    media = f"{rid}@media.localhost"
    owner = jingle.watch(await clients.login(srv, f"{a.owner}@localhost", a.password, timeout=30))
    # the broadcaster's port and the viewers' in one go: never the same port twice
    ports = free_ports(a.viewers + 1)
    cast_port = ports.pop()
    offer = Offer("broadcast", password="cast-secret")
    c = offer.content("video", port=cast_port, pt=(96, "H264", 90000), rtcp_mux=True)
    await jingle.initiate(owner, media, "cast", offer)
    acc = await jingle.wait_accept(owner, "cast")
    server = acc.contents["video"]
    viewer = jingle.watch(await clients.login(srv, "guest.localhost", "", mech="ANONYMOUS", timeout=30))
    rss_before = health(a.ctl).get("rss_kb", 0)
    keys = []
    for first in range(0, a.viewers, BATCH):
        batch = range(first, min(first + BATCH, a.viewers))
        for i in batch:
            o = Offer("watch", credential=False)
            o.content("video", port=ports[i], pt=(96, "H264", 90000), rtcp_mux=True, suite=a.suite,
                      key=os.urandom(28 if a.suite == "AEAD_AES_128_GCM" else 30))
            iq = viewer.make_iq_set(ito=media)
            iq.append(o.xml(f"v{i}", str(viewer.boundjid)))
            iq.send()  # the acceptances are awaited below
        for i in batch:
            keys.append((await jingle.wait_accept(viewer, f"v{i}", timeout=60)).contents["video"].key)
    # the server's memory per viewer session (its SRTP contexts included), before any packet
    rss_viewers = health(a.ctl).get("rss_kb", 0)
    with tempfile.NamedTemporaryFile("w", delete=False, suffix=".sessions") as f:
        for p, k in zip(ports, keys):
            f.write(f"{p} {jingle.b64(k)}\n")
        sessions = f.name
    # The tokens last media.token_ttl_s (60 s) unused: asked last, just before the tool connects.
    live = types.SimpleNamespace(id=rid)
    tokens = []
    for first in range(0, a.ws_viewers, BATCH):
        batch = [media_token(viewer, live) for _ in range(first, min(first + BATCH, a.ws_viewers))]
        tokens += [t.text for t in await asyncio.gather(*batch)]
    with tempfile.NamedTemporaryFile("w", delete=False, suffix=".tokens") as f:
        f.writelines(t + "\n" for t in tokens)
        token_file = f.name
    h0, t0 = health(a.ctl), cpu_ticks(a.pid)
    cmd = [a.tool, "--server", f"{server.ip}:{server.port}", "--cast-port", str(cast_port), "--cast-key",
           jingle.b64(c["key"]), "--sessions", sessions, "--seconds", str(a.seconds), "--kbps", str(a.kbps),
           "--bare-seconds", str(a.bare_seconds), "--fanout-seconds", str(a.fanout_seconds), "--server-pid", str(a.pid), "--gop", str(a.gop), "--suite", a.suite]
    if a.ws_viewers:
        cmd += ["--ws-viewers", token_file, "--http", f"127.0.0.1:{a.http}",
                "--ws-connect-seconds", str(a.ws_connect_seconds)]
    if a.tool_cpu is not None:
        cmd = ["taskset", "-c", str(a.tool_cpu)] + cmd
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), a.seconds + a.bare_seconds * 4 + a.fanout_seconds + a.ws_connect_seconds + 60)
    t1, h1 = cpu_ticks(a.pid), health(a.ctl)
    os.unlink(sessions)
    os.unlink(token_file)
    res = json.loads(out.decode().strip().splitlines()[-1])
    hz = os.sysconf("SC_CLK_TCK")
    res["server_cpu_s"] = (t1 - t0) / hz
    res["server_packets_in"] = h1["media_packets_in"] - h0["media_packets_in"]
    res["server_packets_out"] = h1["media_packets_out"] - h0["media_packets_out"]
    res["server_send_errors"] = h1["media_send_errors"] - h0["media_send_errors"]
    # per core: over the stream alone (the tool reads the server's CPU time as it starts and ends)
    cpu = res["server_stream_cpu_s"] if res["server_stream_cpu_s"] > 0 else res["server_cpu_s"]
    res["server_pps_per_core"] = round(res["server_packets_out"] / cpu) if cpu else None
    res["server_pps"] = round(res["server_packets_out"] / res["seconds"])
    res["server_kib_per_viewer"] = round((rss_viewers - rss_before) / a.viewers, 2) if a.viewers else None
    print(json.dumps(res), flush=True)
    await jingle.terminate(owner, media, "cast")
    await clients.close_all()
    # The viewers' sessions end with the guest's stream; the next run's ports
    # must not meet one still open (its candidate address would be refused).
    deadline = time.monotonic() + 30
    while health(a.ctl).get("media_viewers", 0) > 0:
        if time.monotonic() > deadline:
            sys.exit("media_run: viewer sessions still open 30 s after the run")
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--c2s", type=int, required=True)
    p.add_argument("--http", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--ctl", required=True)
    p.add_argument("--tool", required=True)
    p.add_argument("--viewers", type=int, default=1000)
    p.add_argument("--ws-viewers", type=int, default=0, help="viewers on the media WebSocket alongside")
    p.add_argument("--ws-connect-seconds", type=float, default=30)
    p.add_argument("--gop", type=int, default=50, help="access units from one keyframe to the next")
    p.add_argument("--suite", default="AES_CM_128_HMAC_SHA1_80", choices=["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"],
                   help="the SRTP viewers' crypto suite")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--kbps", type=float, default=2000)
    p.add_argument("--bare-seconds", type=float, default=2)
    p.add_argument("--fanout-seconds", type=float, default=6,
                   help="the paced fan-out without a server (the delay's physical limit); 0: none")
    p.add_argument("--tool-cpu", type=int, default=None)
    p.add_argument("--slot", type=int, default=0, help="book the live this many hours later (one per run)")
    p.add_argument("--owner", default="caster")
    p.add_argument("--password", default="bench-pass")
    asyncio.run(main(p.parse_args()))
