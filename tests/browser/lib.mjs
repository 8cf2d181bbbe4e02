// What the browser scenarios share: Debian's chromium driven by
// playwright-core (from tests/js/node_modules), pages that fail the test
// on any script error or Content-Security-Policy refusal, screenshots kept
// as artifacts, and calls back to the pytest side (browser.py) for what the
// browser cannot do itself (a slixmpp client in the room, checks through the
// JSON API): one JSON line "@@call {...}" out on stdout, its answer in on
// stdin.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const require = createRequire(new URL("../js/package.json", import.meta.url));
const { chromium } = require("playwright-core");

export const input = JSON.parse(process.env.ONAIR_BROWSER_INPUT || "{}");
export const WAIT_MS = 15000;

// ---- calls to the pytest side ----

let nextCall = 1;
const pending = new Map();
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const reply = JSON.parse(line);
  const p = pending.get(reply.id);
  if (!p) return;
  pending.delete(reply.id);
  if (reply.ok) p.resolve(reply.result);
  else p.reject(new Error(`${p.op}: ${reply.error}`));
});

// Asks the test (Python) to do `op` with `args`; resolves to its result.
export function call(op, args = {}) {
  const id = nextCall++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, op });
    process.stdout.write(`@@call ${JSON.stringify({ id, op, args })}\n`);
  });
}

// ---- checks ----

export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

export function log(...args) {
  process.stderr.write(`[browser] ${args.join(" ")}\n`);
}

// ---- the browser ----

let browser = null;
const problems = [];

export async function launch() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  return browser;
}

// A new browser context (its own storage: another person) and page.
// phone: a phone-sized touch screen.
export async function newPage({ phone = false, name = "page" } = {}) {
  const context = await browser.newContext({
    viewport: phone ? { width: 390, height: 844 } : { width: 1280, height: 900 },
    deviceScaleFactor: 1,
    isMobile: phone,
    hasTouch: phone,
    locale: "en-GB",
    timezoneId: "UTC",
  });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("pageerror", (e) => problems.push(`${name}: script error: ${e.message}`));
  page.on("console", (m) => {
    const text = m.text();
    // API refusals the scenario provokes (401, 404, ...) are logged by the browser; they are not errors of the pages
    if (m.type() === "error" && !/Failed to load resource: the server responded with a status of 4\d\d/.test(text)) {
      problems.push(`${name}: console error: ${text}`);
    }
    if (/Content.Security.Policy|Refused to/i.test(text)) problems.push(`${name}: ${text}`);
  });
  page.on("dialog", (d) => {
    problems.push(`${name}: unexpected dialog: ${d.message()}`);
    d.dismiss();
  });
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (url.host !== new URL(input.base).host) problems.push(`${name}: request to another host: ${r.url()}`);
  });
  return page;
}

// Fails on anything the pages reported (script errors, CSP refusals, dialogs).
export function checkNoProblems() {
  if (problems.length) throw new Error(`the pages reported problems:\n${problems.join("\n")}`);
}

export async function shot(page, name) {
  mkdirSync(input.artifacts, { recursive: true });
  await page.screenshot({ path: join(input.artifacts, `${name}.png`), fullPage: true });
}

// My channel, logged in as input.user; returns the card of reservation id.
export async function myChannel(page, id) {
  await page.goto(`${input.base}/channel`);
  await page.fill("#login-user", input.user);
  await page.fill("#login-password", input.password);
  await page.click("form.login button[type=submit]");
  const card = page.locator(`#reservations li[data-id="${id}"]`);
  await card.waitFor();
  return card;
}

// The page's text of a selector, trimmed.
export async function text(page, selector) {
  return (await page.locator(selector).first().textContent()).trim();
}

// No horizontal scrolling: the page fits the screen.
export async function fitsWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
}

// Runs the scenario; exits 0 when it passed, 1 with the error otherwise.
export async function run(scenario) {
  let code = 0;
  try {
    await launch();
    await scenario();
    checkNoProblems();
  } catch (e) {
    process.stderr.write(`${e.stack || e}\n`);
    if (problems.length) process.stderr.write(`problems reported by the pages:\n${problems.join("\n")}\n`);
    code = 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.exit(code);
}
