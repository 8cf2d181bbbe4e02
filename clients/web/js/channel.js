// My channel (F7, F8, F15): the account's reservations with their states
// (GET /api/v1/reservations), reconfirming (the settings come back),
// the settings again, cancelling, past lives' viewer counts, and their
// chat transcripts (GET /api/v1/reservations/<id>/transcript, served by
// the transcript plugin) shown in the page and downloaded as text.
import { $, api, el, clear, say, formatDateTime, formatSpan, formatMoney, safeLink, session, LEVELS, STATES, initNav } from "./common.js";
import { requireLogin } from "./login.js";

let reservations = [];

function card(r) {
  const actions = el("p", { className: "actions" });
  if (r.state === "awaiting_reconfirmation") {
    actions.append(el("button", { type: "button", className: "reconfirm", onclick: () => reconfirm(r) }, "Reconfirm"));
  }
  if (r.state === "reconfirmed" || r.state === "live") {
    actions.append(el("button", { type: "button", className: "show-settings secondary", onclick: () => showSettings(r) }, "Settings"));
  }
  if (r.state === "awaiting_reconfirmation" || r.state === "reconfirmed") {
    actions.append(el("button", { type: "button", className: "cancel secondary danger", onclick: () => askCancel(r, li) }, "Cancel this live"));
  }
  if (r.state === "done") {
    actions.append(el("button", { type: "button", className: "show-transcript secondary", onclick: () => showTranscript(r) }, "Transcript"));
  }
  if (r.state !== "cancelled") actions.append(el("a", { href: `/live/${encodeURIComponent(r.id)}`, className: "page-link" }, "The live's page"));
  const facts = el(
    "dl",
    { className: "facts" },
    el("dt", {}, "ID"),
    el("dd", { className: "id" }, r.id),
    el("dt", {}, "Channel"),
    el("dd", {}, r.channel),
    el("dt", {}, "Who may watch"),
    el("dd", {}, LEVELS[r.level] || r.level),
    el("dt", {}, "Fee"),
    el("dd", {}, formatMoney(r.fee, r.currency)),
  );
  if (r.state === "awaiting_reconfirmation") facts.append(el("dt", {}, "Reconfirm by"), el("dd", { className: "deadline" }, formatDateTime(r.reconfirm_by)));
  if (r.state === "done" || r.state === "live") {
    facts.append(el("dt", {}, "Most viewers at once"), el("dd", { className: "viewers" }, String(r.viewers)));
    facts.append(el("dt", {}, "Viewers in all"), el("dd", { className: "viewers-total" }, String(r.viewers_total ?? 0)));
  }
  if (r.state === "cancelled" && r.cancelled_by) {
    const by = { owner: "by you", deadline: "not reconfirmed in time", operator: "by the operator" }[r.cancelled_by] || r.cancelled_by;
    facts.append(el("dt", {}, "Cancelled"), el("dd", {}, by));
  }
  const li = el(
    "li",
    { className: `reservation state-${r.state}`, "data-id": r.id },
    el("h3", {}, r.title || "(untitled)"),
    el("p", { className: "meta" }, el("span", { className: `badge state ${r.state}` }, STATES[r.state] || r.state), " ", el("time", { dateTime: r.start }, formatSpan(r.start, r.end))),
    facts,
    actions,
    el("p", { className: "row-status", role: "status", hidden: true }),
  );
  return li;
}

async function load() {
  const status = $("status");
  try {
    ({ reservations } = await api("GET", "/api/v1/reservations", undefined, { auth: true }));
  } catch (e) {
    if (e.status === 401) return requireLogin(load);
    say(status, `Your lives could not be loaded: ${e.message}`, "error");
    return;
  }
  $("mine").hidden = false;
  const list = clear($("reservations"));
  // Upcoming first (by start), then the past and the cancelled ones, newest first.
  const open = reservations.filter((r) => r.state !== "done" && r.state !== "cancelled");
  const closed = reservations.filter((r) => r.state === "done" || r.state === "cancelled").reverse();
  for (const r of [...open, ...closed]) list.append(card(r));
  if (!reservations.length) list.append(el("li", { className: "empty" }, "You have booked no live yet."));
}

function rowStatus(li, text, kind) {
  const p = li ? li.querySelector(".row-status") : null;
  if (p) say(p, text, kind);
  else say($("status"), text, kind);
}

function renderSettings(r, s) {
  $("settings-h").textContent = `Settings of “${s.title}”`;
  const rows = [
    ["Reservation ID", s.id],
    ["Starts", formatDateTime(s.start)],
    ["Ends", formatDateTime(s.end)],
    ["You may stream", `${formatDateTime(s.ingest_open)} – ${formatDateTime(s.ingest_close)}`],
    ["Streaming address", s.ingest_jid],
    ["Chat room", s.room_jid],
    ["Viewers' page", safeLink(s.page_url)],
    ["Bandwidth", `${s.bandwidth_kbps} kbps`],
    ["Viewers at most", String(s.capacity)],
    ["Title", s.title],
    ["Summary", s.summary || "—"],
    ["Who may watch", LEVELS[s.level] || s.level],
    ["Friends", s.friends.length ? s.friends.join(", ") : "—"],
    ["Shared password", s.shared_password || "(none: a public live)"],
    ["Issued", formatDateTime(s.issued)],
  ];
  const dl = clear($("settings-list"));
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", { className: k === "Shared password" ? "secret" : "" }, v));
  $("settings").hidden = false;
  $("settings").dataset.id = s.id;
  $("settings-h").focus();
}

