// A guest in a live's chat room: XMPP over WebSocket (RFC 7395) with the
// @xmpp/client library (its browser bundle, /vendor/xmpp.min.js, is the
// global XMPP), SASL ANONYMOUS on the server's guest domain, and the room as
// XEP-0045 Multi-User Chat (specs/muc.md).  The library does the framing,
// the stream, SASL and binding; this file builds MUC stanzas with its xml()
// and reads them with its element API.
//
// Events (dispatched on the RoomChat, an EventTarget; detail as listed):
//   message   {kind: "message"|"notice"|"private"|"private-sent"|"subject",
//              nick, body, time (Date), history (bool)}
//   occupant  {nick, intro, role, affiliation, self, available}
//   count     {count}            occupant count of a large room
//   refused   {text}             a message of ours the room did not take
//   closed    {why: "left"|"destroyed"|"kicked"|"banned"|"disconnected", text}

const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const NS_DELAY = "urn:xmpp:delay";
const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
const NS_ONAIR_MUC = "urn:onair:muc";
const REL_WEBSOCKET = "urn:xmpp:alt-connections:websocket";
const NS_ONAIR_MEDIA = "urn:onair:media:1";

// Why entering the room failed: the stanza error's type, condition and text.
export class JoinError extends Error {
  constructor(type, condition, text) {
    super(text || condition);
    this.type = type;
    this.condition = condition;
    this.text = text || "";
  }
}

function randomId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The WebSocket endpoint from XEP-0156 (/.well-known/host-meta.json).
export async function discoverWebSocket() {
  const res = await fetch("/.well-known/host-meta.json", { cache: "no-store" });
  if (!res.ok) throw new Error("this server offers no XMPP over WebSocket");
  const meta = await res.json();
  const link = (meta.links || []).find((l) => l.rel === REL_WEBSOCKET && typeof l.href === "string");
  if (!link) throw new Error("this server offers no XMPP over WebSocket");
  return link.href;
}

function errorOf(stanza) {
  const e = stanza.getChild("error");
  if (!e) return new JoinError("cancel", "undefined-condition", "");
  const cond = e.children.find((c) => typeof c !== "string" && c.attrs.xmlns === NS_STANZAS && c.name !== "text");
  return new JoinError(e.attrs.type || "cancel", cond ? cond.name : "undefined-condition", e.getChildText("text", NS_STANZAS) || "");
}

function statusCodes(x) {
  return x ? x.getChildren("status").map((s) => s.attrs.code) : [];
}

