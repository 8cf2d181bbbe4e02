"""Media peers for the live stream tests (specs/media.md): SRTP over UDP on
loopback with python3-pylibsrtp (libsrtp2), synthetic H.264 RTP, and
ffmpeg as a real encoder (broadcaster) and decoder (viewer).

    tx = SrtpPeer(key)                     # a UDP socket on 127.0.0.1 and an outbound SRTP context
    tx.send_rtp(server, seq, ts, payload)  # protected with key
    rx = SrtpPeer(server_key, inbound=True)
    pkt = await rx.recv_rtp()              # unprotected with the server's key: an Rtp

Every wait is bounded.
"""
import asyncio
import base64
import os
import re
import shutil
import socket
import struct
import subprocess
import time

import pylibsrtp

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
WAIT = 5.0


def health(srv):
    """onairctl health as a dict of ints (where they are numbers)."""
    out = {}
    for line in srv.ctl("health").stdout.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            out[name] = int(value) if value.isdigit() else value
    return out


def free_udp_pair():
    """An even UDP port P with P + 1 free too (for RTP and RTCP)."""
    for _ in range(200):
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        p = a.getsockname()[1]
        if p % 2 or p >= 65534:
            a.close()
            continue
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            b.bind(("127.0.0.1", p + 1))
        except OSError:
            a.close()
            b.close()
            continue
        a.close()
        b.close()
        return p
    raise AssertionError("no free UDP port pair")


class Rtp:
    def __init__(self, data):
        b0, b1, self.seq, self.ts, self.ssrc = struct.unpack("!BBHII", data[:12])
        self.marker = bool(b1 & 0x80)
        self.pt = b1 & 0x7F
        self.payload = data[12 + 4 * (b0 & 0x0F):]
        self.raw = data


def rtp(seq, ts, payload, pt=96, ssrc=0x11223344, marker=False):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


# H.264 payloads (RFC 6184): NAL headers with nal_ref_idc 3.
def nal(nal_type, size=20, fill=0x42):
    return bytes([0x60 | nal_type]) + bytes([fill]) * (size - 1)


def stap_a(*nals):
    out = bytes([0x78])  # F=0, NRI=3, type 24
    for n in nals:
        out += struct.pack("!H", len(n)) + n
    return out


def fu_a(nal_type, part, start, end):
    return bytes([0x7C, (0x80 if start else 0) | (0x40 if end else 0) | nal_type]) + part


def pli(sender_ssrc, media_ssrc):
    """RTCP payload-specific feedback, picture loss indication (RFC 4585 6.3.1)."""
    return struct.pack("!BBHII", 0x81, 206, 2, sender_ssrc, media_ssrc)


def nack(sender_ssrc, media_ssrc, pid):
    return struct.pack("!BBHIIHH", 0x81, 205, 3, sender_ssrc, media_ssrc, pid, 0)


def receiver_report(ssrc):
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


