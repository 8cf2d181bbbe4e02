// A live's page (F19-F21): its details from GET /api/v1/lives/:id, the
// player (player.js: the stream over the media WebSocket, with a token the
// chat connection asks for once in the room), and its chat room entered as
// a guest with a name, a self-introduction and, where the level needs it,
// the shared password (chat.js does the XMPP).
import {
  $,
  api,
  el,
  clear,
  say,
  formatDateTime,
  formatDuration,
  parseTime,
  safeLink,
  LEVELS,
  initNav,
} from "./common.js";
import { RoomChat, discoverWebSocket } from "./chat.js";
import { LivePlayer } from "./player.js";

const liveId = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop() || "");
let live = null;
let site = null;
let chat = null;
let player = null;
let streamRetry = 0;
// The live ended while this page watched it: the page asks for the stream
// again and waits as a viewer, still showing the end, until the broadcaster
// is back on air (or the watching window closes and the token is refused).
let endedWatching = false;
let lastRefresh = 0;
const people = new Map(); // nick -> {intro, role, affiliation, self}

// ---- details ----

const ACCESS = {
  public: "Anyone may watch and chat",
  password: "The password of this live is needed",
  secret: "Invitation only: the password of this live is needed",
};

function row(term, ...value) {
  return [el("dt", {}, term), el("dd", {}, ...value)];
}

function renderDetails() {
  document.title = `${live.title || "Live"} — onair`;
  $("title").textContent = live.title || "(untitled)";
  const level = $("level");
  level.textContent = LEVELS[live.level] || live.level;
  level.className = `badge level-${live.level}`;
  $("genre").textContent = live.genre || "";
  $("summary").textContent = live.summary || "";
  $("detail").textContent = live.detail || "";
  $("detail").hidden = !live.detail;
  const dl = clear($("details"));
  dl.append(
    ...row("Starts", el("time", { dateTime: live.start }, formatDateTime(live.start))),
    ...row("Ends", el("time", { dateTime: live.end }, formatDateTime(live.end))),
    ...row("Viewers", `up to ${live.capacity}`),
    ...row("Access", ACCESS[live.level] || live.level),
    ...row("Chat room", el("span", { id: "chat-state" }, chatStateText())),
    ...row("Watching now", el("span", { id: "viewers-now" }, viewersNowText())),
  );
  if (live.email) dl.append(...row("Broadcaster", el("a", { href: `mailto:${live.email}` }, live.email)));
  if (live.url) dl.append(...row("Home page", safeLink(live.url)));
  $("password-row").hidden = !live.password_required;
  $("password").required = Boolean(live.password_required);
}

function viewersNowText() {
  const n = live.viewers_now || 0;
  if (live.on_air) return `${n} ${n === 1 ? "viewer" : "viewers"} (on air)`;
  return n ? `${n} waiting (not on air)` : "Not on air";
}

function chatStateText() {
  const c = live.chat || {};
  if (c.state === "open") return `Open until ${formatDateTime(c.closes)}`;
  if (c.state === "closed") return `Closed (${formatDateTime(c.closes)})`;
  return `Opens ${formatDateTime(c.opens)}`;
}

// Once a second: the player's state and the time left in the chat.
function tick() {
  const now = Date.now();
  const start = parseTime(live.start).getTime();
  const end = parseTime(live.end).getTime();
  const player = $("player");
  let state;
  let when;
  if (player.dataset.stream === "playing" && now < end) {
    // the broadcaster may go on air before the scheduled start
    state = "On air";
    when = `Ends at ${formatDateTime(live.end)}`;
    player.dataset.state = "live";
  } else if (player.dataset.stream === "ended") {
    // the broadcaster may end before the scheduled end
    state = "This live has ended";
    when = "";
    player.dataset.state = "ended";
  } else if (now < start) {
    state = "Not started yet";
    when = `Starts in ${formatDuration(start - now)}, at ${formatDateTime(live.start)}`;
    player.dataset.state = "waiting";
  } else if (now < end) {
    state = "On air";
    when = `Ends in ${formatDuration(end - now)}, at ${formatDateTime(live.end)}`;
    player.dataset.state = "live";
  } else {
    state = "This live has ended";
    when = `It ended at ${formatDateTime(live.end)}`;
    player.dataset.state = "ended";
  }
  if ($("player-state").textContent !== state) $("player-state").textContent = state;
  $("player-when").textContent = when;

  const c = live.chat || {};
  const closes = parseTime(c.closes);
  const opens = parseTime(c.opens);
  let line;
  if (c.state === "open" && closes && now < closes.getTime()) {
    line = `The chat room closes in ${formatDuration(closes.getTime() - now)}, at ${formatDateTime(closes)}.`;
  } else if (c.state === "not_open" && opens) {
    line = now < opens.getTime() ? `The chat room opens in ${formatDuration(opens.getTime() - now)}, at ${formatDateTime(opens)}.` : "The chat room opens soon.";
  } else {
    line = "The chat room is closed.";
  }
  $("chat-time").textContent = line;
  // The room opens or closes on the server's schedule: look again now and then.
  const due = (c.state === "not_open" && opens && now >= opens.getTime()) || (c.state === "open" && closes && now >= closes.getTime());
  // The viewer count changes while the live is on air: every 10 s then.
  const every = live.on_air || c.state === "open" ? 10000 : 60000;
  if ((due && now - lastRefresh > 5000) || now - lastRefresh > every) refresh();
}

