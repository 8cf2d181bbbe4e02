// Booking (F2-F6): a month calendar, every channel's slots of the chosen
// date (GET /api/v1/availability) with capacity, bandwidth and price, the
// booking form (F3), the confirmation with the fee (POST
// /api/v1/reservations/quote: nothing stored), and the booking itself (POST
// /api/v1/reservations) with its reservation ID.
import { $, api, el, clear, say, formatDateTime, formatSpan, formatMoney, LEVELS, initNav } from "./common.js";
import { requireLogin } from "./login.js";

const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const state = {
  today: null, // "YYYY-MM-DD" in the server's zone
  month: null, // {y, m} shown (m 0-11)
  date: null, // the chosen day
  avail: null, // the availability answer of that day
  sel: null, // {ch, from, to}: slot indexes of the chosen range
  body: null, // the request the quote was for
};

// ---- dates as calendar days (no time zone: the server's days) ----

function parseDay(s) {
  const [y, m, d] = s.split("-").map(Number);
  return { y, m: m - 1, d };
}
function dayString(y, m, d) {
  const dt = new Date(Date.UTC(y, m, d));
  return dt.toISOString().slice(0, 10);
}
function addDays(s, n) {
  const { y, m, d } = parseDay(s);
  return dayString(y, m, d + n);
}
const longDay = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric", timeZone: "UTC" });
const monthName = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "long", timeZone: "UTC" });
function dayLabel(s) {
  const { y, m, d } = parseDay(s);
  return longDay.format(new Date(Date.UTC(y, m, d)));
}

// A slot time in the server's zone: "18:30".
function slotTime(iso) {
  try {
    return new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: state.avail.timezone }).format(new Date(iso));
  } catch (e) {
    return iso.slice(11, 16);
  }
}

// ---- the calendar ----

function renderCalendar(focusDate) {
  const { y, m } = state.month;
  $("month").textContent = monthName.format(new Date(Date.UTC(y, m, 1)));
  const table = clear($("calendar"));
  const head = el("tr", {});
  for (const w of WEEKDAYS) head.append(el("th", { scope: "col", abbr: w }, w.slice(0, 2)));
  table.append(el("thead", {}, head));
  const body = el("tbody", {});
  const first = new Date(Date.UTC(y, m, 1));
  const offset = (first.getUTCDay() + 6) % 7; // Monday first
  const days = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  let tr = el("tr", {});
  for (let i = 0; i < offset; i++) tr.append(el("td", {}));
  const active = focusDate && parseDay(focusDate).m === m ? focusDate : state.date && parseDay(state.date).m === m && parseDay(state.date).y === y ? state.date : null;
  let firstEnabled = null;
  for (let d = 1; d <= days; d++) {
    const s = dayString(y, m, d);
    const past = s < state.today;
    if (!past && !firstEnabled) firstEnabled = s;
    const b = el(
      "button",
      {
        type: "button",
        className: "day",
        "data-date": s,
        "aria-label": dayLabel(s),
        "aria-pressed": s === state.date ? "true" : "false",
        disabled: past,
        tabIndex: -1,
        onclick: () => chooseDate(s),
        onkeydown: (ev) => calendarKey(ev, s),
      },
      String(d),
    );
    if (s === state.today) b.classList.add("today");
    tr.append(el("td", {}, b));
    if ((offset + d) % 7 === 0) {
      body.append(tr);
      tr = el("tr", {});
    }
  }
  if (tr.children.length) body.append(tr);
  table.append(body);
  const tabbable = table.querySelector(`button[data-date="${active || firstEnabled}"]`);
  if (tabbable) tabbable.tabIndex = 0;
  if (focusDate && tabbable) tabbable.focus();
  const { y: ty, m: tm } = parseDay(state.today);
  $("prev-month").disabled = y < ty || (y === ty && m <= tm);
}

