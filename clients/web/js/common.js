// What every page shares: the JSON API (specs/http-api.md), the login token
// of broadcaster pages, building DOM nodes (text only ever as textContent,
// never parsed as HTML), and formatting times and amounts.

const TOKEN_KEY = "onair.token";
const USER_KEY = "onair.user";

export class ApiError extends Error {
  constructor(status, field, message) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

// Calls the JSON API; resolves to the parsed body (null for 204), rejects
// with an ApiError carrying the error format's status, field and message.
export async function api(method, path, body, { auth = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) {
    const token = session.token();
    if (token) headers.Authorization = `Bearer ${token}`;
  }
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, null, "The server cannot be reached. Check your connection and try again.");
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    if (res.status === 401 && auth) session.clear();
    throw new ApiError(res.status, err.field, err.message || `The server answered ${res.status}.`);
  }
  return data;
}

// The broadcaster's login, kept for this browser tab only.
export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  user: () => sessionStorage.getItem(USER_KEY),
  save(token, user) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(USER_KEY, user);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
  },
};

// el("p", {className: "x", onclick: f}, "text", child, ...): a new element.
// Properties are set as properties (so text goes to textContent), except
// names with a dash or "for", which are attributes.  Children are nodes or
// strings (added as text nodes); null and false are skipped.
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k.includes("-") || k === "for" || k === "role") node.setAttribute(k, v === true ? "" : String(v));
    else node[k] = v;
  }
  append(node, ...children);
  return node;
}

export function append(node, ...children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function $(id) {
  return document.getElementById(id);
}

// Shows a message in a status element (role=status or role=alert).
export function say(node, text, kind = "info") {
  node.textContent = text || "";
  node.dataset.kind = kind;
  node.hidden = !text;
}

// ---- times ----

const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  timeZoneName: "short",
});
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

export function parseTime(s) {
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : new Date(t);
}

// "Tue, Jan 15, 2031, 18:00 UTC" in the viewer's zone.
export function formatDateTime(s) {
  const d = typeof s === "string" ? parseTime(s) : s;
  return d ? dateTime.format(d) : String(s || "");
}

// "18:00–20:00" (the end's date too when another day).
export function formatSpan(start, end) {
  const a = parseTime(start);
  const b = parseTime(end);
  if (!a || !b) return `${start} – ${end}`;
  const sameDay = a.toDateString() === b.toDateString();
  return `${dateTime.format(a)} – ${sameDay ? timeOnly.format(b) : dateTime.format(b)}`;
}

// "1 h 05 min", "4 min 09 s", "12 s" for a duration in ms.
export function formatDuration(ms) {
  let s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const two = (n) => String(n).padStart(2, "0");
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${two(m)} min`;
  if (m > 0) return `${m} min ${two(s)} s`;
  return `${s} s`;
}

// ---- amounts ----

// An amount in the smallest unit of an ISO 4217 currency: 3000 JPY -> "¥3,000".
export function formatMoney(amount, currency) {
  try {
    const f = new Intl.NumberFormat(undefined, { style: "currency", currency });
    const digits = f.resolvedOptions().maximumFractionDigits;
    return f.format(amount / 10 ** digits);
  } catch (e) {
    return `${amount} ${currency}`;
  }
}

// ---- words ----

export const LEVELS = {
  public: "Public",
  password: "Password",
  secret: "Secret",
};

export const STATES = {
  awaiting_reconfirmation: "Awaiting reconfirmation",
  reconfirmed: "Reconfirmed",
  live: "On air",
  done: "Done",
  cancelled: "Cancelled",
};

// A link only for http(s) addresses; anything else is shown as text.
export function safeLink(url, text) {
  try {
    const u = new URL(url);
    if (u.protocol === "http:" || u.protocol === "https:") {
      return el("a", { href: u.href, rel: "noopener noreferrer nofollow", target: "_blank" }, text || url);
    }
  } catch (e) {
    // not a URL: text
  }
  return el("span", {}, text || url);
}

// The header's navigation: marks the current page and shows who is logged in.
export function initNav() {
  const here = location.pathname;
  for (const a of document.querySelectorAll("nav.site a")) {
    if (a.getAttribute("href") === here) a.setAttribute("aria-current", "page");
  }
}
