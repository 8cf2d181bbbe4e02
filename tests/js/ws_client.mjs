// An XMPP client over WebSocket (RFC 7395) built on @xmpp/client, driven by
// tests/integration/test_websocket_js.py.  It reports what happens as JSON
// lines on stdout ({"event": ...}) and reads orders as JSON lines on stdin,
// so the Python side can pace it against slixmpp clients; every wait is
// bounded.
//
//   node ws_client.mjs '{"service": "wss://...", "domain": "localhost",
//                        "username": "alice", "password": "..."}'
//   (no username: ANONYMOUS, for the guest domain)
//
// Orders (one JSON object per line):
//   {"op": "chat", "to": JID, "body": TEXT}             send a chat message
//   {"op": "wait_message", "from": BAREJID, "type": T}  until such a message arrives
//   {"op": "ping"}                                      XEP-0199 ping to the domain
//   {"op": "join", "room": JID, "nick": N, "password": P}  enter a room (XEP-0045)
//   {"op": "groupchat", "room": JID, "body": TEXT}      send to the room
//   {"op": "leave", "room": JID, "nick": N}             leave and wait for it
//   {"op": "stop"}                                      close the stream, exit 0
import { client, xml } from "@xmpp/client";

// Node 22 has a WebSocket of its own; on older ones take the ws package's.
if (!globalThis.WebSocket) globalThis.WebSocket = (await import("ws")).WebSocket;

const WAIT_MS = 10000;
const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";

const options = JSON.parse(process.argv[2]);
const say = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
const fail = (message) => {
  say("error", { message: String(message) });
  process.exit(1);
};

const xmpp = client({
  service: options.service,
  domain: options.domain,
  username: options.username,
  password: options.password,
  resource: options.resource || "js",
});
xmpp.reconnect.stop(); // a test wants to see a dropped stream, not hide it
xmpp.on("error", (err) => say("stream_error", { message: err.message, condition: err.condition || null }));
let stopping = false;
xmpp.on("offline", () => stopping || say("offline"));

// Every stanza that arrives, kept until a wait takes it.
const inbox = [];
let wake = null;
xmpp.on("stanza", (stanza) => {
  inbox.push(stanza);
  if (wake) wake();
});

async function waitFor(what, pred) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const i = inbox.findIndex(pred);
    if (i >= 0) return inbox.splice(i, 1)[0];
    const left = deadline - Date.now();
    if (left <= 0) fail(`no ${what} within ${WAIT_MS} ms`);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, left);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    wake = null;
  }
}

const bare = (j) => String(j || "").split("/")[0];
const statusCodes = (presence) => {
  const x = presence.getChild("x", NS_MUC_USER);
  return x ? x.getChildren("status").map((s) => Number(s.attrs.code)) : [];
};

async function run(order) {
  switch (order.op) {
    case "chat":
      await xmpp.send(xml("message", { to: order.to, type: "chat" }, xml("body", {}, order.body)));
      return say("sent", { to: order.to });
    case "wait_message": {
      const m = await waitFor(`message from ${order.from}`, (s) =>
        s.is("message") && bare(s.attrs.from) === order.from && (!order.type || s.attrs.type === order.type) &&
        s.getChildText("body") !== null);
      return say("message", { from: m.attrs.from, type: m.attrs.type || "normal", body: m.getChildText("body") });
    }
    case "ping": {
      const r = await xmpp.iqCaller.request(xml("iq", { type: "get", to: options.domain }, xml("ping", "urn:xmpp:ping")));
      return say("pong", { type: r.attrs.type });
    }
    case "join": {
      const full = `${order.room}/${order.nick}`;
      const x = xml("x", { xmlns: NS_MUC }, order.password ? xml("password", {}, order.password) : null);
      await xmpp.send(xml("presence", { to: full }, x));
      const self = await waitFor(`self-presence from ${full}`, (s) =>
        s.is("presence") && s.attrs.from === full && (statusCodes(s).includes(110) || s.attrs.type === "error"));
      if (self.attrs.type === "error") {
        const err = self.getChild("error");
        const cond = err ? err.children.find((c) => c.name && c.name !== "text") : null;
        return say("join_error", { condition: cond ? cond.name : null });
      }
      // the others were announced before self-presence (XEP-0045 7.2.3)
      const others = inbox.filter((s) => s.is("presence") && bare(s.attrs.from) === order.room && s.attrs.from !== full)
        .map((s) => s.attrs.from.split("/")[1]);
      return say("joined", { codes: statusCodes(self), occupants: others });
    }
    case "groupchat": {
      await xmpp.send(xml("message", { to: order.room, type: "groupchat" }, xml("body", {}, order.body)));
      const echo = await waitFor("the room's copy of our message", (s) =>
        s.is("message") && s.attrs.type === "groupchat" && bare(s.attrs.from) === order.room &&
        s.getChildText("body") === order.body);
      return say("reflected", { from: echo.attrs.from });
    }
    case "leave": {
      const full = `${order.room}/${order.nick}`;
      await xmpp.send(xml("presence", { to: full, type: "unavailable" }));
      await waitFor("our unavailable presence", (s) =>
        s.is("presence") && s.attrs.from === full && s.attrs.type === "unavailable");
      return say("left");
    }
    case "stop":
      stopping = true;
      await xmpp.stop();
      say("stopped");
      process.exit(0);
    default:
      fail(`unknown order ${order.op}`);
  }
}

xmpp.on("online", (address) => say("online", { jid: address.toString() }));
try {
  await xmpp.start();
} catch (err) {
  fail(`login failed: ${err.message}`);
}

// Orders, one at a time, in the order given.
let queue = Promise.resolve();
let buffered = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const line = buffered.slice(0, nl).trim();
    buffered = buffered.slice(nl + 1);
    if (line) queue = queue.then(() => run(JSON.parse(line))).catch((err) => fail(err.message));
  }
});
process.stdin.on("end", () => queue.then(() => process.exit(0)));