function calendarKey(ev, s) {
  const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -7, ArrowDown: 7 };
  if (!(ev.key in moves)) return;
  ev.preventDefault();
  const next = addDays(s, moves[ev.key]);
  if (next < state.today) return;
  const { y, m } = parseDay(next);
  if (y !== state.month.y || m !== state.month.m) state.month = { y, m };
  renderCalendar(next);
}

function moveMonth(n) {
  let { y, m } = state.month;
  m += n;
  if (m < 0) {
    m = 11;
    y--;
  } else if (m > 11) {
    m = 0;
    y++;
  }
  state.month = { y, m };
  renderCalendar(null);
}

async function chooseDate(s) {
  state.date = s;
  state.sel = null;
  renderCalendar(null);
  const status = $("status");
  try {
    state.avail = await api("GET", `/api/v1/availability?date=${encodeURIComponent(s)}`);
    say(status, "");
  } catch (e) {
    say(status, `The availability could not be loaded: ${e.message}`, "error");
    return;
  }
  renderGrid();
  fillFormChoices();
}

// ---- the availability grid ----

function renderGrid() {
  const a = state.avail;
  $("avail-date").textContent = dayLabel(a.date);
  $("tz").textContent = a.timezone;
  const table = clear($("grid"));
  const head = el("tr", {}, el("th", { scope: "col" }, "Time"));
  for (const ch of a.channels) {
    head.append(
      el(
        "th",
        { scope: "col", className: "channel" },
        el("span", { className: "name" }, ch.name),
        el("span", { className: "facts" }, `${ch.capacity} viewers · ${ch.bandwidth_kbps} kbps · ${formatMoney(ch.price_per_hour, a.currency)}/h`),
      ),
    );
  }
  table.append(el("thead", {}, head));
  const body = el("tbody", {});
  a.slots.forEach((slot, i) => {
    const tr = el("tr", {}, el("th", { scope: "row" }, slotTime(slot.start)));
    a.channels.forEach((ch, c) => {
      const st = ch.states[i];
      let cell;
      if (st === "free") {
        cell = el(
          "button",
          {
            type: "button",
            className: "slot free",
            "data-channel": ch.id,
            "data-slot": String(i),
            "aria-pressed": "false",
            "aria-label": `${ch.name}, ${slotTime(slot.start)} to ${slotTime(slot.end)}: free`,
            onclick: () => chooseSlot(c, i),
          },
          "Free",
        );
      } else {
        cell = el("span", { className: `slot ${st}` }, st === "booked" ? "Booked" : "Closed");
      }
      tr.append(el("td", {}, cell));
    });
    body.append(tr);
  });
  table.append(body);
  markSelection();
  // Show the first free slot (the night's closed ones above it stay a scroll away).
  const first = table.querySelector("button.slot.free");
  const wrap = table.parentElement;
  if (first) wrap.scrollTop = first.closest("tr").offsetTop - table.tHead.offsetHeight;
}

function chooseSlot(c, i) {
  const states = state.avail.channels[c].states;
  const s = state.sel;
  if (s && s.ch === c && i > s.from) {
    let free = true;
    for (let k = s.from; k <= i; k++) free = free && states[k] === "free";
    if (free) {
      state.sel = { ch: c, from: s.from, to: i };
      syncForm();
      return;
    }
  }
  state.sel = { ch: c, from: i, to: i };
  syncForm();
}

function markSelection() {
  const s = state.sel;
  for (const b of $("grid").querySelectorAll("button.slot")) {
    const c = state.avail.channels.findIndex((ch) => ch.id === b.dataset.channel);
    const i = Number(b.dataset.slot);
    const on = Boolean(s && s.ch === c && i >= s.from && i <= s.to);
    b.setAttribute("aria-pressed", on ? "true" : "false");
    b.classList.toggle("selected", on);
    b.textContent = on ? "Chosen" : "Free";
  }
}

// ---- the form ----