async function reconfirm(r) {
  const li = document.querySelector(`li[data-id="${CSS.escape(r.id)}"]`);
  try {
    const { settings } = await api("POST", `/api/v1/reservations/${encodeURIComponent(r.id)}/reconfirm`, undefined, { auth: true });
    await load();
    say($("status"), `“${r.title}” is reconfirmed.`, "info");
    renderSettings(r, settings);
  } catch (e) {
    if (e.status === 401) return requireLogin(load);
    rowStatus(li, e.message, "error");
    if (e.status === 410) load();
  }
}

async function showSettings(r) {
  const li = document.querySelector(`li[data-id="${CSS.escape(r.id)}"]`);
  try {
    const { settings } = await api("GET", `/api/v1/reservations/${encodeURIComponent(r.id)}/settings`, undefined, { auth: true });
    renderSettings(r, settings);
  } catch (e) {
    if (e.status === 401) return requireLogin(load);
    rowStatus(li, e.message, "error");
  }
}

const PARTS = {
  all: "everything said in the room",
  live: "what was said during the live",
  addressed: "the messages addressed to you",
};

function transcriptPath(r, format) {
  return `/api/v1/reservations/${encodeURIComponent(r.id)}/transcript?format=${format}`;
}

function renderTranscript(r, t) {
  $("transcript-h").textContent = `Transcript of “${t.title || r.title}”`;
  const notices = t.notices ? "with the room's notices" : "without the room's notices";
  say($("transcript-about"), `${PARTS[t.part] || t.part}, ${notices}: ${t.count} ${t.count === 1 ? "message" : "messages"}. Times are from the start of the live (${formatDateTime(t.started)}).`, "info");
  const list = clear($("transcript-list"));
  for (const m of t.messages) {
    const who = m.notice ? el("span", { className: "nick notice" }, "notice") : el("span", { className: "nick" }, m.nick);
    const li = el("li", { className: `line${m.notice ? " notice" : ""}${m.addressed ? " addressed" : ""}` },
      el("time", { dateTime: m.time, title: formatDateTime(m.time) }, m.offset), " ", who, " ", el("span", { className: "body" }, m.body));
    if (m.addressed) li.append(" ", el("span", { className: "badge to-you" }, "to you"));
    list.append(li);
  }
  if (!t.messages.length) list.append(el("li", { className: "empty" }, "Nothing was said."));
  $("transcript").hidden = false;
  $("transcript").dataset.id = r.id;
  $("transcript-h").focus();
}

async function showTranscript(r) {
  const li = document.querySelector(`li[data-id="${CSS.escape(r.id)}"]`);
  try {
    renderTranscript(r, await api("GET", transcriptPath(r, "json"), undefined, { auth: true }));
  } catch (e) {
    if (e.status === 401) return requireLogin(load);
    rowStatus(li, e.status === 404 ? "There is no transcript of this live (yet): it is made when its chat room closes." : e.message, "error");
  }
}

// The text form, as a file: fetched with the login, handed over as a blob.
async function downloadTranscript() {
  const id = $("transcript").dataset.id;
  const status = $("transcript-about");
  let res;
  try {
    res = await fetch(transcriptPath({ id }, "text"), { headers: { Authorization: `Bearer ${session.token()}` }, cache: "no-store" });
  } catch (e) {
    say(status, "The server cannot be reached. Check your connection and try again.", "error");
    return;
  }
  if (res.status === 401) return requireLogin(load);
  if (!res.ok) {
    say(status, `The transcript could not be downloaded (${res.status}).`, "error");
    return;
  }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", { href: url, download: `transcript-${id}.txt` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Cancelling asks once more, in place.
function askCancel(r, li) {
  const box = li.querySelector(".confirm-cancel");
  if (box) {
    box.querySelector("button").focus();
    return;
  }
  const yes = el("button", { type: "button", className: "danger confirm-yes" }, "Yes, cancel it");
  const no = el("button", { type: "button", className: "secondary confirm-no" }, "Keep it");
  const ask = el("div", { className: "confirm-cancel", role: "group", "aria-label": "Cancel this live?" }, el("p", {}, `Cancel “${r.title}”? This cannot be undone.`), yes, " ", no);
  yes.addEventListener("click", () => cancel(r, li, ask));
  no.addEventListener("click", () => ask.remove());
  li.append(ask);
  yes.focus();
}

async function cancel(r, li, ask) {
  try {
    await api("DELETE", `/api/v1/reservations/${encodeURIComponent(r.id)}`, undefined, { auth: true });
    if ($("settings").dataset.id === r.id) $("settings").hidden = true;
    await load();
    say($("status"), `“${r.title}” is cancelled.`, "info");
  } catch (e) {
    if (e.status === 401) return requireLogin(load);
    ask.remove();
    rowStatus(li, e.message, "error");
  }
}

initNav();
$("settings-close").addEventListener("click", () => {
  $("settings").hidden = true;
});
$("transcript-download").addEventListener("click", downloadTranscript);
$("transcript-close").addEventListener("click", () => {
  $("transcript").hidden = true;
});
requireLogin(load);