class SrtpPeer:
    """A UDP socket on 127.0.0.1 (port given or free) with an SRTP context:
    outbound (protects with key) or inbound (unprotects with key)."""

    PROFILES = {"AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
                "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
                "AEAD_AES_128_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM}

    def __init__(self, key, inbound=False, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.set_key(key, inbound)

    def set_key(self, key, inbound, suite="AES_CM_128_HMAC_SHA1_80"):
        kind = pylibsrtp.Policy.SSRC_ANY_INBOUND if inbound else pylibsrtp.Policy.SSRC_ANY_OUTBOUND
        self.srtp = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=kind, srtp_profile=self.PROFILES[suite]))

    def send_raw(self, to, data):
        self.sock.sendto(data, to)

    def send_rtp(self, to, seq, ts, payload, **kw):
        p = self.srtp.protect(rtp(seq, ts, payload, **kw))
        self.sock.sendto(p, to)
        return p

    def send_rtcp(self, to, packet):
        p = self.srtp.protect_rtcp(packet)
        self.sock.sendto(p, to)
        return p

    async def recv_raw(self, timeout=WAIT):
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recvfrom(self.sock, 65536), timeout)

    async def recv_rtp(self, timeout=WAIT):
        """The next RTP packet, unprotected (RTCP that arrives meanwhile is skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            data, _ = await self.recv_raw(max(0.01, deadline - time.monotonic()))
            if 192 <= data[1] <= 223:
                continue
            return Rtp(self.srtp.unprotect(data))

    async def recv_rtcp(self, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            data, _ = await self.recv_raw(max(0.01, deadline - time.monotonic()))
            if 192 <= data[1] <= 223:
                return self.srtp.unprotect_rtcp(data)

    async def silent(self, seconds):
        """True when nothing arrives for `seconds`."""
        try:
            await self.recv_raw(seconds)
        except asyncio.TimeoutError:
            return True
        return False

    def close(self):
        self.sock.close()


# ---- ffmpeg ----

def b64(key):
    return base64.b64encode(key).decode()


def ffmpeg_cast(server, video=None, audio=None, seconds=6, size="320x240", pattern="testsrc2", gop=25,
                profile=None):
    """ffmpeg encoding a test pattern (H.264, 25 fps, one keyframe a second)
    and a 440 Hz tone (Opus) live (a keyframe every `gop` frames), each sent as SRTP to the server's
    media address from a fixed local port: video=(local_port, key),
    audio=(local_port, key); profile e.g. "baseline".  Returns the Popen."""
    host, port = server
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin"]
    if video:
        cmd += ["-re", "-f", "lavfi", "-i", f"{pattern}=size={size}:rate=25"]
    if audio:
        cmd += ["-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    cmd += ["-t", str(seconds)]
    i = 0
    if video:
        cmd += ["-map", f"{i}:v", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(gop), "-keyint_min", str(gop),
                *(["-profile:v", profile] if profile else []), "-pix_fmt", "yuv420p", "-b:v", "600k", "-payload_type", "96", "-f", "rtp",
                "-srtp_out_suite", "AES_CM_128_HMAC_SHA1_80", "-srtp_out_params", b64(video[1]),
                f"srtp://{host}:{port}?rtcpport={port}&localrtpport={video[0]}&pkt_size=1200"]
        i += 1
    if audio:
        cmd += ["-map", f"{i}:a", "-c:a", "libopus", "-b:a", "48k", "-payload_type", "111", "-f", "rtp",
                "-srtp_out_suite", "AES_CM_128_HMAC_SHA1_80", "-srtp_out_params", b64(audio[1]),
                f"srtp://{host}:{port}?rtcpport={port}&localrtpport={audio[0]}&pkt_size=1200"]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def write_sdp(path, video=None, audio=None):
    """An SDP file for a receiving ffmpeg: video=(port, pt, key), audio=(port, pt, key)."""
    lines = ["v=0", "o=- 0 0 IN IP4 127.0.0.1", "s=onair", "c=IN IP4 127.0.0.1", "t=0 0"]
    if video:
        lines += [f"m=video {video[0]} RTP/SAVP {video[1]}", f"a=rtpmap:{video[1]} H264/90000",
                  f"a=fmtp:{video[1]} packetization-mode=1",
                  f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{b64(video[2])}"]
    if audio:
        lines += [f"m=audio {audio[0]} RTP/SAVP {audio[1]}", f"a=rtpmap:{audio[1]} opus/48000/2",
                  f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{b64(audio[2])}"]
    path.write_text("\n".join(lines) + "\n")


def ffmpeg_view(sdp, outdir, frames, video=True, audio=False, timeout_s=20):
    """ffmpeg receiving and decoding: video frames to outdir/frame%04d.png
    (at most `frames`), audio to outdir/audio.wav.  Returns the Popen."""
    outdir.mkdir(parents=True, exist_ok=True)
    cmd = [FFMPEG, "-hide_banner", "-loglevel", os.environ.get("ONAIR_FFMPEG_LOGLEVEL", "warning"), "-nostdin", "-protocol_whitelist", "file,udp,rtp",
           "-analyzeduration", "300000", "-probesize", "65536",
           "-rw_timeout", str(timeout_s * 1000000), "-i", str(sdp)]
    if video:
        cmd += ["-map", "0:v:0", "-frames:v", str(frames), "-f", "image2", str(outdir / "frame%04d.png")]
    if audio:
        cmd += ["-map", "0:a:0", "-t", "3", str(outdir / "audio.wav")]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def best_ssim(png, seconds, pattern="testsrc2", size="320x240"):
    """The highest SSIM (All) of a decoded frame against the first `seconds`
    of the pattern generated here by ffmpeg."""
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-loop", "1", "-i", str(png), "-f", "lavfi",
           "-i", f"{pattern}=size={size}:rate=25:duration={seconds}", "-lavfi",
           "[0:v]format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]ssim=stats_file=-:shortest=1", "-f", "null", "-"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    values = [float(v) for v in re.findall(r"All:([0-9.]+)", r.stdout + r.stderr)]
    assert values, f"ssim gave nothing: {r.stderr[-2000:]}"
    return max(values)


def wav_seconds(path):
    """Duration of a PCM WAV file from its header and size."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", "not a WAV file"
    channels, rate = struct.unpack("<HI", data[22:28])
    bits = struct.unpack("<H", data[34:36])[0]
    i = data.find(b"data")
    n = struct.unpack("<I", data[i + 4:i + 8])[0]
    n = min(n, len(data) - i - 8)
    return n / (rate * channels * bits / 8)


def stop(proc, timeout=10):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stderr.read().decode(errors="replace") if proc.stderr else ""


def pngs(outdir):
    return sorted(outdir.glob("frame*.png"))


def random_key():
    return os.urandom(30)


class Forwarder:
    """A player's front: UDP sockets bound on a port pair before the session
    is negotiated (as a player listens before it asks), keeping what arrives
    until the decoder behind it (ffmpeg, started once the key is known) has
    bound its own pair, then passing everything on in order."""

    def __init__(self):
        self.port = free_udp_pair()
        self.socks = []
        for p in (self.port, self.port + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", p))
            s.setblocking(False)
            self.socks.append(s)
        self.target = None
        self.kept = [[], []]
        self.tasks = []

    def start(self):
        loop = asyncio.get_running_loop()
        for i in range(2):
            self.tasks.append(loop.create_task(self._pump(i)))

    async def _pump(self, i):
        loop = asyncio.get_running_loop()
        s = self.socks[i]
        while True:
            data, _ = await loop.sock_recvfrom(s, 65536)
            if self.target is None or self.kept[i]:
                self.kept[i].append(data)
            else:
                self._send(i, data)

    def _send(self, i, data):
        try:
            self.socks[i].sendto(data, ("127.0.0.1", self.target + i))
        except OSError:
            pass

    async def deliver_to(self, port, timeout=5.0):
        """Once something is bound on port (the decoder), pass on what was
        kept and everything after."""
        deadline = time.monotonic() + timeout
        while True:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                break  # taken: the decoder is listening
            finally:
                probe.close()
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on {port}")
            await asyncio.sleep(0.01)
        self.target = port
        for i in range(2):
            kept, self.kept[i] = self.kept[i], []
            for data in kept:
                self._send(i, data)

    def close(self):
        for t in self.tasks:
            t.cancel()
        for s in self.socks:
            s.close()