function fillFormChoices() {
  const a = state.avail;
  const channel = clear($("f-channel"));
  for (const ch of a.channels) channel.append(el("option", { value: ch.id }, `${ch.name} (${formatMoney(ch.price_per_hour, a.currency)}/h)`));
  const start = clear($("f-start"));
  const end = clear($("f-end"));
  start.append(el("option", { value: "" }, "—"));
  end.append(el("option", { value: "" }, "—"));
  a.slots.forEach((slot) => {
    start.append(el("option", { value: slot.start }, slotTime(slot.start)));
    end.append(el("option", { value: slot.end }, slotTime(slot.end)));
  });
  syncForm();
}

// The grid's choice into the form's channel, start and end.
function syncForm() {
  const s = state.sel;
  if (s) {
    $("f-channel").value = state.avail.channels[s.ch].id;
    $("f-start").value = state.avail.slots[s.from].start;
    $("f-end").value = state.avail.slots[s.to].end;
  }
  markSelection();
}

// The form's channel, start and end back into the grid's highlight.
function syncGrid() {
  const a = state.avail;
  const c = a.channels.findIndex((ch) => ch.id === $("f-channel").value);
  const from = a.slots.findIndex((sl) => sl.start === $("f-start").value);
  const to = a.slots.findIndex((sl) => sl.end === $("f-end").value);
  state.sel = c >= 0 && from >= 0 && to >= from ? { ch: c, from, to } : null;
  markSelection();
}

function levelValue() {
  const checked = document.querySelector('input[name="level"]:checked');
  return checked ? checked.value : "";
}

function updateConditional() {
  $("shared-row").hidden = levelValue() === "public";
  $("url-row").hidden = !$("f-show_url").checked;
}

function formBody() {
  const level = levelValue();
  const body = {
    channel: $("f-channel").value,
    start: $("f-start").value,
    end: $("f-end").value,
    level,
    title: $("f-title").value.trim(),
    genre: $("f-genre").value.trim(),
    summary: $("f-summary").value.trim(),
    detail: $("f-detail").value.trim(),
    show_email: $("f-show_email").checked,
    show_url: $("f-show_url").checked,
    broadcast_password: $("f-broadcast_password").value,
    friends: $("f-friends")
      .value.split("\n")
      .map((l) => l.trim())
      .filter(Boolean),
  };
  const url = $("f-url").value.trim();
  if (url) body.url = url;
  if (level !== "public") body.shared_password = $("f-shared_password").value;
  return body;
}

function clearFieldErrors() {
  for (const n of document.querySelectorAll("[aria-invalid]")) n.removeAttribute("aria-invalid");
  for (const n of document.querySelectorAll(".field-error")) n.remove();
}

// Shows an API error next to its field (and in `box`).
function showError(box, e) {
  say(box, e.message, "error");
  if (!e.field) return;
  const target = $(`f-${e.field}`);
  if (!target) return;
  target.setAttribute("aria-invalid", "true");
  const msg = el("span", { className: "field-error", id: `f-${e.field}-error` }, e.message);
  target.insertAdjacentElement("afterend", msg);
  const described = (target.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && x !== msg.id);
  target.setAttribute("aria-describedby", [...described, msg.id].join(" "));
  target.focus();
}

function showStep(name) {
  $("step-slot").hidden = name !== "form";
  $("step-form").hidden = name !== "form";
  $("step-confirm").hidden = name !== "confirm";
  $("step-done").hidden = name !== "done";
}

async function onQuote(ev) {
  ev.preventDefault();
  clearFieldErrors();
  const box = $("form-error");
  const body = formBody();
  if (!body.start || !body.end) {
    showError(box, { message: "Choose a start and an end: pick free slots in the table above.", field: body.start ? "end" : "start" });
    return;
  }
  $("quote-button").disabled = true;
  try {
    const { quote } = await api("POST", "/api/v1/reservations/quote", body, { auth: true });
    state.body = body;
    say(box, "");
    renderQuote(quote);
    showStep("confirm");
    $("confirm-h").focus();
  } catch (e) {
    if (e.status === 401) return requireLogin(() => {});
    showError(box, e);
    if (e.status === 409 && state.date) chooseDate(state.date);
  } finally {
    $("quote-button").disabled = false;
  }
}