export class RoomChat extends EventTarget {
  constructor({ service, domain, room }) {
    super();
    this.service = service;
    this.domain = domain;
    this.room = room; // bare room JID
    this.nick = null;
    this.xmpp = null;
    this.joined = false;
    this._pendingJoin = null;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // Connects as an anonymous guest and enters the room; resolves once the
  // room sent our own presence, rejects with a JoinError (or an Error when
  // the server cannot be reached).
  async join(nick, intro, password) {
    if (!window.XMPP) throw new Error("the chat library is missing from this server's pages");
    const { client, xml } = window.XMPP;
    if (!this.xmpp) {
      const xmpp = client({
        service: this.service,
        domain: this.domain,
        timeout: 10000,
        userAgent: xml("user-agent", { id: randomId() }),
      });
      xmpp.reconnect.stop(); // a new anonymous login would not be in the room
      xmpp.on("stanza", (s) => this._onStanza(s));
      xmpp.on("error", () => {}); // reported by start() or as "offline"
      xmpp.on("offline", () => this._onOffline());
      this.xmpp = xmpp;
      try {
        await xmpp.start();
      } catch (e) {
        this.xmpp = null;
        try {
          await xmpp.stop();
        } catch (e2) {
          // already down
        }
        throw new Error(`the chat server cannot be reached (${e.message || e})`);
      }
    }
    this.nick = nick;
    const x = xml("x", { xmlns: NS_MUC }, password ? xml("password", {}, password) : null, xml("history", { maxstanzas: "50" }));
    const presence = xml("presence", { to: `${this.room}/${nick}` }, x, intro ? xml("status", {}, intro) : null);
    const result = new Promise((resolve, reject) => {
      this._pendingJoin = { resolve, reject };
    });
    await this.xmpp.send(presence);
    return result;
  }

  async send(body) {
    const { xml } = window.XMPP;
    await this.xmpp.send(xml("message", { to: this.room, type: "groupchat", id: randomId() }, xml("body", {}, body)));
  }

  async sendPrivate(nick, body) {
    const { xml } = window.XMPP;
    await this.xmpp.send(
      xml("message", { to: `${this.room}/${nick}`, type: "chat", id: randomId() }, xml("body", {}, body), xml("x", { xmlns: NS_MUC_USER })),
    );
    this._emit("message", { kind: "private-sent", nick, body, time: new Date(), history: false });
  }

  // The participant list of the room (disco#items; XEP-0045 large rooms):
  // [{nick, intro}].
  async participants() {
    const { xml } = window.XMPP;
    const res = await this.xmpp.iqCaller.request(xml("iq", { type: "get", to: this.room }, xml("query", { xmlns: NS_DISCO_ITEMS })), 10000);
    const q = res.getChild("query", NS_DISCO_ITEMS);
    return (q ? q.getChildren("item") : []).map((i) => {
      const jid = i.attrs.jid || "";
      const nick = jid.slice(jid.indexOf("/") + 1);
      return { nick, intro: i.attrs.name && i.attrs.name !== nick ? i.attrs.name : "" };
    });
  }

  // A token for the live's media WebSocket (specs/media.md, "Browsers"),
  // asked of the live's media endpoint (mediaJid) over this connection: the
  // room's presence entered with the shared password is what authorises it.
  // Resolves to {token, path, protocol}; rejects with the library's
  // StanzaError (condition, text) when refused.
  async mediaToken(mediaJid) {
    const { xml } = window.XMPP;
    if (!this.xmpp) throw new Error("not connected");
    const res = await this.xmpp.iqCaller.request(xml("iq", { type: "get", to: mediaJid }, xml("token", { xmlns: NS_ONAIR_MEDIA })), 10000);
    const t = res.getChild("token", NS_ONAIR_MEDIA);
    if (!t || !t.text()) throw new Error("the server gave no media token");
    return { token: t.text(), path: t.attrs.path || "/media-websocket", protocol: t.attrs.protocol || "onair-media" };
  }

  // Leaves the room and ends the connection.
  async leave() {
    const xmpp = this.xmpp;
    if (!xmpp) return;
    const { xml } = window.XMPP;
    this._leaving = true;
    if (this.joined) {
      const gone = new Promise((resolve) => {
        this._leftResolve = resolve;
        setTimeout(resolve, 5000);
      });
      try {
        await xmpp.send(xml("presence", { to: `${this.room}/${this.nick}`, type: "unavailable" }));
        await gone;
      } catch (e) {
        // the connection is gone already
      }
    }
    this._finish("left", "");
  }

  _finish(why, text) {
    const xmpp = this.xmpp;
    const wasJoined = this.joined;
    this.xmpp = null;
    this.joined = false;
    if (this._pendingJoin) {
      this._pendingJoin.reject(new Error("the connection to the chat server ended"));
      this._pendingJoin = null;
    }
    if (xmpp) xmpp.stop().catch(() => {});
    if (wasJoined || why === "left") this._emit("closed", { why, text });
  }

  _onOffline() {
    if (this.xmpp && !this._leaving) this._finish("disconnected", "");
  }

  _fromRoom(stanza) {
    const from = stanza.attrs.from || "";
    const slash = from.indexOf("/");
    const bare = slash < 0 ? from : from.slice(0, slash);
    if (bare.toLowerCase() !== this.room.toLowerCase()) return null;
    return { nick: slash < 0 ? null : from.slice(slash + 1) };
  }

  _onStanza(stanza) {
    const from = this._fromRoom(stanza);
    if (!from) return;
    if (stanza.is("presence")) this._onPresence(stanza, from.nick);
    else if (stanza.is("message")) this._onMessage(stanza, from.nick);
  }

  _onPresence(stanza, nick) {
    const type = stanza.attrs.type;
    if (type === "error") {
      if (this._pendingJoin && !this.joined) {
        const err = errorOf(stanza);
        this._pendingJoin.reject(err);
        this._pendingJoin = null;
      }
      return;
    }
    const x = stanza.getChild("x", NS_MUC_USER);
    const codes = statusCodes(x);
    const item = x ? x.getChild("item") : null;
    const self = codes.includes("110");
    const available = type !== "unavailable";
    const occupant = {
      nick,
      intro: stanza.getChildText("status") || "",
      role: item ? item.attrs.role : "",
      affiliation: item ? item.attrs.affiliation : "",
      self,
      available,
    };
    if (self && available && !this.joined) {
      this.joined = true;
      this.nick = nick;
      this._emit("occupant", occupant);
      if (this._pendingJoin) {
        this._pendingJoin.resolve(occupant);
        this._pendingJoin = null;
      }
      return;
    }
    this._emit("occupant", occupant);
    if (self && !available) {
      if (this._leftResolve) this._leftResolve();
      if (this._leaving) return;
      const destroy = x ? x.getChild("destroy") : null;
      if (destroy) this._finish("destroyed", destroy.getChildText("reason") || "");
      else if (codes.includes("301")) this._finish("banned", item ? item.getChildText("reason") || "" : "");
      else if (codes.includes("307")) this._finish("kicked", item ? item.getChildText("reason") || "" : "");
      else this._finish("left", "");
    }
  }

  _onMessage(stanza, nick) {
    const type = stanza.attrs.type || "normal";
    if (type === "error") {
      const err = errorOf(stanza);
      this._emit("refused", { text: err.text || err.condition });
      return;
    }
    const delay = stanza.getChild("delay", NS_DELAY);
    const time = delay && delay.attrs.stamp ? new Date(delay.attrs.stamp) : new Date();
    const history = Boolean(delay);
    const count = stanza.getChild("occupants", NS_ONAIR_MUC);
    if (count) this._emit("count", { count: Number(count.attrs.count) });
    const subject = stanza.getChild("subject");
    if (subject && type === "groupchat") {
      this._emit("message", { kind: "subject", nick, body: subject.text(), time, history });
      return;
    }
    const body = stanza.getChildText("body");
    if (body === null || body === undefined) return;
    let kind = "message";
    if (type === "chat" && nick) kind = "private";
    else if (!nick) kind = "notice";
    this._emit("message", { kind, nick, body, time, history });
  }
}