async function refresh() {
  lastRefresh = Date.now();
  try {
    const { live: fresh } = await api("GET", `/api/v1/lives/${encodeURIComponent(liveId)}`);
    live = fresh;
    $("chat-state").textContent = chatStateText();
    $("viewers-now").textContent = viewersNowText();
  } catch (e) {
    // keep what is shown; the next refresh tries again
  }
}

// ---- the stream ----

function showStream(state, text) {
  // on air or ended: the viewer count has changed
  if (state !== $("player").dataset.stream && (state === "playing" || state === "ended")) refresh();
  $("player").dataset.stream = state;
  $("video").hidden = !(state === "playing" || (state === "ended" && player && player.frames > 0));
  $("stream-state").textContent = text;
}

function streamText(state, text) {
  switch (state) {
    case "connecting":
      return "Connecting to the stream…";
    case "waiting":
      return "Waiting for the live to start.";
    case "playing":
      return player && player.frames > 0 ? "" : "Starting the stream…";
    case "ended":
      return text && !/^the live has ended$/i.test(text) ? `The live has ended: ${text}.` : "The live has ended.";
    default:
      return text ? `The stream is not available: ${text}.` : "The stream is not available.";
  }
}

function onPlayerState(state, text) {
  if (endedWatching && (state === "connecting" || state === "waiting")) return; // still "ended" on the page
  if (state === "playing") endedWatching = false;
  if (state === "ended" && /^the live has ended$/i.test(text || "")) {
    endedWatching = true;
    clearTimeout(streamRetry);
    streamRetry = setTimeout(() => {
      if (chat) startStream();
    }, 1000);
  }
  showStream(state, streamText(state, text));
}

// Once in the room: a media token over the chat's connection, then the stream.
async function startStream() {
  if (!chat || !site.media_domain) return;
  if (!player) {
    player = new LivePlayer($("video"));
    player.addEventListener("state", (e) => onPlayerState(e.detail.state, e.detail.text));
    player.addEventListener("frame", (e) => {
      $("player").dataset.frames = String(e.detail.frames);
      if (e.detail.frames === 1) showStream("playing", "");
    });
    player.addEventListener("audio", (e) => {
      $("player").dataset.audioFrames = String(e.detail.frames);
      $("player").dataset.audioSynced = String(e.detail.synced); // played in step with the pictures
      $("sound").hidden = false; // the live has sound
    });
  }
  clearTimeout(streamRetry);
  if (!endedWatching) showStream("connecting", streamText("connecting"));
  try {
    player.start(await chat.mediaToken(`${live.id}@${site.media_domain}`));
  } catch (e) {
    if (endedWatching) return; // the window has closed: the live stays ended
    // Too early (the room opens before the stream may be watched): try again when it may.
    const from = e.condition === "not-allowed" ? /watched from (\S+) to/.exec(e.text || "") : null;
    const at = from ? parseTime(from[1]) : null;
    if (at && at.getTime() > Date.now()) {
      showStream("waiting", `The stream can be watched from ${formatDateTime(at)}.`);
      streamRetry = setTimeout(() => {
        if (chat) startStream();
      }, Math.min(at.getTime() - Date.now() + 500, 2147483000));
      return;
    }
    showStream("error", streamText("error", e.text || e.message));
  }
}

// Sound: off until the viewer turns it on (browsers need the gesture).
async function toggleSound() {
  if (!player) return;
  const on = player.muted;
  $("sound").textContent = on ? "Sound off" : "Sound on";
  $("sound").setAttribute("aria-pressed", String(on));
  const playing = await player.setMuted(!on);
  // "blocked": the browser did not let the sound start
  $("player").dataset.sound = on ? (playing ? "on" : "blocked") : "off";
}

function stopStream() {
  clearTimeout(streamRetry);
  endedWatching = false;
  if (player) player.stop();
  showStream("", "Join the chat to watch the live.");
}