function renderQuote(q) {
  const ch = state.avail.channels.find((c) => c.id === q.channel);
  const yes = (b) => (b ? "Yes" : "No");
  const rows = [
    ["Channel", ch ? ch.name : q.channel],
    ["When", formatSpan(q.start, q.end)],
    ["Who may watch", LEVELS[q.level] || q.level],
    ["Title", q.title],
    ["Genre", q.genre || "—"],
    ["Summary", q.summary || "—"],
    ["Detail", q.detail || "—"],
    ["Your e-mail address", q.email || "(none on your account)"],
    ["Show the e-mail address", yes(q.show_email)],
    ["Show the home page", q.show_url ? `Yes: ${q.url}` : "No"],
    ["Friends to tell", q.friends.length ? q.friends.join(", ") : "—"],
    ["Viewers at most", String(q.capacity)],
    ["Bandwidth", `${q.bandwidth_kbps} kbps`],
    ["Price", `${formatMoney(q.price_per_hour, q.currency)} an hour`],
    ["Fee", formatMoney(q.fee, q.currency)],
    ["Reconfirm by", formatDateTime(q.reconfirm_by)],
  ];
  const dl = clear($("quote"));
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", { className: k === "Fee" ? "fee" : "" }, v));
}

async function onConfirm() {
  const box = $("confirm-error");
  $("confirm").disabled = true;
  try {
    const { reservation } = await api("POST", "/api/v1/reservations", state.body, { auth: true });
    say(box, "");
    $("rid").textContent = reservation.id;
    $("reconfirm-by").textContent = formatDateTime(reservation.reconfirm_by);
    $("live-link").href = `/live/${encodeURIComponent(reservation.id)}`;
    showStep("done");
    $("done-h").focus();
  } catch (e) {
    if (e.status === 401) return requireLogin(() => {});
    // The slot may have been taken meanwhile: back to the form with the reason.
    showStep("form");
    clearFieldErrors();
    showError($("form-error"), e);
    if (state.date) chooseDate(state.date);
  } finally {
    $("confirm").disabled = false;
  }
}

async function resetForm(message) {
  $("book-form").reset();
  state.body = null;
  state.sel = null;
  clearFieldErrors();
  updateConditional();
  showStep("form");
  say($("form-error"), "");
  if (state.date) await chooseDate(state.date);
  say($("status"), message || "");
}

async function start() {
  $("booking").hidden = false;
  try {
    const today = await api("GET", "/api/v1/availability");
    state.today = today.date;
    state.avail = today;
  } catch (e) {
    say($("status"), `The availability could not be loaded: ${e.message}`, "error");
    return;
  }
  const { y, m } = parseDay(state.today);
  state.month = { y, m };
  state.date = state.today;
  renderCalendar(null);
  renderGrid();
  fillFormChoices();
  showStep("form");
}

initNav();
$("prev-month").addEventListener("click", () => moveMonth(-1));
$("next-month").addEventListener("click", () => moveMonth(1));
$("book-form").addEventListener("submit", onQuote);
for (const id of ["f-channel", "f-start", "f-end"]) $(id).addEventListener("change", syncGrid);
for (const r of document.querySelectorAll('input[name="level"]')) r.addEventListener("change", updateConditional);
$("f-show_url").addEventListener("change", updateConditional);
$("confirm").addEventListener("click", onConfirm);
$("change").addEventListener("click", () => {
  showStep("form");
  $("f-title").focus();
});
$("discard").addEventListener("click", () => resetForm("The request was discarded: nothing was booked."));
$("again").addEventListener("click", () => resetForm(""));
updateConditional();
requireLogin(start);
