// The live's player (F19): the stream from the media WebSocket
// (specs/media.md, "Browsers") decoded with WebCodecs' VideoDecoder (H.264,
// Annex B) and drawn on a canvas.  The token comes from the page's chat
// connection (RoomChat.mediaToken): one shared password covers chat and
// stream (F20).
//
// Messages: JSON text ({type: "waiting"|"playing"|"ended"|"error",
// message}; {type: "clock", kind, rtp, ntp_ms}, the broadcaster's sender
// reports) and binary ones: byte 0 the kind (1: an H.264 access unit in
// Annex B form; 2: an Opus packet), byte 1 the flags (bit 0: keyframe),
// bytes 4-7 the RTP timestamp (90 kHz for video, 48 kHz for audio,
// big-endian), then the access unit or the packet.  The codec string comes
// from the SPS of the first keyframe.  The sound is decoded with
// AudioDecoder (Opus) and, once the viewer turns it on (browsers start
// sound only after a gesture), played through Web Audio: when both clocks
// are known, each packet at the time the picture of the same wall-clock
// time is drawn (lip sync; at once when the sound is late), otherwise in
// the order it came, 100 ms behind, as it arrives.
//
// Events (dispatched on the LivePlayer, an EventTarget):
//   state  {state: "connecting"|"waiting"|"playing"|"ended"|"error", text}
//   frame  {frames}       a picture was drawn (the count so far)
//   audio  {frames, synced} an Opus packet was decoded (the count so far;
//                         synced: how many were played in step with the pictures)

const KIND_H264 = 1;
const KIND_OPUS = 2;
const AUDIO_DELAY_S = 0.1; // what the sound is played behind, against jitter
const FLAG_KEY = 1;
const MAX_QUEUE = 30; // access units waiting in the decoder before we drop to the next keyframe
const RATES = { [KIND_H264]: 90000, [KIND_OPUS]: 48000 };
const SYNC_SLACK_S = 0.03; // how far the sound may drift from its picture before it is moved
const SYNC_STALE_S = 1; // pictures older than this on the AudioContext's clock no longer lead the sound

// "avc1.PPCCLL" from the first SPS (NAL type 7) of an Annex B access unit.
export function codecOf(au) {
  for (let i = 0; i + 7 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1 && (au[i + 3] & 0x1f) === 7) {
      const hex = (b) => b.toString(16).toUpperCase().padStart(2, "0");
      return `avc1.${hex(au[i + 4])}${hex(au[i + 5])}${hex(au[i + 6])}`;
    }
  }
  return null;
}

export class LivePlayer extends EventTarget {
  constructor(canvas) {
    super();
    this.canvas = canvas;
    this.frames = 0;
    this.state = "";
    this.ws = null;
    this.decoder = null;
    this.needKey = true;
    this.lastTs = null;
    this.time = 0; // microseconds, unwrapped from the 32-bit RTP timestamps
    this.audioFrames = 0;
    this.audioDecoder = null;
    this.audioLastTs = null;
    this.audioTime = 0;
    this.audioCtx = null; // made when the viewer turns the sound on
    this.muted = true;
    this.playAt = 0; // where the next sound goes on the AudioContext's clock
    this.clocks = {}; // kind -> {rtp, ntp_ms}: the latest sender report of each stream
    this.walls = new Map(); // video chunk timestamp -> its wall-clock time (ms), until drawn
    this.audioWalls = new Map(); // audio chunk timestamp -> its wall-clock time (ms), until played
    this.shown = null; // {ctxTime, wall}: the last picture drawn, on the AudioContext's clock
    this.synced = 0;
  }

  // The broadcaster's wall-clock time (ms) of an RTP timestamp of a kind, or null.
  _wall(kind, ts) {
    const c = this.clocks[kind];
    return c ? c.ntp_ms + (((ts - c.rtp) | 0) * 1000) / RATES[kind] : null;
  }