// ---- the chat ----

function joinErrorText(err, hadPassword) {
  const text = err.text || "";
  switch (err.condition) {
    case "not-authorized":
      return hadPassword
        ? "Wrong password: check the password of this live and try again."
        : "This live needs its password: enter it to join.";
    case "service-unavailable":
      return "The room is full: try again a little later.";
    case "item-not-found": {
      const opens = /opens at (\S+)/.exec(text);
      if (opens) {
        const at = parseTime(opens[1].replace(/[,.]$/, ""));
        const more = /once the live is reconfirmed/.test(text) ? " (once the broadcaster reconfirms the live)" : "";
        return `The chat room is not open yet: it opens at ${at ? formatDateTime(at) : opens[1]}${more}.`;
      }
      const closed = /closed at (\S+)/.exec(text);
      if (closed) {
        const at = parseTime(closed[1]);
        return `The chat room is closed: it closed at ${at ? formatDateTime(at) : closed[1]}.`;
      }
      if (/cancelled/.test(text)) return "This live was cancelled.";
      return "There is no chat room for this live.";
    }
    case "conflict":
      return "This name is taken in the room: choose another.";
    case "not-acceptable":
    case "jid-malformed":
      return "This name cannot be used: use 1 to 64 characters, not only spaces.";
    case "forbidden":
      return "You are banned from this room.";
    default:
      return `The chat room refused: ${text || err.condition || err.message}`;
  }
}

