// The schedule (F10): upcoming public and password lives from
// GET /api/v1/schedule, each linking to its live page, those on air marked
// with how many watch.  Secret lives are never in the answer.
import { $, api, el, clear, say, formatSpan, formatDateTime, LEVELS, initNav } from "./common.js";

function chatLine(live) {
  const chat = live.chat || {};
  if (chat.state === "open") return `Chat open until ${formatDateTime(chat.closes)}`;
  if (chat.state === "closed") return "Chat closed";
  return `Chat opens ${formatDateTime(chat.opens)}`;
}

function card(live) {
  const href = `/live/${encodeURIComponent(live.id)}`;
  return el(
    "li",
    { className: "live-card", "data-id": live.id },
    el("h2", {}, el("a", { href }, live.title || "(untitled)")),
    el(
      "p",
      { className: "meta" },
      live.on_air ? el("span", { className: "badge on-air" }, `On air · ${live.viewers_now} watching`) : null,
      el("span", { className: `badge level-${live.level}` }, LEVELS[live.level] || live.level),
      live.genre ? el("span", { className: "genre" }, live.genre) : null,
      el("time", { dateTime: live.start }, formatSpan(live.start, live.end)),
    ),
    live.summary ? el("p", { className: "summary" }, live.summary) : null,
    el("p", { className: "chat-line" }, chatLine(live)),
  );
}

async function load() {
  const list = $("lives");
  const status = $("status");
  say(status, "Loading the schedule…");
  try {
    const { lives } = await api("GET", "/api/v1/schedule");
    clear(list);
    for (const live of lives) list.append(card(live));
    say(status, lives.length ? "" : "No lives are scheduled at the moment.");
  } catch (e) {
    say(status, `The schedule could not be loaded: ${e.message}`, "error");
  }
}

initNav();
load();