  // Sound on or off; on needs a user gesture the first time (the AudioContext).
  // Resolves to whether the sound plays.
  async setMuted(muted) {
    this.muted = muted;
    if (muted) return false;
    if (!this.audioCtx) this.audioCtx = new AudioContext({ sampleRate: 48000 });
    this.playAt = 0;
    await this.audioCtx.resume();
    return this.audioCtx.state === "running";
  }

  _set(state, text = "") {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, text } }));
  }

  // Opens the media WebSocket with {token, path, protocol}.
  start({ token, path, protocol }) {
    this.stop();
    if (!window.VideoDecoder || !window.EncodedVideoChunk) {
      this._set("error", "This browser cannot play the stream (no WebCodecs).");
      return;
    }
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
    const ws = new WebSocket(url, protocol);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this._set("connecting");
    ws.addEventListener("open", () => ws.send(token));
    ws.addEventListener("message", (ev) => {
      if (ws !== this.ws) return;
      if (typeof ev.data === "string") this._onText(ev.data);
      else this._onUnit(new Uint8Array(ev.data));
    });
    ws.addEventListener("close", (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this._closeDecoder();
      if (this.state !== "ended" && this.state !== "error") {
        this._set(ev.code === 1000 ? "ended" : "error", ev.reason || "The stream was interrupted.");
      }
    });
  }

  stop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
    this._closeDecoder();
  }

  _onText(text) {
    let m;
    try {
      m = JSON.parse(text);
    } catch (e) {
      return;
    }
    if (m.type === "waiting" || m.type === "playing" || m.type === "ended" || m.type === "error") this._set(m.type, m.message || "");
    else if (m.type === "clock" && RATES[m.kind] && Number.isFinite(m.rtp) && Number.isFinite(m.ntp_ms)) {
      this.clocks[m.kind] = { rtp: m.rtp >>> 0, ntp_ms: m.ntp_ms };
    }
  }

  _closeDecoder() {
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    this.decoder = null;
    this.needKey = true;
    this.lastTs = null;
    if (this.audioDecoder && this.audioDecoder.state !== "closed") this.audioDecoder.close();
    this.audioDecoder = null;
    this.audioLastTs = null;
    this.clocks = {};
    this.walls.clear();
    this.audioWalls.clear();
    this.shown = null;
  }

  _onAudio(bytes) {
    if (!window.AudioDecoder || !window.EncodedAudioChunk) return;
    const ts = ((bytes[4] << 24) | (bytes[5] << 16) | (bytes[6] << 8) | bytes[7]) >>> 0;
    if (this.audioLastTs !== null) this.audioTime += Math.round((((ts - this.audioLastTs) >>> 0) * 1e6) / 48000);
    this.audioLastTs = ts;
    const wall = this._wall(KIND_OPUS, ts);
    if (wall !== null && this.audioWalls.size < 500) this.audioWalls.set(this.audioTime, wall);
    if (!this.audioDecoder) {
      this.audioDecoder = new AudioDecoder({
        output: (data) => this._play(data),
        error: () => {
          this.audioDecoder = null; // the next packet starts a new one
        },
      });
      this.audioDecoder.configure({ codec: "opus", sampleRate: 48000, numberOfChannels: 2 });
    }
    try {
      this.audioDecoder.decode(new EncodedAudioChunk({ type: "key", timestamp: this.audioTime, data: bytes.subarray(8) }));
    } catch (e) {
      this.audioDecoder = null;
    }
  }

  // Where a sound of this wall-clock time goes on the AudioContext's clock to
  // be heard with its picture: the last picture drawn gives the mapping.
  _syncTime(wall, now) {
    const shown = this.shown;
    if (wall === undefined || !shown || now - shown.ctxTime > SYNC_STALE_S) return null;
    const at = shown.ctxTime + (wall - shown.wall) / 1000;
    return at > now + SYNC_STALE_S ? null : at;
  }

  _play(data) {
    this.audioFrames++;
    const wall = this.audioWalls.get(data.timestamp);
    for (const t of this.audioWalls.keys()) {
      if (t > data.timestamp) break;
      this.audioWalls.delete(t);
    }
    const ctx = this.audioCtx;
    if (!this.muted && ctx && ctx.state === "running") {
      const buf = ctx.createBuffer(data.numberOfChannels, data.numberOfFrames, data.sampleRate);
      for (let ch = 0; ch < data.numberOfChannels; ch++) {
        const plane = new Float32Array(data.numberOfFrames);
        data.copyTo(plane, { planeIndex: ch, format: "f32-planar" });
        buf.copyToChannel(plane, ch);
      }
      const now = ctx.currentTime;
      const at = this._syncTime(wall, now);
      if (at !== null) {
        // in step with the pictures: moved only when it has drifted (a click is better than a lag)
        if (Math.abs(this.playAt - at) > SYNC_SLACK_S || this.playAt < now) this.playAt = Math.max(at, now);
        this.synced++;
      } else if (this.playAt < now || this.playAt > now + 1) {
        // behind or too far ahead (a gap, a stall): start again just behind now
        this.playAt = now + AUDIO_DELAY_S;
      }
      const src = ctx.createBufferSource();
      src.buffer = buf;
      src.connect(ctx.destination);
      src.start(this.playAt);
      this.playAt += buf.duration;
    }
    this.dispatchEvent(new CustomEvent("audio", { detail: { frames: this.audioFrames, synced: this.synced } }));
    data.close();
  }

  _draw(frame) {
    const c = this.canvas;
    if (c.width !== frame.displayWidth || c.height !== frame.displayHeight) {
      c.width = frame.displayWidth;
      c.height = frame.displayHeight;
    }
    c.getContext("2d").drawImage(frame, 0, 0, c.width, c.height);
    const wall = this.walls.get(frame.timestamp);
    for (const t of this.walls.keys()) {
      if (t > frame.timestamp) break;
      this.walls.delete(t);
    }
    if (wall !== undefined && this.audioCtx) this.shown = { ctxTime: this.audioCtx.currentTime, wall };
    frame.close();
    this.frames++;
    if (this.state === "error") this._set("playing"); // decoding again from a keyframe
    this.dispatchEvent(new CustomEvent("frame", { detail: { frames: this.frames } }));
  }

  _onUnit(bytes) {
    if (bytes.length >= 9 && bytes[0] === KIND_OPUS) return this._onAudio(bytes);
    if (bytes.length < 9 || bytes[0] !== KIND_H264) return;
    const isKey = (bytes[1] & FLAG_KEY) !== 0;
    const ts = ((bytes[4] << 24) | (bytes[5] << 16) | (bytes[6] << 8) | bytes[7]) >>> 0;
    const au = bytes.subarray(8);
    if (this.lastTs !== null) this.time += Math.round((((ts - this.lastTs) >>> 0) * 1e6) / 90000);
    this.lastTs = ts;
    if (this.decoder && this.decoder.decodeQueueSize > MAX_QUEUE) this.needKey = true; // behind: catch up at the next keyframe
    if (this.needKey && !isKey) return;
    if (!this.decoder) {
      const codec = codecOf(au);
      if (!codec) return;
      this.decoder = new VideoDecoder({
        output: (frame) => this._draw(frame),
        error: (e) => {
          this.decoder = null;
          this.needKey = true;
          this._set("error", `The stream could not be decoded: ${e.message}`);
        },
      });
      this.decoder.configure({ codec, optimizeForLatency: true });
    }
    const wall = this._wall(KIND_H264, ts);
    if (wall !== null && this.walls.size < 500) this.walls.set(this.time, wall);
    try {
      this.decoder.decode(new EncodedVideoChunk({ type: isKey ? "key" : "delta", timestamp: this.time, data: au }));
      this.needKey = false;
    } catch (e) {
      this._closeDecoder();
    }
  }
}