function addMessage({ kind, nick, body, time, history }) {
  const list = $("messages");
  const stamp = el("time", { dateTime: time.toISOString(), className: "at" }, time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  let item;
  if (kind === "notice") {
    item = el("li", { className: "notice" }, el("span", { className: "label" }, "Notice"), " ", el("span", { className: "body" }, body), " ", stamp);
  } else if (kind === "subject") {
    item = el("li", { className: "subject" }, el("span", { className: "label" }, "Topic"), " ", el("span", { className: "body" }, body));
  } else if (kind === "private" || kind === "private-sent") {
    const label = kind === "private" ? `Private from ${nick}` : `Private to ${nick}`;
    item = el("li", { className: `private ${kind === "private-sent" ? "mine" : ""}` }, el("span", { className: "label" }, label), " ", el("span", { className: "body" }, body), " ", stamp);
  } else {
    const mine = chat && nick === chat.nick;
    item = el("li", { className: `msg${mine ? " mine" : ""}` }, el("span", { className: "who" }, nick), " ", el("span", { className: "body" }, body), " ", stamp);
  }
  if (history) item.classList.add("history");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
  list.append(item);
  if (atBottom || kind === "private-sent" || (chat && nick === chat.nick)) list.scrollTop = list.scrollHeight;
}

function renderPeople() {
  const ul = clear($("people"));
  const to = $("to");
  const chosen = to.value;
  clear(to).append(el("option", { value: "" }, "Everyone"));
  const nicks = [...people.keys()].sort((a, b) => {
    const pa = people.get(a);
    const pb = people.get(b);
    if (pa.self !== pb.self) return pa.self ? -1 : 1;
    return a.localeCompare(b);
  });
  for (const nick of nicks) {
    const p = people.get(nick);
    const li = el(
      "li",
      { className: p.self ? "me" : "", "data-nick": nick },
      el("span", { className: "nick" }, nick),
      p.self ? el("span", { className: "you" }, " (you)") : null,
      p.role === "moderator" ? el("span", { className: "badge host" }, "broadcaster") : null,
      p.intro ? el("span", { className: "intro" }, p.intro) : null,
    );
    if (!p.self) {
      li.append(
        el(
          "button",
          {
            type: "button",
            className: "link pm",
            "aria-label": `Private message to ${nick}`,
            onclick: () => {
              to.value = nick;
              $("text").focus();
            },
          },
          "Private message",
        ),
      );
      to.append(el("option", { value: nick }, nick));
    }
    ul.append(li);
  }
  to.value = people.has(chosen) && !people.get(chosen).self ? chosen : "";
  $("people-count").textContent = `(${chat && chat.count > people.size ? chat.count : people.size})`;
}

async function refreshParticipants() {
  if (!chat) return;
  try {
    const items = await chat.participants();
    for (const { nick, intro } of items) {
      if (!people.has(nick)) people.set(nick, { intro, role: "", affiliation: "", self: false });
    }
    renderPeople();
  } catch (e) {
    // the list is the presences seen so far
  }
}

function showRoom(inRoom) {
  $("room").hidden = !inRoom;
  $("join").hidden = inRoom;
}

function onClosed({ why, text }) {
  const messages = {
    left: "You left the chat.",
    destroyed: text || "The live is over: this room is closed.",
    kicked: `You were removed from the room${text ? `: ${text}` : "."}`,
    banned: `You were banned from the room${text ? `: ${text}` : "."}`,
    disconnected: "The connection to the chat was lost. Join again to go on.",
  };
  chat = null;
  stopStream();
  people.clear();
  renderPeople();
  showRoom(false);
  say($("join-error"), messages[why] || "You are no longer in the room.", why === "left" ? "info" : "error");
  $("join-button").disabled = false;
}

function newChat(service) {
  const c = new RoomChat({ service, domain: site.guest_domain, room: live.room });
  c.count = 0;
  c.addEventListener("message", (e) => addMessage(e.detail));
  c.addEventListener("occupant", (e) => {
    const o = e.detail;
    if (!o.nick) return;
    if (o.available) people.set(o.nick, { intro: o.intro, role: o.role, affiliation: o.affiliation, self: o.self || (people.get(o.nick) || {}).self });
    else people.delete(o.nick);
    renderPeople();
  });
  c.addEventListener("count", (e) => {
    c.count = e.detail.count;
    if (c.count > people.size) refreshParticipants();
    else renderPeople();
  });
  c.addEventListener("refused", (e) => say($("send-error"), `Not sent: ${e.detail.text}`, "error"));
  c.addEventListener("closed", (e) => onClosed(e.detail));
  return c;
}

async function onJoin(ev) {
  ev.preventDefault();
  const error = $("join-error");
  const nick = $("nick").value.trim();
  const intro = $("intro").value.trim();
  const password = $("password").value;
  if (!nick) {
    say(error, "Enter a name to join the chat.", "error");
    $("nick").setAttribute("aria-invalid", "true");
    $("nick").focus();
    return;
  }
  $("nick").removeAttribute("aria-invalid");
  if (live.password_required && !password) {
    say(error, "This live needs its password: enter it to join.", "error");
    $("password").focus();
    return;
  }
  if (!site.guest_domain) {
    say(error, "This server does not let guests chat.", "error");
    return;
  }
  const button = $("join-button");
  button.disabled = true;
  say(error, "Joining…", "info");
  try {
    if (!chat) chat = newChat(await discoverWebSocket());
    clear($("messages"));
    people.clear();
    await chat.join(nick, intro, live.password_required ? password : "");
    say(error, "");
    say($("send-error"), "");
    showRoom(true);
    renderPeople();
    refreshParticipants();
    startStream();
    $("text").focus();
  } catch (e) {
    const text = e.condition ? joinErrorText(e, Boolean(password)) : `The chat could not be joined: ${e.message}`;
    if (!e.condition && chat) chat = null;
    say(error, text, "error");
    if (e.condition === "not-authorized") $("password").focus();
    else if (e.condition === "conflict" || e.condition === "not-acceptable") $("nick").focus();
  } finally {
    button.disabled = false;
  }
}

async function onSend(ev) {
  ev.preventDefault();
  const input = $("text");
  const body = input.value.trim();
  if (!body || !chat) return;
  const to = $("to").value;
  say($("send-error"), "");
  try {
    if (to) await chat.sendPrivate(to, body);
    else await chat.send(body);
    input.value = "";
  } catch (e) {
    say($("send-error"), `Not sent: ${e.message}`, "error");
  }
  input.focus();
}

async function onLeave() {
  if (!chat) return;
  $("leave").disabled = true;
  try {
    await chat.leave();
  } finally {
    $("leave").disabled = false;
  }
}

async function load() {
  initNav();
  const status = $("status");
  if (!liveId) {
    say(status, "No live is named in this address.", "error");
    return;
  }
  say(status, "Loading the live…");
  try {
    const [one, server] = await Promise.all([api("GET", `/api/v1/lives/${encodeURIComponent(liveId)}`), api("GET", "/api/v1/server")]);
    live = one.live;
    site = server;
  } catch (e) {
    say(status, e.status === 404 ? "There is no such live: it may have been cancelled. See the schedule for upcoming lives." : `The live could not be loaded: ${e.message}`, "error");
    return;
  }
  lastRefresh = Date.now();
  say(status, "");
  renderDetails();
  $("live").hidden = false;
  tick();
  setInterval(tick, 1000);
  $("join").addEventListener("submit", onJoin);
  $("send").addEventListener("submit", onSend);
  $("leave").addEventListener("click", onLeave);
  $("sound").addEventListener("click", toggleSound);
  window.addEventListener("pagehide", () => {
    if (chat) chat.leave();
  });
}

load();
